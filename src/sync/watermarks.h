// WatermarkTracker: what a replica can vouch for, from the relays'
// watermarks (docs/DESIGN.md "Watermarks", C4).
//
// A relay's watermark W in partition p says: every change committed before
// W.as_of (on the store's clock) whose event is in p is ahead of W in p. A
// relay publishes each round into every partition it knows, in order, so
// for one relay R: if this replica has applied, in every partition, a
// watermark of R at W.as_of >= T, it has applied every change committed
// before T. Per relay that is
//     F_R = min over the partitions (the ones this replica reads, and the
//           ones R says exist) of the newest as_of of R applied there
// (a partition without one counts as "nothing"), and the replica vouches
// for F = max over relays of F_R. Relays are never mixed within one F_R: a
// relay whose producer saw an older partition count may put an event in
// another partition than a writer did, and only its own watermarks are
// ordered behind its own events.
//
// Times are the store's clock; ClockBound turns them into this replica's.
//
// Thread-safety: all methods are safe to call concurrently; applied_as_of()
// is a lock-free read (it is on the cache-hit path).
#ifndef CACHECAR_SYNC_WATERMARKS_H_
#define CACHECAR_SYNC_WATERMARKS_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "common/mutex.h"
#include "sync/event.h"

namespace cachecar::sync {

class WatermarkTracker {
 public:
  // The partitions the consumer reads; `restarted` ones forget their
  // watermarks (the consumer skipped what was before its new position).
  void SetPartitions(const std::vector<int32_t>& partitions, const std::vector<int32_t>& restarted);
  // A watermark read from `partition` at local time `now`.
  void OnWatermark(int32_t partition, const Watermark& watermark, absl::Time now);

  // F (store clock): every change committed before it has been applied;
  // InfinitePast when no relay's watermarks cover every partition.
  absl::Time applied_as_of() const;

  struct RelayView {
    std::string relay;
    absl::Time as_of = absl::InfinitePast();      // F_R
    absl::Time last_seen = absl::InfinitePast();  // local time of its latest watermark
  };
  std::vector<RelayView> Relays() const;
  // How many relays other than `except` sent a watermark at or after `since`.
  int RelaysSeenSince(absl::Time since, const std::string& except = "") const;
  // The most partitions any live relay announced (0: none yet).
  int32_t announced_partitions() const;

  // Relays silent this long are forgotten.
  static constexpr absl::Duration kForgetAfter = absl::Minutes(5);

 private:
  struct Relay {
    std::map<int32_t, absl::Time> newest;  // partition -> newest as_of applied
    int32_t partitions = 0;
    absl::Time last_seen = absl::InfinitePast();
  };
  absl::Time CoveredAsOf(const Relay& relay) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Publish() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  std::set<int32_t> partitions_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, Relay> relays_ ABSL_GUARDED_BY(mu_);
  std::atomic<int64_t> applied_as_of_us_{INT64_MIN};
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_WATERMARKS_H_
