// See options.h: the text around options (value placeholders, expected
// forms, "did you mean", field errors).
#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/options.h"
#include "config/values.h"

namespace cachecar::config {
namespace {

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

absl::string_view ValuePlaceholder(const Option& option) {
  if (!option.placeholder.empty()) return option.placeholder;
  switch (option.kind) {
    case ValueKind::kText:
      return "NAME";
    case ValueKind::kPath:
      return "PATH";
    case ValueKind::kAddressList:
      return "ADDR";
    case ValueKind::kBytes:
      return "SIZE";
    case ValueKind::kCount:
      return "N";
    case ValueKind::kDuration:
      return "DURATION";
    case ValueKind::kNamespaceList:
      return "NAME[:TTL[:SHARE]]";
    case ValueKind::kBool:
      return "true|false";
    case ValueKind::kSecret:
      return "SECRET";
    case ValueKind::kPropertyList:
      return "NAME=VALUE";
  }
  return "VALUE";
}

absl::string_view ExpectedForm(ValueKind kind) {
  switch (kind) {
    case ValueKind::kText:
      return "a string";
    case ValueKind::kPath:
      return "a file path";
    case ValueKind::kAddressList:
      return "an address or a list of addresses (host:port, unix:///path)";
    case ValueKind::kBytes:
      return kBytesForm;
    case ValueKind::kCount:
      return kCountForm;
    case ValueKind::kDuration:
      return kDurationForm;
    case ValueKind::kNamespaceList:
      return "a list of namespaces (maps with name, ttl, negative_ttl, max_bytes_share, "
             "table, key_column, value_column, sync, replicated)";
    case ValueKind::kBool:
      return "true or false";
    case ValueKind::kSecret:
      return "a string";
    case ValueKind::kPropertyList:
      return "name=value pairs (a YAML map, a list, or comma-separated)";
  }
  return "a value";
}

std::string DidYouMean(absl::string_view word, const std::vector<absl::string_view>& candidates) {
  absl::string_view best;
  size_t best_distance = 3;  // more edits than this is not a typo
  for (absl::string_view candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (best.empty()) return "";
  return absl::StrCat(" (did you mean ", best, "?)");
}

std::string FieldErrorText(absl::string_view field, absl::string_view source,
                           absl::string_view reason) {
  if (source.empty()) return absl::StrCat("config: ", field, ": ", reason);
  return absl::StrCat("config: ", field, " (from ", source, "): ", reason);
}

absl::Status FieldError(absl::string_view field, absl::string_view source,
                        absl::string_view reason) {
  return absl::InvalidArgumentError(FieldErrorText(field, source, reason));
}

}  // namespace cachecar::config
