// A time source the engine reads for TTLs, so tests control time instead of
// sleeping. Thread-safety: Now() may be called from any thread.
#ifndef CACHECAR_CACHE_CLOCK_H_
#define CACHECAR_CACHE_CLOCK_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cachecar::cache {

class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
  // The process-wide real clock.
  static const Clock& Real();
};

// A clock that moves only when told to (tests).
class ManualClock final : public Clock {
 public:
  explicit ManualClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24))
      : nanos_(absl::ToUnixNanos(start)) {}
  absl::Time Now() const override {
    return absl::FromUnixNanos(nanos_.load(std::memory_order_acquire));
  }
  void Advance(absl::Duration d) {
    nanos_.fetch_add(absl::ToInt64Nanoseconds(d), std::memory_order_acq_rel);
  }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_CLOCK_H_
