// When a failed attempt is retried, and how long to wait before the next:
// the one policy every cachecar client library implements (the rules are in
// clients/conformance/README.md; the Go and Python libraries keep the same
// lists of transport messages).
//
// Pure functions; thread-safe.
#ifndef CACHECAR_CLIENT_RETRY_H_
#define CACHECAR_CLIENT_RETRY_H_

#include <grpcpp/support/status_code_enum.h>

#include <chrono>
#include <string>

#include "cachecar/client/client.h"

namespace cachecar::client::internal {

enum class CallKind { kRead, kWrite };

struct Verdict {
  bool retry = false;            // safe (or, with retry_outcome_unknown, allowed) to send again
  bool outcome_unknown = false;  // a write that may have been applied
};

// A failed attempt's verdict. `sent` is false when the deadline had passed
// before the attempt was started (gRPC then fails it without sending).
Verdict Classify(CallKind kind, grpc::StatusCode code, const std::string& message, bool sent,
                 bool retry_outcome_unknown);

// True if the message is gRPC's for a connection that was never made (the
// call never left the client).
bool NeverConnected(const std::string& message);
// True if the message is gRPC's for a connection that broke with the call in
// flight.
bool ConnectionBroke(const std::string& message);

// The wait before attempt `attempt` (2 for the first retry); `unit` is a
// uniform random number in [0, 1) for the jitter.
std::chrono::microseconds Backoff(const RetryPolicy& policy, int attempt, double unit);

}  // namespace cachecar::client::internal

#endif  // CACHECAR_CLIENT_RETRY_H_
