// See health_service.h.
#include "server/health_service.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>

#include <optional>

#include "server/raw_message.h"

namespace cachecar::server {

using grpc::health::v1::HealthCheckRequest;
using grpc::health::v1::HealthCheckResponse;

namespace {
size_t HealthMetricsIndex() {
  return metrics::Metrics::MethodIndex("/grpc.health.v1.Health/Check");
}
}  // namespace

// One Watch stream: writes the latest status, one write at a time; a status
// that changes while a write is in flight is sent when it completes.
//
// gRPC holds at most the done notification and one write or the Finish;
// the watcher deletes itself once all have come back, after it left the
// service's set (so no Update can reach it any more).
class HealthService::Watcher final {
 public:
  static void Listen(HealthService* service, grpc::ServerCompletionQueue* cq,
                     metrics::Metrics* metrics, CallCounter& counter) {
    auto* w = new Watcher(service, cq, metrics, counter);
    w->ctx_.AsyncNotifyWhenDone(&w->done_tag_);
    service->raw_.RequestWatch(&w->ctx_, &w->request_, &w->writer_, cq, cq, &w->request_tag_);
  }

  // Called by the service (under its mutex) with a new status; `last`
  // finishes the stream after that status is written.
  void Update(Status status, bool last) {
    absl::MutexLock lock(&mu_);
    if (finished_) return;
    pending_ = status;
    finish_after_ = finish_after_ || last;
    if (!writing_) WriteNextLocked();
  }

 private:
  Watcher(HealthService* service, grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
          CallCounter& counter)
      : service_(service), cq_(cq), metrics_(metrics), counter_(counter), writer_(&ctx_) {
    counter_.Add();
  }
  ~Watcher() { counter_.Remove(); }

  void OnRequest(bool ok) {
    if (!ok) {  // shutting down before a client came: no other tag will come back
      delete this;
      return;
    }
    Listen(service_, cq_, metrics_, counter_);
    HealthCheckRequest request;
    if (!ParseMessage(request_, &request)) {
      absl::MutexLock lock(&mu_);
      FinishLocked(UnparseableRequest(request));
      return;
    }
    service_->Register(this, request.service());
  }

  void OnWritten(bool ok) {
    absl::MutexLock lock(&mu_);
    writing_ = false;
    if (!ok) return FinishLocked(grpc::Status::CANCELLED);
    WriteNextLocked();
  }

  void OnDone(bool /*ok*/) {
    {
      absl::MutexLock lock(&mu_);
      done_ = true;
      FinishLocked(grpc::Status::CANCELLED);
    }
    MaybeRelease();
  }

  void OnFinished(bool /*ok*/) {
    {
      absl::MutexLock lock(&mu_);
      finish_done_ = true;
    }
    MaybeRelease();
  }

  void WriteNextLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_) return;
    if (pending_.has_value() && (!sent_.has_value() || *sent_ != *pending_)) {
      HealthCheckResponse response;
      response.set_status(*pending_);
      response_ = SerializeMessage(response);
      sent_ = pending_;
      pending_.reset();
      writing_ = true;
      writer_.Write(response_, &write_tag_);
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
    code_ = status.error_code();
    writer_.Finish(status, &finish_tag_);
  }

  void MaybeRelease() {
    grpc::StatusCode code;
    {
      absl::MutexLock lock(&mu_);
      if (!done_ || !finish_done_ || writing_ || released_) return;
      released_ = true;
      code = code_;
    }
    service_->Unregister(this);
    if (metrics_ != nullptr)
      metrics_->ObserveRequest(HealthMetricsIndex(), code, absl::ZeroDuration());
    delete this;
  }

  HealthService* const service_;
  std::string name_;  // set by Register, read by Set: under the service's mutex
  grpc::ServerCompletionQueue* const cq_;
  metrics::Metrics* const metrics_;
  CallCounter& counter_;
  grpc::ServerContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
  EventTag<Watcher, &Watcher::OnRequest> request_tag_{this};
  EventTag<Watcher, &Watcher::OnWritten> write_tag_{this};
  EventTag<Watcher, &Watcher::OnFinished> finish_tag_{this};
  EventTag<Watcher, &Watcher::OnDone> done_tag_{this};

  absl::Mutex mu_;
  grpc::ByteBuffer response_ ABSL_GUARDED_BY(mu_);  // the write in flight
  std::optional<Status> pending_ ABSL_GUARDED_BY(mu_);
  std::optional<Status> sent_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool finish_after_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;     // Finish started
  bool finish_done_ ABSL_GUARDED_BY(mu_) = false;  // and came back
  bool done_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  grpc::StatusCode code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;

  friend class HealthService;
};

HealthService::HealthService(const std::vector<std::string>& names) {
  check_.metrics_method = HealthMetricsIndex();
  check_.request = [this](grpc::ServerContext* ctx, grpc::ByteBuffer* bytes,
                          UnaryCall::Responder* responder, grpc::ServerCompletionQueue* cq,
                          void* tag) { raw_.RequestCheck(ctx, bytes, responder, cq, cq, tag); };
  check_.handle = [this](UnaryCall* call) { Check(call); };
  absl::MutexLock lock(&mu_);
  for (const std::string& name : names) statuses_[name] = HealthCheckResponse::NOT_SERVING;
}

HealthService::~HealthService() = default;

void HealthService::Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                           CallCounter& counter) {
  UnaryCall::Listen(check_, cq, metrics, counter);
  Watcher::Listen(this, cq, metrics, counter);
}

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

void HealthService::Register(Watcher* watcher, const std::string& name) {
  absl::MutexLock lock(&mu_);
  watcher->name_ = name;
  watchers_.insert(watcher);
  auto it = statuses_.find(name);
  watcher->Update(it == statuses_.end() ? HealthCheckResponse::SERVICE_UNKNOWN : it->second,
                  shut_down_);
}

void HealthService::Unregister(Watcher* watcher) {
  absl::MutexLock lock(&mu_);
  watchers_.erase(watcher);
}

void HealthService::Check(UnaryCall* call) {
  HealthCheckRequest request;
  if (!call->Parse(&request)) return;
  std::optional<Status> status;
  {
    absl::MutexLock lock(&mu_);
    auto it = statuses_.find(request.service());
    if (it != statuses_.end()) status = it->second;
  }
  if (!status.has_value()) {
    return call->Fail(grpc::Status(grpc::StatusCode::NOT_FOUND,
                                   "unknown service name '" + request.service().substr(0, 128) +
                                       "'; known: \"\", cachecar.v1.Cache, readiness, liveness, "
                                       "cachecar.v1.Cache/store, cachecar.v1.Cache/sync"));
  }
  HealthCheckResponse response;
  response.set_status(*status);
  call->Reply(response);
}

}  // namespace cachecar::server
