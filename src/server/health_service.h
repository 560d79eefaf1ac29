// HealthService: grpc.health.v1.Health (Check and Watch), served from our own
// generated code so that server reflection can describe it (gRPC's built-in
// health service is invisible to reflection, and grpcurl could not call it).
//
// Names start NOT_SERVING until SetServing() says otherwise; unknown names
// are NOT_FOUND for Check and SERVICE_UNKNOWN for Watch. Shutdown() turns
// every name NOT_SERVING for good and ends open Watch streams, so they do
// not hold the server's shutdown for its whole grace period.
//
// Thread-safety: all methods may be called from any thread.
#ifndef CACHECAR_SERVER_HEALTH_SERVICE_H_
#define CACHECAR_SERVER_HEALTH_SERVICE_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace cachecar::server {

class HealthService final : public grpc::health::v1::Health::CallbackService {
 public:
  using Status = grpc::health::v1::HealthCheckResponse::ServingStatus;

  explicit HealthService(const std::vector<std::string>& names);
  ~HealthService() override;

  void SetServing(const std::string& name, bool serving);
  void SetAllServing(bool serving);
  void Shutdown();

  grpc::ServerUnaryReactor* Check(grpc::CallbackServerContext* ctx,
                                  const grpc::health::v1::HealthCheckRequest* request,
                                  grpc::health::v1::HealthCheckResponse* response) override;
  grpc::ServerWriteReactor<grpc::health::v1::HealthCheckResponse>* Watch(
      grpc::CallbackServerContext* ctx,
      const grpc::health::v1::HealthCheckRequest* request) override;

 private:
  class Watcher;
  void Set(const std::string& name, Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void Unregister(Watcher* watcher);

  absl::Mutex mu_;
  std::map<std::string, Status> statuses_ ABSL_GUARDED_BY(mu_);
  std::set<Watcher*> watchers_ ABSL_GUARDED_BY(mu_);
  bool shut_down_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_HEALTH_SERVICE_H_
