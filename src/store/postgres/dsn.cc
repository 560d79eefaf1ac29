// See dsn.h. Which settings the operator's DSN already has is decided by
// libpq itself (PQconninfoParse), for both the keyword and the URI form, so
// a password, an `options` value or a parameter whose name ends like one of
// ours cannot be mistaken for a setting.
#include "store/postgres/dsn.h"

#include <libpq-fe.h>

#include <algorithm>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cachecar::store::postgres {
namespace {

// The keywords the DSN gives a value, or nullopt when libpq cannot parse it
// (then it is passed through untouched: connecting reports libpq's error).
std::optional<absl::flat_hash_set<std::string>> SetKeywords(const std::string& dsn) {
  char* error = nullptr;
  std::unique_ptr<PQconninfoOption, void (*)(PQconninfoOption*)> options(
      PQconninfoParse(dsn.c_str(), &error), PQconninfoFree);
  if (error != nullptr) PQfreemem(error);
  if (options == nullptr) return std::nullopt;
  absl::flat_hash_set<std::string> set;
  for (const PQconninfoOption* o = options.get(); o->keyword != nullptr; ++o) {
    if (o->val != nullptr) set.insert(o->keyword);
  }
  return set;
}

}  // namespace

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
  std::string out(dsn);
  const std::optional<absl::flat_hash_set<std::string>> set = SetKeywords(out);
  if (!set.has_value()) return out;
  const bool uri = absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://");
  std::string prefix;
  for (const auto& [key, value] : defaults) {
    if (set->contains(key)) continue;
    if (uri) {
      absl::StrAppend(&out, absl::StrContains(out, "?") ? "&" : "?", key, "=", value);
    } else {
      absl::StrAppend(&prefix, key, "=", value, " ");
    }
  }
  return prefix + out;
}

}  // namespace cachecar::store::postgres
