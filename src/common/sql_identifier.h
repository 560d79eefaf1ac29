// What cachecar accepts as a table or column name from configuration: a
// plain SQL identifier, optionally schema-qualified. Shared by config
// validation (which names the option and its source) and the PostgreSQL
// adapter (which quotes the name before use).
#ifndef CACHECAR_COMMON_SQL_IDENTIFIER_H_
#define CACHECAR_COMMON_SQL_IDENTIFIER_H_

#include "absl/strings/ascii.h"
#include "absl/strings/string_view.h"

namespace cachecar {

// [A-Za-z_][A-Za-z0-9_]{0,62}
inline bool IsSqlIdentifier(absl::string_view name) {
  if (name.empty() || name.size() > 63) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(name[0])) && name[0] != '_') return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '_') return false;
  }
  return true;
}

// identifier or schema.identifier
inline bool IsSqlTableName(absl::string_view name) {
  const size_t dot = name.find('.');
  if (dot == absl::string_view::npos) return IsSqlIdentifier(name);
  return IsSqlIdentifier(name.substr(0, dot)) && IsSqlIdentifier(name.substr(dot + 1));
}

inline constexpr absl::string_view kSqlIdentifierRule =
    "letters, digits and _ (not first), at most 63 characters; a table may be schema.table";

}  // namespace cachecar

#endif  // CACHECAR_COMMON_SQL_IDENTIFIER_H_
