// See deadline.h.
#include "server/deadline.h"

#include <cstdint>

namespace cachecar::server {

absl::Time DeadlineFromGrpc(gpr_timespec deadline) {
  // Any clock to the wall clock; gRPC saturates at its infinities.
  const gpr_timespec wall = gpr_convert_clock_type(deadline, GPR_CLOCK_REALTIME);
  constexpr int64_t kYear10000 = 253402300800;  // seconds since the epoch
  if (wall.tv_sec >= kYear10000) return absl::InfiniteFuture();
  if (wall.tv_sec <= -kYear10000) return absl::InfinitePast();
  return absl::FromUnixSeconds(wall.tv_sec) + absl::Nanoseconds(wall.tv_nsec);
}

}  // namespace cachecar::server
