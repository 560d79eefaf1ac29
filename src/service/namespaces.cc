// See namespaces.h.
#include "service/namespaces.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace cachecar::service {
namespace {

// `share` of `total` bytes, without the overflow a double product has near
// 2^64 (--max-bytes=18446744073709551615 left every namespace 0 bytes).
size_t ShareOf(uint64_t total, double share) {
  const long double bytes = static_cast<long double>(total) * static_cast<long double>(share);
  if (bytes >= std::ldexp(1.0L, 64)) return std::numeric_limits<size_t>::max();
  return static_cast<size_t>(bytes);
}

}  // namespace

NamespaceSet::NamespaceSet(const config::Config& config, const cache::Clock* clock) {
  double claimed = 0;
  size_t unclaimed = 0;
  for (const config::NamespaceConfig& ns : config.namespaces) {
    if (ns.max_bytes_share > 0)
      claimed += ns.max_bytes_share;
    else
      ++unclaimed;
  }
  const double rest = unclaimed > 0 ? std::max(0.0, 1.0 - claimed) / unclaimed : 0;
  for (const config::NamespaceConfig& ns : config.namespaces) {
    const double share = ns.max_bytes_share > 0 ? ns.max_bytes_share : rest;
    cache::EngineOptions options;
    options.max_bytes = ShareOf(config.max_bytes, share);
    // Fewer shards for a small namespace, so that each shard (a slice of
    // the budget) can still hold a few values of the largest allowed size.
    options.shards = config.shards;
    while (options.shards > 1 &&
           options.max_bytes / options.shards < 4 * uint64_t{config.max_value_bytes}) {
      options.shards /= 2;
    }
    options.policy =
        config.eviction == "lru" ? cache::EvictionPolicy::kLru : cache::EvictionPolicy::kS3Fifo;
    options.default_ttl = ns.ttl;
    options.negative_ttl = ns.negative_ttl;
    options.clock = clock;
    auto entry = std::make_unique<Namespace>();
    entry->name = ns.name;
    entry->ttl = ns.ttl;
    entry->shards = options.shards;
    entry->sync_values = ns.sync != "invalidate";
    entry->engine = std::make_unique<cache::Engine>(options);
    by_name_.emplace(ns.name, std::move(entry));
  }
}

absl::StatusOr<Namespace*> NamespaceSet::Find(absl::string_view name) const {
  if (name.empty()) name = "default";
  auto it = by_name_.find(name);
  if (it != by_name_.end()) return it->second.get();
  std::vector<absl::string_view> names;
  for (const auto& [n, _] : by_name_) names.push_back(n);
  return absl::InvalidArgumentError(
      absl::StrCat("unknown namespace '", name.substr(0, 64), "': declared namespaces are [",
                   absl::StrJoin(names, ", "),
                   "]; use one of them or declare it under `namespaces:` in the config"));
}

std::vector<Namespace*> NamespaceSet::All() const {
  std::vector<Namespace*> out;
  for (const auto& [_, ns] : by_name_) out.push_back(ns.get());
  return out;
}

}  // namespace cachecar::service
