// The store's policy for this process: whether PostgreSQL prunes the outbox
// itself. Pure; safe from any thread.
#ifndef CACHECAR_APP_STORE_POLICY_H_
#define CACHECAR_APP_STORE_POLICY_H_

#include "absl/time/time.h"
#include "config/config.h"

namespace cachecar::app {

// Without a sync topic nothing relays the outbox: the store deletes rows
// older than 10 minutes so it cannot grow without bound. With one, the
// relays delete what they published: zero (no pruning).
absl::Duration OutboxPruneAfter(const config::Config& config);

}  // namespace cachecar::app

#endif  // CACHECAR_APP_STORE_POLICY_H_
