// See dsn.h.
#include "store/postgres/dsn.h"

#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cachecar::store::postgres {

std::string WithConnectionDefaults(absl::string_view dsn, absl::Duration connect_timeout) {
  const int64_t timeout_s =
      std::max<int64_t>(1, absl::ToInt64Seconds(absl::Ceil(connect_timeout, absl::Seconds(1))));
  // Keepalives notice a peer that vanished without a FIN (a node died) in
  // about 10 + 3 * 5 s instead of the kernel's two hours.
  const std::vector<std::pair<std::string, std::string>> defaults = {
      {"connect_timeout", absl::StrCat(timeout_s)},
      {"keepalives", "1"},
      {"keepalives_idle", "10"},
      {"keepalives_interval", "5"},
      {"keepalives_count", "3"},
      {"application_name", "cachecar"},
  };
  const bool uri = absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://");
  std::string out(dsn);
  if (uri) {
    for (const auto& [key, value] : defaults) {
      if (absl::StrContains(dsn, absl::StrCat(key, "="))) continue;
      absl::StrAppend(&out, absl::StrContains(out, "?") ? "&" : "?", key, "=", value);
    }
    return out;
  }
  // Keyword form: later settings win, so defaults go first.
  std::string prefix;
  for (const auto& [key, value] : defaults) absl::StrAppend(&prefix, key, "=", value, " ");
  return prefix + out;
}

}  // namespace cachecar::store::postgres
