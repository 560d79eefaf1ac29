// GrpcServer: builds and runs the gRPC server: the Cache service, the
// standard grpc.health.v1.Health service and server reflection (so grpcurl
// can list and describe everything), on every configured address; and, on
// the probe addresses, a second server with only grpc.health.v1 (for
// kubelet probes from outside the pod while the API stays on loopback).
//
// Serving core (docs/BENCHMARKS.md, "Serving core", has the measurements):
// every service runs on gRPC's completion-queue API, on `polling_threads`
// queues, each polled by one thread of ours that runs the handlers inline: a
// cache hit is answered on the thread that read the request, a miss goes to
// CacheService's worker pool. No service uses the sync or callback API: each
// would bring gRPC threads of its own that poll the same sockets and hand
// every call across threads. For the same reason the probe server's queue is
// not waited on: a thread drains it every kProbeTick (the main server's
// threads read the probe sockets too, as gRPC's epoll1 poller polls every
// socket of the process from any polling thread).
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

#include <grpcpp/completion_queue.h>
#include <grpcpp/server.h>

#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "metrics/metrics.h"
#include "server/cache_grpc_service.h"
#include "server/completion_tag.h"
#include "server/health_service.h"
#include "server/listen_address.h"
#include "server/reflection_service.h"
#include "server/unknown_method_service.h"
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
  // Completion queues of the API server, one polling thread each.
  int polling_threads = 1;
};

inline constexpr const char kLivenessName[] = "liveness";
inline constexpr const char kReadinessName[] = "readiness";
// How often the probe server's queue is drained (a probe waits at most this).
inline constexpr absl::Duration kProbeTick = absl::Milliseconds(20);
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
  // Stops one server: gRPC's Shutdown (its threads still draining), then,
  // once no call object is left, its queues; joins `threads`.
  static void StopServer(grpc::Server* server, absl::Duration grace, CallCounter& calls,
                         std::vector<std::unique_ptr<grpc::ServerCompletionQueue>>& cqs,
                         std::vector<std::thread>& threads, absl::Notification* stop_ticking);

  std::unique_ptr<CacheGrpcService> cache_service_;
  std::unique_ptr<HealthService> health_;
  std::unique_ptr<ReflectionService> reflection_;
  std::unique_ptr<UnknownMethodService> unknown_;
  std::unique_ptr<HealthService> probe_health_;  // null without probe_listen
  std::unique_ptr<UnknownMethodService> probe_unknown_;
  std::vector<std::unique_ptr<UnixSocketClaim>> unix_claims_;

  CallCounter calls_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> cqs_;
  std::unique_ptr<grpc::Server> server_;
  std::vector<std::thread> pollers_;
  std::vector<std::string> bound_;

  CallCounter probe_calls_;
  std::vector<std::unique_ptr<grpc::ServerCompletionQueue>> probe_cqs_;
  std::unique_ptr<grpc::Server> probe_server_;
  std::vector<std::thread> probe_ticker_;
  absl::Notification stop_ticking_;
  std::vector<std::string> probe_bound_;

  service::WatchHub* watch_hub_ = nullptr;
  bool shut_down_ = false;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_GRPC_SERVER_H_
