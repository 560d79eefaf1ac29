// NamespaceSet: the namespaces declared in config, each with its own cache
// engine (its share of the byte bound, its ttl) and load counter. Built once
// at start; the set never changes while serving. The engines keep their
// entries in one cache::Storage: the published cache file when
// local_read_path is set (docs/LOCAL_READS.md), else private memory.
//
// Thread-safety: Find() and the returned Namespace are safe to use from any
// thread (the engine locks internally; counters are atomic).
#ifndef CACHECAR_SERVICE_NAMESPACES_H_
#define CACHECAR_SERVICE_NAMESPACES_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "cache/engine.h"
#include "cache/storage.h"
#include "config/config.h"
#include "service/replicated_state.h"

namespace cachecar::service {

struct Namespace {
  std::string name;
  absl::Duration ttl;
  size_t shards = 0;  // engine shards (fewer than configured when small)
  // sync: update (events carry small values; replicas replace their copy)
  // or invalidate (replicas drop the key).
  bool sync_values = true;
  std::unique_ptr<cache::Engine> engine;
  std::atomic<uint64_t> loads{0};  // store reads made to fill this namespace
  uint32_t index = 0;              // its place in the storage (hit reports name it)
  // replicated: true (every replica holds the whole table); else null.
  std::unique_ptr<ReplicatedState> replicated;
};

class NamespaceSet {
 public:
  // Splits config.max_bytes by each namespace's share (namespaces without one
  // split what is left evenly). A namespace too small to give every shard
  // room for 4 values of max_value_bytes gets fewer shards. `clock` may be
  // null (real time).
  // In private memory (local_read_path is not looked at); aborts if that
  // memory cannot be mapped, as an allocation would.
  explicit NamespaceSet(const config::Config& config, const cache::Clock* clock = nullptr);
  // As the constructor, but with local_read_path set the engines live in
  // the published file (cache::Storage::CreateFile: the old file at the path
  // is retired first); an error says why the file cannot be made.
  static absl::StatusOr<std::unique_ptr<NamespaceSet>> Create(const config::Config& config,
                                                              const cache::Clock* clock = nullptr);

  // The namespace called `name` ("" means "default"), or INVALID_ARGUMENT
  // listing the declared ones.
  absl::StatusOr<Namespace*> Find(absl::string_view name) const;

  // All namespaces, sorted by name.
  std::vector<Namespace*> All() const;
  // The namespace at `index` in the storage, or null.
  Namespace* At(size_t index) const {
    return index < by_index_.size() ? by_index_[index] : nullptr;
  }

  cache::Storage& storage() const { return *storage_; }

 private:
  struct Planned;
  NamespaceSet(const config::Config& config, const cache::Clock* clock,
               std::unique_ptr<cache::Storage> storage);
  static std::vector<Planned> Plan(const config::Config& config, const cache::Clock* clock);
  static std::vector<cache::NamespacePlan> StoragePlans(const config::Config& config);
  static std::unique_ptr<cache::Storage> PrivateStorage(const config::Config& config);

  std::unique_ptr<cache::Storage> storage_;  // outlives the engines below
  std::map<std::string, std::unique_ptr<Namespace>, std::less<>> by_name_;
  std::vector<Namespace*> by_index_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_NAMESPACES_H_
