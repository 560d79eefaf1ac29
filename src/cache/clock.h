// Forwarding header: the clock moved to common/clock.h (it is injected
// outside the engine too). Include that instead in new code.
// Thread-safety: see common/clock.h.
#ifndef CACHECAR_CACHE_CLOCK_H_
#define CACHECAR_CACHE_CLOCK_H_

#include "common/clock.h"

namespace cachecar::cache {
using cachecar::Clock;
using cachecar::ManualClock;
}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_CLOCK_H_
