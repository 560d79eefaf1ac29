// A time source, injected where code reads the time (the engine's TTLs, the
// sync's bounds and intervals, the connection pool's backoff), so tests
// control time instead of sleeping. Thread-safety: Now() may be called from
// any thread; ManualClock::Advance too.
#ifndef CACHECAR_COMMON_CLOCK_H_
#define CACHECAR_COMMON_CLOCK_H_

#include <atomic>
#include <cstdint>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cachecar {

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

}  // namespace cachecar

#endif  // CACHECAR_COMMON_CLOCK_H_
