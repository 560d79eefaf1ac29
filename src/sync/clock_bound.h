// ClockBound and ClockSampler: how this replica reads the store's clock
// (docs/DESIGN.md "Clocks").
//
// Watermarks carry times on the store's clock (PostgreSQL's), and replicas
// run on other hosts whose clocks may be off by any amount. So a replica
// asks the store for its time now and then: sent at local s, answered T,
// received at local r. The store read its clock between s and r, so the
// offset (store - local) was at most T - s then. Clocks drift apart by at
// most kMaxDriftRate (500 ppm, what NTP allows for a slewing clock) per
// second since. EarliestLocal(T') is then the earliest local time at which
// the store's clock can have shown T': anything committed before T' on the
// store's clock committed before that local time. The best of the last
// kSamples samples is used (the one giving the tightest bound now).
//
// Until the first sample (the store was never reached) nothing can be
// vouched for: EarliestLocal is InfinitePast.
//
// Thread-safety: OnSample from one thread at a time; EarliestLocal from any
// (lock-free: it is on the cache-hit path).
#ifndef CACHECAR_SYNC_CLOCK_BOUND_H_
#define CACHECAR_SYNC_CLOCK_BOUND_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace cachecar::sync {

class ClockBound {
 public:
  static constexpr double kMaxDriftRate = 500e-6;
  static constexpr size_t kSamples = 16;

  // One reading of the store's clock: `store` answered to a request sent
  // at local `sent` and received at local `received`.
  void OnSample(absl::Time sent, absl::Time store, absl::Time received);

  // The earliest local time at which the store's clock can have read
  // `store_time`, as known at local time `now`; InfinitePast without a
  // sample (or for InfinitePast).
  absl::Time EarliestLocal(absl::Time store_time, absl::Time now) const;
  // How loose that bound is now (the best sample's round trip plus drift
  // since), for metrics; InfiniteDuration without a sample.
  absl::Duration Uncertainty(absl::Time now) const;
  bool calibrated() const { return seq_.load(std::memory_order_acquire) != 0; }

 private:
  struct Sample {
    int64_t offset_hi_us;  // store - sent
    int64_t sent_us;
    int64_t rtt_us;
  };
  // The best sample, published through a sequence lock.
  Sample Read() const;

  std::deque<Sample> samples_;  // OnSample's thread only
  std::atomic<uint64_t> seq_{0};
  std::atomic<int64_t> offset_hi_us_{0}, sent_us_{0}, rtt_us_{0};
};

// Samples the store's clock into a ClockBound: a few readings at start (the
// tightest round trip wins), then one every `interval`, and every second
// while the store does not answer.
class ClockSampler {
 public:
  using ReadClock = std::function<absl::StatusOr<absl::Time>()>;
  ClockSampler(ReadClock read, ClockBound& bound, absl::Duration interval = absl::Seconds(10));
  ~ClockSampler();  // stops the thread

 private:
  void Loop();
  bool SampleOnce();

  const ReadClock read_;
  ClockBound& bound_;
  const absl::Duration interval_;
  Notification stop_;
  std::thread thread_;
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_CLOCK_BOUND_H_
