// FreshnessTracker: the arithmetic behind the staleness bound (docs/DESIGN.md C4).
//
// A probe asks the broker for a partition's high watermark H at time T (T is
// taken before the request is sent). Every event acknowledged before T sits
// below H, so once the consumer's position reaches H, the replica has applied
// everything that partition held at T: the partition is "caught up as of T".
// The replica is fresh as of the oldest of its partitions' times.
//
// Thread-safety: all methods are safe to call concurrently; fresh_as_of()
// is a lock-free read (it is on the cache-hit path).
#ifndef CACHECAR_SYNC_FRESHNESS_H_
#define CACHECAR_SYNC_FRESHNESS_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <map>
#include <vector>

#include "absl/time/time.h"
#include "common/mutex.h"
#include "sync/sync.h"

namespace cachecar::sync {

class FreshnessTracker {
 public:
  // Starts tracking a partition read from `position`, known to be caught up
  // as of `caught_up_as_of` (the time its start offset was looked up, or for
  // a partition created later, a time before it existed). Re-adding a
  // partition resets it.
  void AddPartition(int32_t partition, int64_t position, absl::Time caught_up_as_of);
  // A probe sent at `sent_at` found `high_watermark`.
  void OnProbe(int32_t partition, int64_t high_watermark, absl::Time sent_at);
  // The consumer will read `position` next (everything before it applied).
  void OnPosition(int32_t partition, int64_t position);

  // InfinitePast while no partition is tracked.
  absl::Time fresh_as_of() const;
  std::vector<PartitionState> Partitions() const;
  std::vector<int32_t> PartitionIds() const;

  // Probes waiting for the consumer, per partition; older ones beyond this
  // are forgotten (which only makes the answer more conservative).
  static constexpr size_t kMaxPendingProbes = 64;

 private:
  struct Probe {
    int64_t high_watermark;
    absl::Time sent_at;
  };
  struct Partition {
    int64_t position = -1;
    int64_t high_watermark = -1;
    absl::Time caught_up_as_of = absl::InfinitePast();
    std::deque<Probe> pending;  // high_watermark > position, oldest first
  };
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::map<int32_t, Partition> partitions_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> fresh_as_of_us_{INT64_MIN};
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_FRESHNESS_H_
