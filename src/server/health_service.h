// HealthService: grpc.health.v1.Health (Check and Watch), served from our own
// generated code so that server reflection can describe it (gRPC's built-in
// health service is invisible to reflection, and grpcurl could not call it),
// on GrpcServer's completion queues like every other service (a service on
// another API would bring gRPC threads of its own that compete for the
// sockets: docs/BENCHMARKS.md, "Serving core").
//
// Names start NOT_SERVING until SetServing() says otherwise; unknown names
// are NOT_FOUND for Check and SERVICE_UNKNOWN for Watch. Shutdown() turns
// every name NOT_SERVING for good and ends open Watch streams, so they do
// not hold the server's shutdown for its whole grace period.
//
// Thread-safety: all methods may be called from any thread.
#ifndef CACHECAR_SERVER_HEALTH_SERVICE_H_
#define CACHECAR_SERVER_HEALTH_SERVICE_H_

#include <grpcpp/completion_queue.h>

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "metrics/metrics.h"
#include "server/completion_tag.h"
#include "server/unary_call.h"

namespace cachecar::server {

class HealthService final {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;
  using RawService = grpc::health::v1::Health::WithRawMethod_Check<
      grpc::health::v1::Health::WithRawMethod_Watch<grpc::health::v1::Health::Service>>;

  explicit HealthService(const std::vector<std::string>& names);
  ~HealthService();

  void SetServing(const std::string& name, bool serving);
  void SetAllServing(bool serving);
  void Shutdown();

  // What the server registers, and one call of each method put up on `cq`
  // (see CacheGrpcService::Listen).
  grpc::Service* grpc_service() { return &raw_; }
  void Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics, CallCounter& counter);

 private:
  class Watcher;
  void Check(UnaryCall* call);
  void Set(const std::string& name, Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A new Watch stream: registered, and told the name's status.
  void Register(Watcher* watcher, const std::string& name);
  void Unregister(Watcher* watcher);

  RawService raw_;
  UnaryCall::Method check_;
  absl::Mutex mu_;
  std::map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_HEALTH_SERVICE_H_
