// The one mapping from absl::Status to grpc::Status, at the gRPC edge.
// absl's codes are gRPC's codes, so the mapping keeps code and message.
#ifndef CACHECAR_SERVER_GRPC_STATUS_H_
#define CACHECAR_SERVER_GRPC_STATUS_H_

#include <grpcpp/support/status.h>

#include "absl/status/status.h"

namespace cachecar::server {

grpc::Status ToGrpcStatus(const absl::Status& status);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_GRPC_STATUS_H_
