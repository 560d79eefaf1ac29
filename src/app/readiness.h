// The readiness rule (docs/DESIGN.md "Availability rules"): readiness
// follows this process only: its replicated namespaces' first whole load
// and a worker pool that is not wedged. PostgreSQL and Kafka have health
// names of their own. Pure functions; ProcessReadiness updates `progress`,
// so one caller thread per ProgressWatch.
#ifndef CACHECAR_APP_READINESS_H_
#define CACHECAR_APP_READINESS_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "service/health_monitor.h"

namespace cachecar::app {

// How long queued work may see no task finish before the pool counts as
// wedged: three store calls' timeouts, at least 30 s.
absl::Duration StuckAfter(absl::Duration store_call_timeout);

// OK when the replicated namespaces are loaded (or there are none) and
// `progress` sees the pool move; else UNAVAILABLE saying which.
absl::Status ProcessReadiness(bool replicated_loaded, service::ProgressWatch& progress,
                              uint64_t completed, size_t queued, absl::Time now);

}  // namespace cachecar::app

#endif  // CACHECAR_APP_READINESS_H_
