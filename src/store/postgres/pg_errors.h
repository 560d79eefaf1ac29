// libpqxx exceptions → absl::Status, in one place. Internal to the adapter.
#ifndef CACHECAR_STORE_POSTGRES_PG_ERRORS_H_
#define CACHECAR_STORE_POSTGRES_PG_ERRORS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cachecar::store::postgres {

enum class CallKind { kRead, kWrite };

struct Failure {
  absl::Status status;
  bool connection_lost = false;  // do not reuse the connection
  bool retryable = false;        // rolled back by the server; safe to run again
};

// Call from inside a catch block: classifies the exception being handled.
// `cancelled`: the pool's watchdog cancelled the statement (deadline).
// `password` is scrubbed from every message.
Failure ClassifyCurrentException(CallKind kind, bool cancelled, const std::string& password);

// The first line of a libpq/libpqxx message, without trailing blanks (their
// texts end in a newline and may run over several lines).
std::string FirstLine(absl::string_view text);

// The "run `cachecar migrate`" hint every schema error carries.
extern const char kMigrateHint[];

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_PG_ERRORS_H_
