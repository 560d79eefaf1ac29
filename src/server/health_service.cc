// See health_service.h.
#include "server/health_service.h"

#include <optional>

namespace cachecar::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

// One Watch stream: writes the latest status, one write at a time; a status
// that changes while a write is in flight is sent when it completes.
class HealthService::Watcher final : public grpc::ServerWriteReactor<HealthCheckResponse> {
 public:
  Watcher(HealthService* service, std::string name) : service_(service), name_(std::move(name)) {}

  // Called by the service (under its mutex) with a new status; `last`
  // finishes the stream after that status is written.
  void Update(Status status, bool last) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_ = status;
    finish_after_ = finish_after_ || last;
    if (!writing_) WriteNextLocked();
  }

  void OnWriteDone(bool ok) override {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    WriteNextLocked();
  }

  void OnCancel() override {
    absl::MutexLock lock(&mu_);
    FinishLocked(grpc::Status::CANCELLED);
  }

  void OnDone() override {
    service_->Unregister(this);
    delete this;
  }

 private:
  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (pending_.has_value() && (!sent_.has_value() || *sent_ != *pending_)) {
      response_.set_status(*pending_);
      sent_ = pending_;
      pending_.reset();
      writing_ = true;
      StartWrite(&response_);
      return;
    }
    if (finish_after_) FinishLocked(grpc::Status::OK);
  }

  void FinishLocked(const grpc::Status& status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || writing_) {
      finish_after_ = true;
      return;
    }
    finished_ = true;
    Finish(status);
  }

  HealthService* const service_;
  const std::string name_;
  absl::Mutex mu_;
  HealthCheckResponse response_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_after_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;

  friend class HealthService;
};

HealthService::HealthService(const std::vector<std::string>& names) {
  absl::MutexLock lock(&mu_);
  for (const std::string& name : names) statuses_[name] = HealthCheckResponse::NOT_SERVING;
}

HealthService::~HealthService() = default;

void HealthService::Set(const std::string& name, Status status) {
  if (shut_down_) return;
  statuses_[name] = status;
  for (Watcher* w : watchers_) {
    if (w->name_ == name) w->Update(status, false);
  }
}

void HealthService::SetServing(const std::string& name, bool serving) {
  absl::MutexLock lock(&mu_);
  Set(name, serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
}

void HealthService::SetAllServing(bool serving) {
  absl::MutexLock lock(&mu_);
  std::vector<std::string> names;
  for (const auto& [name, _] : statuses_) names.push_back(name);
  for (const std::string& name : names) {
    Set(name, serving ? HealthCheckResponse::SERVING : HealthCheckResponse::NOT_SERVING);
  }
}

void HealthService::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shut_down_) return;
  for (auto& [name, status] : statuses_) status = HealthCheckResponse::NOT_SERVING;
  shut_down_ = true;
  for (Watcher* w : watchers_) w->Update(HealthCheckResponse::NOT_SERVING, true);
}

void HealthService::Unregister(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

grpc::ServerUnaryReactor* HealthService::Check(grpc::CallbackServerContext* ctx,
                                               const HealthCheckRequest* request,
                                               HealthCheckResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  absl::MutexLock lock(&mu_);
  auto it = statuses_.find(request->service());
  if (it == statuses_.end()) {
    reactor->Finish(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                 "unknown service name '" + request->service().substr(0, 128) +
                                     "'; known: \"\", cachecar.v1.Cache, readiness, liveness, "
                                     "cachecar.v1.Cache/store, cachecar.v1.Cache/sync"));
    return reactor;
  }
  response->set_status(it->second);
  reactor->Finish(grpc::Status::OK);
  return reactor;
}

grpc::ServerWriteReactor<HealthCheckResponse>* HealthService::Watch(
    grpc::CallbackServerContext* ctx, const HealthCheckRequest* request) {
  auto* watcher = new Watcher(this, request->service());
  absl::MutexLock lock(&mu_);
  watchers_.insert(watcher);
  auto it = statuses_.find(request->service());
  watcher->Update(it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second,
                  shut_down_);
  return watcher;
}

}  // namespace cachecar::server
