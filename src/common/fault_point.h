// Fault points for fault-injection tests: FaultPoint("name") kills the
// process with SIGKILL when the environment variable CACHECAR_FAULT_POINT
// equals "name" (read once, at the first call); FaultArmed("name") says
// whether it does, for planted bugs that show a checker can fail. Without
// the variable a fault point is one load of a cached flag. Never set it in
// production.
#ifndef CACHECAR_COMMON_FAULT_POINT_H_
#define CACHECAR_COMMON_FAULT_POINT_H_

namespace cachecar {

// Fault point names (one per place in the code).
inline constexpr char kFaultAfterCommit[] = "after_commit";  // a write committed, not announced
// A planted bug: a positioned replica whose broker answers calls itself
// fresh (what the old topic-only bound amounted to once the broker was
// back), ignoring the relays' watermarks; the C4 tests must then fail.
inline constexpr char kFaultTopicFreshnessOnly[] = "topic_freshness_only";

void FaultPoint(const char* name);
bool FaultArmed(const char* name);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_FAULT_POINT_H_
