// See cache_grpc_service.h.
#include "server/cache_grpc_service.h"

#include <grpcpp/server_context.h>
#include <grpcpp/support/async_stream.h>

#include <chrono>
#include <memory>
#include <optional>
#include <utility>

#include "common/mutex.h"
#include "server/grpc_status.h"
#include "server/raw_message.h"

namespace cachecar::server {
namespace {

service::Consistency ToConsistency(v1::Consistency c) {
  return c == v1::CONSISTENCY_STRONG ? service::Consistency::kStrong
                                     : service::Consistency::kCached;
}

v1::Source ToSource(service::ReadResult::Source s) {
  return s == service::ReadResult::Source::kCache ? v1::SOURCE_CACHE : v1::SOURCE_STORE;
}

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

size_t MetricsIndex(absl::string_view method) {
  return metrics::Metrics::MethodIndex(absl::StrCat("/cachecar.v1.Cache/", method));
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
      metrics_->ObserveRequest(MetricsIndex("Watch"), code, absl::ZeroDuration());
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

CacheGrpcService::CacheGrpcService(service::CacheService& service, service::WatchHub* hub)
    : service_(service), hub_(hub) {
  using Responder = UnaryCall::Responder;
  auto method = [this](absl::string_view name, auto request,
                       void (CacheGrpcService::*handle)(UnaryCall*)) {
    UnaryCall::Method m;
    m.metrics_method = MetricsIndex(name);
    m.request = [this, request](grpc::ServerContext* ctx, grpc::ByteBuffer* bytes,
                                Responder* responder, grpc::ServerCompletionQueue* cq,
                                void* tag) { (raw_.*request)(ctx, bytes, responder, cq, cq, tag); };
    m.handle = [this, handle](UnaryCall* call) { (this->*handle)(call); };
    methods_.push_back(std::move(m));
  };
  method("Get", &RawService::RequestGet, &CacheGrpcService::Get);
  method("BatchGet", &RawService::RequestBatchGet, &CacheGrpcService::BatchGet);
  method("Put", &RawService::RequestPut, &CacheGrpcService::Put);
  method("Delete", &RawService::RequestDelete, &CacheGrpcService::Delete);
  method("Invalidate", &RawService::RequestInvalidate, &CacheGrpcService::Invalidate);
  method("Stats", &RawService::RequestStats, &CacheGrpcService::Stats);
}

void CacheGrpcService::Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                              CallCounter& counter) {
  for (const UnaryCall::Method& m : methods_) UnaryCall::Listen(m, cq, metrics, counter);
  WatchCall::Listen(raw_, hub_, cq, metrics, counter);
}

void CacheGrpcService::Get(UnaryCall* call) {
  v1::GetRequest request;
  if (!call->Parse(&request)) return;
  // A hit is encoded under the shard lock (one copy, engine to wire) and
  // sent once the lock is released.
  grpc::ByteBuffer hit;
  bool answered_from_cache = false;
  service_.Get(
      request.namespace_(), request.key(), ToConsistency(request.consistency()), call->deadline(),
      [&](const service::CacheService::CachedValue& v) {
        hit = EncodeGetResponse(v.found, v.value, v.version, v1::SOURCE_CACHE);
        answered_from_cache = true;
      },
      [call](absl::StatusOr<service::ReadResult> r) {
        if (!r.ok()) return call->Fail(ToGrpcStatus(r.status()));
        call->Reply(EncodeGetResponse(r->found, r->value, r->version, ToSource(r->source)));
      });
  if (answered_from_cache) call->Reply(std::move(hit));
}

void CacheGrpcService::BatchGet(UnaryCall* call) {
  auto request = std::make_shared<v1::BatchGetRequest>();
  if (!call->Parse(request.get())) return;
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  // `request` lives in the callback: the answer takes its keys from there.
  service_.BatchGet(request->namespace_(), std::move(keys), ToConsistency(request->consistency()),
                    call->deadline(),
                    [call, request](absl::StatusOr<std::vector<service::ReadResult>> r) {
                      if (!r.ok()) return call->Fail(ToGrpcStatus(r.status()));
                      v1::BatchGetResponse response;
                      response.mutable_entries()->Reserve(static_cast<int>(r->size()));
                      for (size_t i = 0; i < r->size(); ++i) {
                        service::ReadResult& one = (*r)[i];
                        v1::BatchGetEntry* entry = response.add_entries();
                        entry->set_key(request->keys(static_cast<int>(i)));
                        entry->set_found(one.found);
                        entry->set_value(std::move(one.value));
                        entry->set_version(one.version);
                        entry->set_source(ToSource(one.source));
                      }
                      call->Reply(response);
                    });
}

void CacheGrpcService::Put(UnaryCall* call) {
  v1::PutRequest request;
  if (!call->Parse(&request)) return;
  service::WriteOptions options;
  switch (request.precondition_case()) {
    case v1::PutRequest::kIfVersion:
      options.precondition = store::Precondition::IfVersion(request.if_version());
      break;
    case v1::PutRequest::kIfAbsent:
      if (request.if_absent()) options.precondition = store::Precondition::IfAbsent();
      break;
    case v1::PutRequest::PRECONDITION_NOT_SET:
      break;
  }
  if (request.ttl_ms() > 0) {
    options.ttl = absl::Milliseconds(
        static_cast<int64_t>(std::min<uint64_t>(request.ttl_ms(), uint64_t{1} << 50)));
  }
  service_.Put(request.namespace_(), std::move(*request.mutable_key()),
               std::move(*request.mutable_value()), options, call->deadline(),
               [call](absl::StatusOr<uint64_t> v) {
                 if (!v.ok()) return call->Fail(ToGrpcStatus(v.status()));
                 v1::PutResponse response;
                 response.set_version(*v);
                 call->Reply(response);
               });
}

void CacheGrpcService::Delete(UnaryCall* call) {
  v1::DeleteRequest request;
  if (!call->Parse(&request)) return;
  std::optional<uint64_t> if_version;
  if (request.has_if_version()) if_version = request.if_version();
  service_.Delete(request.namespace_(), std::move(*request.mutable_key()), if_version,
                  call->deadline(), [call](absl::StatusOr<service::DeleteOutcome> r) {
                    if (!r.ok()) return call->Fail(ToGrpcStatus(r.status()));
                    v1::DeleteResponse response;
                    response.set_found(r->found);
                    response.set_version(r->version);
                    call->Reply(response);
                  });
}

void CacheGrpcService::Invalidate(UnaryCall* call) {
  v1::InvalidateRequest request;
  if (!call->Parse(&request)) return;
  std::vector<std::string> keys(request.keys().begin(), request.keys().end());
  service_.Invalidate(
      request.namespace_(), std::move(keys), request.all(),
      [call](absl::StatusOr<uint64_t> dropped) {
        if (!dropped.ok()) return call->Fail(ToGrpcStatus(dropped.status()));
        v1::InvalidateResponse response;
        response.set_dropped(*dropped);
        call->Reply(response);
      },
      request.broadcast());
}

void CacheGrpcService::Stats(UnaryCall* call) {
  v1::StatsRequest request;
  if (!call->Parse(&request)) return;
  auto stats = service_.Stats(request.namespace_());
  if (!stats.ok()) return call->Fail(ToGrpcStatus(stats.status()));
  v1::StatsResponse response;
  for (const service::NamespaceStatsView& ns : *stats) {
    v1::NamespaceStats* out = response.add_namespaces();
    out->set_namespace_(ns.name);
    out->set_entries(ns.engine.entries);
    out->set_bytes(ns.engine.bytes);
    out->set_max_bytes(ns.max_bytes);
    out->set_hits(ns.engine.hits);
    out->set_misses(ns.engine.misses);
    out->set_evictions(ns.engine.evictions);
    out->set_loads(ns.loads);
    out->set_expirations(ns.engine.expirations);
    out->set_fills_rejected(ns.engine.fills_rejected);
  }
  call->Reply(response);
}

}  // namespace cachecar::server
