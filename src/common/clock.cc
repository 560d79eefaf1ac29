// The real clock. Thread-safety: stateless, safe from any thread.
#include "common/clock.h"

namespace cachecar {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
};

}  // namespace

const Clock& Clock::Real() {
  static const RealClock* const clock = new RealClock;
  return *clock;
}

}  // namespace cachecar
