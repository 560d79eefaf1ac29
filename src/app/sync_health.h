// What the sync topic's state means for health and /metrics: the rule and
// message of health cachecar.v1.Cache/sync, and the SyncSample /metrics
// shows. Pure functions of facts the caller gathers; safe from any thread.
#ifndef CACHECAR_APP_SYNC_HEALTH_H_
#define CACHECAR_APP_SYNC_HEALTH_H_

#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"
#include "service/sync_replication.h"
#include "sync/sync.h"

namespace cachecar::app {

// The sync state health cachecar.v1.Cache/sync is decided from.
struct SyncHealthFacts {
  std::string topic;
  absl::Duration max_staleness;
  bool serve_stale = false;  // stale_reads: serve
  bool positioned = false;
  bool broker_reachable = false;
  std::string last_error;     // the Kafka client's, "" when none
  bool within_bound = false;  // SyncReplication::WithinBound
  bool clock_calibrated = false;
  bool watermarks_cover_partitions = false;  // applied_as_of is known
  int relays_seen = 0;                       // relays with watermarks in the last 5 s
  absl::Duration staleness = absl::InfiniteDuration();
};

// OK when positioned and within max_staleness by the relays' watermarks
// (whatever stale_reads says), else UNAVAILABLE saying what is down or
// behind.
absl::Status SyncHealth(const SyncHealthFacts& facts);

// What /metrics shows besides the consumer's SyncStats and the applier's
// ApplyStats.
struct SyncSampleFacts {
  bool bypass = false;  // !SyncReplication::CacheTrusted
  absl::Duration staleness = absl::InfiniteDuration();
  bool has_relay = false;  // this replica is a relay candidate (has an outbox)
  uint64_t relayed = 0;
  bool relay_lease = false;
  uint64_t relay_watermarks = 0;
  uint64_t retired = 0;
  uint64_t bypassed_reads = 0;
  int relays_seen = 0;  // relays with watermarks in the last 5 s
  absl::Duration clock_uncertainty = absl::InfiniteDuration();
};

metrics::Metrics::SyncSample SyncSampleOf(const sync::SyncStats& stats,
                                          const service::ApplyStats& applied,
                                          const SyncSampleFacts& facts);

// Seconds as a double, +Inf for an infinite duration.
double SecondsOrInfinity(absl::Duration d);

}  // namespace cachecar::app

#endif  // CACHECAR_APP_SYNC_HEALTH_H_
