// GrpcServer: builds and runs the gRPC server: the Cache service, the
// standard grpc.health.v1.Health service and server reflection (so grpcurl
// can list and describe everything), on every configured address.
//
// Health: "" and "cachecar.v1.Cache" are SERVING once started; Shutdown turns
// them NOT_SERVING before it stops accepting calls.
//
// Thread-safety: Start once; Shutdown may be called from any one thread.
#ifndef CACHECAR_SERVER_GRPC_SERVER_H_
#define CACHECAR_SERVER_GRPC_SERVER_H_

#include <memory>
#include <string>
#include <vector>

#include <grpcpp/server.h>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "server/cache_grpc_service.h"
#include "server/health_service.h"
#include "server/listen_address.h"
#include "server/reflection_service.h"
#include "service/cache_service.h"

namespace cachecar::server {

struct ServerOptions {
  std::vector<std::string> listen = {"127.0.0.1:50051"};
  // Requests larger than this get RESOURCE_EXHAUSTED from gRPC itself.
  int max_message_bytes = 4 << 20;
};

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(
      const ServerOptions& options, service::CacheService& service);
  ~GrpcServer();

  HealthService& health() { return *health_; }

  // The addresses actually bound (port 0 resolved to the chosen port).
  const std::vector<std::string>& bound_addresses() const { return bound_; }

  // Health NOT_SERVING, then stop accepting; calls in flight get until
  // `grace` to finish, then are cancelled. Returns when all are done.
  void Shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;

  std::unique_ptr<CacheGrpcService> cache_service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<ReflectionService> reflection_;
  std::vector<std::unique_ptr<UnixSocketClaim>> unix_claims_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> bound_;
  bool shut_down_ = false;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_GRPC_SERVER_H_
