// The deadline of a gRPC call as absl::Time, read from gRPC's own
// gpr_timespec rather than ServerContext::deadline(): that one converts to
// std::chrono::system_clock, whose nanosecond count overflows past the year
// 2262, so a grpc-timeout of a few million hours (grpcurl -max-time
// 10000000000) came back as a time long past and every store call failed
// with DEADLINE_EXCEEDED at once (issue #17).
//
// Thread-safety: pure functions.
#ifndef CACHECAR_SERVER_DEADLINE_H_
#define CACHECAR_SERVER_DEADLINE_H_

#include <grpc/support/time.h>

#include "absl/time/time.h"

namespace cachecar::server {

// InfiniteFuture for no deadline (gpr_inf_future) or one beyond the year
// 10000, which no call needs told apart from none.
absl::Time DeadlineFromGrpc(gpr_timespec deadline);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_DEADLINE_H_
