// "Outcome unknown": a write whose commit may or may not have happened (the
// connection broke after COMMIT was sent). Callers must not treat it as a
// failure (the value may be live) nor as a success (it may not be): the
// service invalidates the key and reports UNAVAILABLE.
//
// It is an absl::Status with code kUnavailable and a payload marking it, so
// code that only looks at the code still retries, and code that must tell it
// apart (the write path) can.
#ifndef CACHECAR_STORE_OUTCOME_H_
#define CACHECAR_STORE_OUTCOME_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cachecar::store {

absl::Status OutcomeUnknownError(absl::string_view message);
bool IsOutcomeUnknown(const absl::Status& status);

// Precondition failures name what was expected and what was found.
// `deleted`: `found` is the version at which the key was deleted (it holds
// no value).
absl::Status VersionMismatchError(absl::string_view key, uint64_t expected, uint64_t found,
                                  bool deleted = false);
absl::Status NotAbsentError(absl::string_view key, uint64_t found);
// A batch's precondition failure: `status` prefixed with which write failed.
absl::Status InBatchWrite(size_t index, const absl::Status& status);

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_OUTCOME_H_
