// See sql_names.h.
#include "store/postgres/sql_names.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sql_identifier.h"

namespace cachecar::store::postgres {

absl::Status CheckIdentifier(absl::string_view name, absl::string_view what) {
  if (IsSqlIdentifier(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat(what, " \"", absl::CHexEscape(name),
                   "\" is not a plain SQL identifier: ", kSqlIdentifierRule));
}

absl::Status CheckTableName(absl::string_view name, absl::string_view what) {
  if (IsSqlTableName(name)) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat(
      what, " \"", absl::CHexEscape(name), "\" is not a plain SQL name: ", kSqlIdentifierRule));
}

std::string QuoteName(absl::string_view name) {
  std::string out;
  bool first = true;
  for (absl::string_view part : absl::StrSplit(name, '.')) {
    if (!first) out += '.';
    first = false;
    out += '"';
    for (char c : part) {
      if (c == '"') out += '"';
      out += c;
    }
    out += '"';
  }
  return out;
}

std::string QuoteLiteral(absl::string_view text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  out += '\'';
  return out;
}

absl::string_view BaseName(absl::string_view table) {
  const size_t dot = table.rfind('.');
  return dot == absl::string_view::npos ? table : table.substr(dot + 1);
}

std::string SchemaPrefix(absl::string_view table) {
  const size_t dot = table.rfind('.');
  return dot == absl::string_view::npos ? "" : std::string(table.substr(0, dot + 1));
}

std::string TextArrayLiteral(const std::vector<std::string>& items) {
  std::string out = "{";
  for (size_t i = 0; i < items.size(); ++i) {
    if (i > 0) out += ',';
    out += '"';
    for (char c : items[i]) {
      if (c == '"' || c == '\\') out += '\\';
      out += c;
    }
    out += '"';
  }
  out += '}';
  return out;
}

}  // namespace cachecar::store::postgres
