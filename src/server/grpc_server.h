// GrpcServer: builds and runs the gRPC server: the Cache service, the
// standard grpc.health.v1.Health service and server reflection (so grpcurl
// can list and describe everything), on every configured address; and, on
// the probe addresses, a second server with only grpc.health.v1 (for
// kubelet probes from outside the pod while the API stays on loopback).
//
// Health names: "liveness" is SERVING while the process runs; "readiness",
// "" and "cachecar.v1.Cache" follow SetReady() (start: not ready);
// "cachecar.v1.Cache/store" and "cachecar.v1.Cache/sync" (the shared
// dependencies, for operators' alerts) follow SetHealth(). Shutdown turns
// every name NOT_SERVING and ends every Cache.Watch stream (UNAVAILABLE)
// before it stops accepting calls.
//
// Thread-safety: Start once; Shutdown may be called from any one thread.
#ifndef CACHECAR_SERVER_GRPC_SERVER_H_
#define CACHECAR_SERVER_GRPC_SERVER_H_

#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"
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
  // Addresses that serve only grpc.health.v1; empty: none.
  std::vector<std::string> probe_listen;
  // Records every call when set; must outlive the server.
  metrics::Metrics* metrics = nullptr;
  // Serves Cache.Watch when set (else Watch is UNIMPLEMENTED); must outlive
  // the server. Shutdown closes its watchers (WatchHub::CloseAll).
  service::WatchHub* watch_hub = nullptr;
};

inline constexpr const char kLivenessName[] = "liveness";
inline constexpr const char kReadinessName[] = "readiness";
inline constexpr const char kStoreHealthName[] = "cachecar.v1.Cache/store";
inline constexpr const char kSyncHealthName[] = "cachecar.v1.Cache/sync";

class GrpcServer {
 public:
  static absl::StatusOr<std::unique_ptr<GrpcServer>> Start(const ServerOptions& options,
                                                           service::CacheService& service);
  ~GrpcServer();

  // Readiness: "readiness", "" and "cachecar.v1.Cache", on every listener.
  void SetReady(bool ready);
  // Another health name (kStoreHealthName, kSyncHealthName), on every
  // listener.
  void SetHealth(const std::string& name, bool serving);

  // The addresses actually bound (port 0 resolved to the chosen port).
  const std::vector<std::string>& bound_addresses() const { return bound_; }
  const std::vector<std::string>& bound_probe_addresses() const { return probe_bound_; }

  // Health NOT_SERVING and Watch streams ended, then stop accepting; calls
  // in flight get until `grace` to finish, then are cancelled. Returns when
  // all are done.
  void Shutdown(absl::Duration grace);

 private:
  GrpcServer() = default;

  std::unique_ptr<CacheGrpcService> cache_service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<HealthService> probe_health_;  // null without probe_listen
  std::unique_ptr<grpc::Server> probe_server_;
  std::vector<std::string> probe_bound_;
  std::unique_ptr<ReflectionService> reflection_;
  std::vector<std::unique_ptr<UnixSocketClaim>> unix_claims_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::string> bound_;
  service::WatchHub* watch_hub_ = nullptr;
  bool shut_down_ = false;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_GRPC_SERVER_H_
