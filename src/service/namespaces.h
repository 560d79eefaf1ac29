// NamespaceSet: the namespaces declared in config, each with its own cache
// engine (its share of the byte bound, its ttl) and load counter. Built once
// at start; the set never changes while serving.
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
#include "config/config.h"

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
};

class NamespaceSet {
 public:
  // Splits config.max_bytes by each namespace's share (namespaces without one
  // split what is left evenly). A namespace too small to give every shard
  // room for 4 values of max_value_bytes gets fewer shards. `clock` may be
  // null (real time).
  explicit NamespaceSet(const config::Config& config, const cache::Clock* clock = nullptr);

  // The namespace called `name` ("" means "default"), or INVALID_ARGUMENT
  // listing the declared ones.
  absl::StatusOr<Namespace*> Find(absl::string_view name) const;

  // All namespaces, sorted by name.
  std::vector<Namespace*> All() const;

 private:
  std::map<std::string, std::unique_ptr<Namespace>, std::less<>> by_name_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_NAMESPACES_H_
