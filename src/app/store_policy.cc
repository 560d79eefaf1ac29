// See store_policy.h.
#include "app/store_policy.h"

namespace cachecar::app {

absl::Duration OutboxPruneAfter(const config::Config& config) {
  return config.kafka_brokers.empty() ? absl::Minutes(10) : absl::ZeroDuration();
}

}  // namespace cachecar::app
