// See readiness.h.
#include "app/readiness.h"

#include <algorithm>

namespace cachecar::app {

absl::Duration StuckAfter(absl::Duration store_call_timeout) {
  return std::max(absl::Seconds(30), store_call_timeout * 3);
}

absl::Status ProcessReadiness(bool replicated_loaded, service::ProgressWatch& progress,
                              uint64_t completed, size_t queued, absl::Time now) {
  if (!replicated_loaded) {
    return absl::UnavailableError(
        "the replicated namespaces are not loaded yet (readiness waits for their first whole "
        "load from the store)");
  }
  return progress.Check(completed, queued, now);
}

}  // namespace cachecar::app
