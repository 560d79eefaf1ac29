// See namespaces.h.
#include "service/namespaces.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
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

// One namespace's engine options, before the storage exists.
struct NamespaceSet::Planned {
  const config::NamespaceConfig* ns;
  cache::EngineOptions options;
};

std::vector<NamespaceSet::Planned> NamespaceSet::Plan(const config::Config& config,
                                                      const cache::Clock* clock) {
  std::vector<Planned> out;
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
    out.push_back(Planned{&ns, options});
  }
  return out;
}

NamespaceSet::NamespaceSet(const config::Config& config, const cache::Clock* clock,
                           std::unique_ptr<cache::Storage> storage)
    : storage_(std::move(storage)) {
  std::vector<Planned> planned = Plan(config, clock);
  for (size_t i = 0; i < planned.size(); ++i) {
    Planned& p = planned[i];
    p.options.region = storage_->region(i);
    auto entry = std::make_unique<Namespace>();
    entry->name = p.ns->name;
    entry->ttl = p.ns->ttl;
    entry->shards = p.options.shards;
    entry->sync_values = p.ns->sync != "invalidate";
    entry->index = static_cast<uint32_t>(i);
    if (p.ns->replicated) entry->replicated = std::make_unique<ReplicatedState>();
    entry->engine = std::make_unique<cache::Engine>(p.options);
    by_index_.push_back(entry.get());
    by_name_.emplace(p.ns->name, std::move(entry));
  }
}

std::vector<cache::NamespacePlan> NamespaceSet::StoragePlans(const config::Config& config) {
  std::vector<cache::NamespacePlan> plans;
  for (const Planned& p : Plan(config, nullptr)) {
    plans.push_back({p.ns->name, p.options.max_bytes, p.options.shards});
  }
  return plans;
}

absl::StatusOr<std::unique_ptr<NamespaceSet>> NamespaceSet::Create(const config::Config& config,
                                                                   const cache::Clock* clock) {
  absl::StatusOr<std::unique_ptr<cache::Storage>> storage;
  if (config.local_read_path.empty()) {
    storage = cache::Storage::CreatePrivate(StoragePlans(config));
  } else {
    cache::StorageFileOptions file;
    file.path = config.local_read_path;
    file.max_key_bytes = config.max_key_bytes;
    storage = cache::Storage::CreateFile(StoragePlans(config), file);
  }
  if (!storage.ok()) return storage.status();
  return std::unique_ptr<NamespaceSet>(new NamespaceSet(config, clock, *std::move(storage)));
}

std::unique_ptr<cache::Storage> NamespaceSet::PrivateStorage(const config::Config& config) {
  absl::StatusOr<std::unique_ptr<cache::Storage>> storage =
      cache::Storage::CreatePrivate(StoragePlans(config));
  if (!storage.ok()) {
    std::fprintf(stderr, "cachecar: cannot map the cache's memory: %s\n",
                 std::string(storage.status().message()).c_str());
    std::abort();
  }
  return *std::move(storage);
}

NamespaceSet::NamespaceSet(const config::Config& config, const cache::Clock* clock)
    : NamespaceSet(config, clock, PrivateStorage(config)) {}

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
