// MinVersionBatch: a BatchGet with min_versions (issue #15 item 2), read as
// a batch: every key whose cached copy is new enough is answered from the
// cache; every other key with a min_version waits for its event (all the
// waits at once, up to min_version_wait within the deadline); once the last
// wait ended, the keys still behind (and the keys without a min_version that
// missed) are read from the store in ONE batch read under fill tickets, and
// an answer below its key's min_version is OUT_OF_RANGE. STRONG reads, and
// a replica that cannot vouch for its cache, read every key in one batch
// read; CACHE_ONLY never reads the store (keys still behind: not cached).
//
// Nothing here blocks: the waits end on VersionWaits' threads, the store
// read runs on the worker pool.
//
// Thread-safety: Run may be called from any thread; `done` is called once,
// from the caller's thread, a wait's or a worker.
#ifndef CACHECAR_SERVICE_MIN_VERSION_BATCH_H_
#define CACHECAR_SERVICE_MIN_VERSION_BATCH_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/namespaces.h"
#include "service/read_result.h"
#include "service/version_waits.h"
#include "service/worker_pool.h"

namespace cachecar::service {

enum class Consistency;

struct MinVersionBatch {
  using Done = std::function<void(absl::StatusOr<std::vector<ReadResult>>)>;
  // Reads keys (distinct) from the store under fill tickets, one answer per
  // key in order (CacheService::LoadKeys). Blocks: called on a worker.
  using Load = std::function<absl::StatusOr<std::vector<ReadResult>>(
      const std::vector<std::string>& keys, absl::Time deadline)>;

  Namespace* ns = nullptr;
  VersionWaits* waits = nullptr;  // null: no sync topic, nothing to wait for
  WorkerPool* pool = nullptr;
  Load load;
  absl::Duration min_version_wait;
  // The answer's limit and what the keys and framing take of it; the error
  // for an answer over it, and for a full worker pool.
  uint64_t max_response_bytes = 0;
  uint64_t framing_bytes = 0;
  absl::Status too_large;
  absl::Status overloaded;
  // Counters (CacheService's), per key with a min_version.
  std::atomic<uint64_t>* from_cache = nullptr;
  std::atomic<uint64_t>* read_through = nullptr;
  std::atomic<uint64_t>* out_of_range = nullptr;

  // `trusted`: the replica vouches for its cache now. `min_versions` has
  // one entry per key (0: none).
  void Run(std::vector<std::string> keys, std::vector<uint64_t> min_versions,
           Consistency consistency, bool trusted, absl::Time deadline, Done done) const;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_MIN_VERSION_BATCH_H_
