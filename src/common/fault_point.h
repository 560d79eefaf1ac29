// Fault points for fault-injection tests, armed by the environment variable
// CACHECAR_FAULT_POINT (read once, at the first call). Never set it in
// production.
//   FaultPoint("name") kills the process with SIGKILL when the variable
//   equals "name".
//   FaultPointFires("name", n) is true, so the caller misbehaves on purpose
//   (e.g. drops an event: a planted bug for the chaos checker), when the
//   variable is "name/N" and n is a multiple of N (for "name": always). The
//   caller picks n (an event's version: every copy of that event, on every
//   replica, is dropped alike).
//   FaultArmed("name") says whether the variable equals "name", for planted
//   bugs that show a checker can fail.
// Without the variable a fault point is one load of a cached flag.
// Thread-safe.
#ifndef CACHECAR_COMMON_FAULT_POINT_H_
#define CACHECAR_COMMON_FAULT_POINT_H_

#include <cstdint>

namespace cachecar {

// Fault point names (one per place in the code).
inline constexpr char kFaultAfterCommit[] = "after_commit";  // a write committed, not announced
inline constexpr char kFaultSkipEvent[] = "skip_event";  // a versioned sync event is not applied
// A planted bug: a positioned replica whose broker answers calls itself
// fresh (what the old topic-only bound amounted to once the broker was
// back), ignoring the relays' watermarks; the C4 tests must then fail.
inline constexpr char kFaultTopicFreshnessOnly[] = "topic_freshness_only";
// A planted bug: positioning does not raise the namespaces' floors, so a
// late copy of an old event can cache an old value;
// LateOldEventIsNotCachedByANewReplica must then fail.
inline constexpr char kFaultNoPositioningFloor[] = "no_positioning_floor";
// A planted bug: the staleness auditor counts a divergent entry but does
// not drop it; AuditClusterTest's repair check must then fail.
inline constexpr char kFaultAuditNoRepair[] = "audit_no_repair";

// A planted bug: the warm start reloads before the sync consumer is
// positioned, so positioning's flush drops what it loaded;
// tests/e2e/warm_start_e2e.sh must then fail.
inline constexpr char kFaultWarmStartEarly[] = "warm_start_early";

void FaultPoint(const char* name);
bool FaultArmed(const char* name);
bool FaultPointFires(const char* name, uint64_t n);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_FAULT_POINT_H_
