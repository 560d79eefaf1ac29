// See watch_call.h.
#include "server/watch_call.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>

#include <memory>
#include <optional>
#include <utility>

#include "common/mutex.h"
#include "server/completion_tag.h"
#include "server/grpc_status.h"
#include "server/raw_message.h"

namespace cachecar::server {
namespace {

v1::WatchOp ToWatchOp(service::ChangeOp op) {
  switch (op) {
    case service::ChangeOp::kUpsert:
      return v1::WATCH_OP_UPSERT;
    case service::ChangeOp::kDelete:
      return v1::WATCH_OP_DELETE;
    case service::ChangeOp::kInvalidate:
      return v1::WATCH_OP_INVALIDATE;
    case service::ChangeOp::kFlush:
      return v1::WATCH_OP_FLUSH;
  }
  return v1::WATCH_OP_UNSPECIFIED;
}

// One Watch stream: a WatchHub watcher whose changes are written one at a
// time (the next when the last is done), ending with the watcher's close
// status (fell behind, shutting down) or when the client goes away.
//
// Operations gRPC may hold at once: the done notification, and one write
// (the headers, an event) or the Finish. Owned by `self_` from Listen until
// every one of them came back, and by a hub wake running at that moment, so
// a wake never touches a deleted call.
class WatchCall final {
 public:
  static void Listen(CacheGrpcService::RawService& raw, service::WatchHub* hub,
                     grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                     CallCounter& counter) {
    std::shared_ptr<WatchCall> call(new WatchCall(raw, hub, cq, metrics, counter));
    call->self_ = call;
    call->weak_ = call;
    call->ctx_.AsyncNotifyWhenDone(&call->done_tag_);
    raw.RequestWatch(&call->ctx_, &call->request_, &call->writer_, cq, cq, &call->request_tag_);
  }
  ~WatchCall() { counter_.Remove(); }

 private:
  WatchCall(CacheGrpcService::RawService& raw, service::WatchHub* hub,
            grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics, CallCounter& counter)
      : raw_(raw), hub_(hub), cq_(cq), metrics_(metrics), counter_(counter), writer_(&ctx_) {
    counter_.Add();
  }

  void OnRequest(bool ok) {
    if (!ok) {  // shutting down before a client came: no other tag will come back
      self_.reset();
      return;
    }
    Listen(raw_, hub_, cq_, metrics_, counter_);
    v1::WatchRequest request;
    if (!ParseMessage(request_, &request)) return FinishNow(UnparseableRequest(request));
    if (hub_ == nullptr) {
      return FinishNow(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                    "this cachecar serves no Watch (no watch hub)"));
    }
    std::weak_ptr<WatchCall> weak = weak_;
    auto watcher = hub_->Subscribe(request.namespace_(), request.key_prefix(), [weak] {
      if (std::shared_ptr<WatchCall> call = weak.lock()) call->Pump();
    });
    if (!watcher.ok()) return FinishNow(ToGrpcStatus(watcher.status()));
    {
      MutexLock lock(&mu_);
      watcher_ = std::move(*watcher);
      // Headers first: they tell the client that changes from here on will
      // reach it. No event is written before they are sent.
      writing_ = true;
    }
    writer_.SendInitialMetadata(&write_tag_);
  }

  void OnWritten(bool ok) {
    {
      MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) gone_ = true;  // the stream broke: the client cannot read more
    }
    Pump();
    MaybeRelease();
  }

  void OnDone(bool /*ok*/) {
    {
      MutexLock lock(&mu_);
      done_ = true;
      gone_ = true;  // cancelled, or finished: either way nothing more to send
    }
    Pump();
    MaybeRelease();
  }

  void OnFinished(bool /*ok*/) {
    {
      MutexLock lock(&mu_);
      finish_done_ = true;
    }
    MaybeRelease();
  }

  // Ends the stream from the polling thread before any write started.
  void FinishNow(const grpc::Status& status) {
    {
      MutexLock lock(&mu_);
      finishing_ = true;
      code_ = status.error_code();
    }
    writer_.Finish(status, &finish_tag_);
  }

  // Starts the next write, or Finish, unless an operation is in flight.
  // Called on wake, on OnWritten and on OnDone; never blocks.
  void Pump() {
    std::optional<grpc::Status> finish;
    {
      MutexLock lock(&mu_);
      if (watcher_ == nullptr || writing_ || finishing_) return;
      service::Change change;
      if (gone_) {
        finish = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      } else if (watcher_->Next(&change)) {
        v1::WatchEvent event;
        event.set_key(std::move(change.key));
        event.set_version(change.version);
        event.set_op(ToWatchOp(change.op));
        event.set_local(change.local);
        event_ = SerializeMessage(event);
        writing_ = true;
      } else if (absl::Status closed = watcher_->status(); !closed.ok()) {
        finish = ToGrpcStatus(closed);
      } else {
        return;  // nothing queued: the next wake comes back here
      }
      if (finish.has_value()) {
        finishing_ = true;
        code_ = finish->error_code();
      }
    }
    // Outside mu_: gRPC may complete operations inline. event_ is not
    // touched again until OnWritten.
    if (finish.has_value()) {
      writer_.Finish(*finish, &finish_tag_);
    } else {
      writer_.Write(event_, &write_tag_);
    }
  }

  // Once gRPC holds nothing of this call: unsubscribe, count, release.
  void MaybeRelease() {
    std::shared_ptr<service::WatchHub::Watcher> watcher;
    grpc::StatusCode code;
    {
      MutexLock lock(&mu_);
      if (!done_ || writing_ || !finish_done_ || released_) return;
      released_ = true;
      watcher = std::move(watcher_);
      code = code_;
    }
    if (watcher != nullptr) hub_->Unsubscribe(watcher);
    if (metrics_ != nullptr) {
      metrics_->ObserveRequest(metrics::Metrics::MethodIndex("/cachecar.v1.Cache/Watch"), code,
                               absl::ZeroDuration());
    }
    std::shared_ptr<WatchCall> self = std::move(self_);  // `this` may go with it
  }

  CacheGrpcService::RawService& raw_;
  service::WatchHub* const hub_;
  grpc::ServerCompletionQueue* const cq_;
  metrics::Metrics* const metrics_;
  CallCounter& counter_;
  std::shared_ptr<WatchCall> self_;  // dropped by the last tag (see above)
  std::weak_ptr<WatchCall> weak_;

  grpc::ServerContext ctx_;
  grpc::ByteBuffer request_;
  grpc::ServerAsyncWriter<grpc::ByteBuffer> writer_;
  grpc::ByteBuffer event_;  // the write in flight (writing_)
  EventTag<WatchCall, &WatchCall::OnRequest> request_tag_{this};
  EventTag<WatchCall, &WatchCall::OnWritten> write_tag_{this};
  EventTag<WatchCall, &WatchCall::OnFinished> finish_tag_{this};
  EventTag<WatchCall, &WatchCall::OnDone> done_tag_{this};

  Mutex mu_;
  std::shared_ptr<service::WatchHub::Watcher> watcher_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;      // headers or an event in flight
  bool gone_ ABSL_GUARDED_BY(mu_) = false;         // cancelled, or a write failed
  bool finishing_ ABSL_GUARDED_BY(mu_) = false;    // Finish started
  bool finish_done_ ABSL_GUARDED_BY(mu_) = false;  // Finish came back
  bool done_ ABSL_GUARDED_BY(mu_) = false;         // the done notification came
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  grpc::StatusCode code_ ABSL_GUARDED_BY(mu_) = grpc::StatusCode::OK;
};

}  // namespace

void ListenForWatch(CacheGrpcService::RawService& raw, service::WatchHub* hub,
                    grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                    CallCounter& counter) {
  WatchCall::Listen(raw, hub, cq, metrics, counter);
}

}  // namespace cachecar::server
