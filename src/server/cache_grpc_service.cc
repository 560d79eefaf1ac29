// See cache_grpc_service.h.
#include "server/cache_grpc_service.h"

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/time/clock.h"
#include "common/mutex.h"
#include "server/deadline.h"
#include "server/grpc_status.h"

namespace cachecar::server {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  return DeadlineFromGrpc(ctx->raw_deadline());
}

// Unknown values (a newer client's, or garbage) are refused: reading them as
// CACHED would give a weaker answer than asked for.
std::optional<service::Consistency> ToConsistency(v1::Consistency c) {
  switch (c) {
    case v1::CONSISTENCY_CACHED:
      return service::Consistency::kCached;
    case v1::CONSISTENCY_STRONG:
      return service::Consistency::kStrong;
    default:
      return std::nullopt;
  }
}

grpc::Status UnknownConsistency(int value) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "consistency " + std::to_string(value) +
                          " is not known: use CONSISTENCY_CACHED (0) or CONSISTENCY_STRONG (1)");
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

// A stream that ends as soon as it starts, with `status`.
class FinishedWatch final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  explicit FinishedWatch(grpc::Status status) { Finish(std::move(status)); }
  void OnDone() override { delete this; }
};

// One Watch stream: a WatchHub watcher whose changes are written one at a
// time (the next when the last is done), ending with the watcher's close
// status (fell behind, shutting down) or when the client goes away.
//
// Lifetime: owned by `self_` from Start until OnDone, and by a wake running
// at that moment (the hub may run one after Unsubscribe), so a wake never
// touches a deleted reactor; gRPC's calls never overlap OnDone.
class WatchReactor final : public grpc::ServerWriteReactor<v1::WatchEvent> {
 public:
  static WatchReactor* Start(service::WatchHub& hub, const v1::WatchRequest& request) {
    std::shared_ptr<WatchReactor> reactor(new WatchReactor(hub));
    reactor->self_ = reactor;
    reactor->Subscribe(request, reactor);
    return reactor.get();
  }

  void OnWriteDone(bool ok) override {
    {
      MutexLock lock(&mu_);
      writing_ = false;
      if (!ok) gone_ = true;  // the stream broke: the client cannot read more
    }
    Pump();
  }

  void OnCancel() override {
    {
      MutexLock lock(&mu_);
      gone_ = true;
    }
    Pump();
  }

  void OnDone() override {
    std::shared_ptr<WatchReactor> self = std::move(self_);  // `this` may go with it
    std::shared_ptr<service::WatchHub::Watcher> watcher;
    {
      MutexLock lock(&mu_);
      watcher = std::move(watcher_);
    }
    hub_.Unsubscribe(watcher);
  }

 private:
  explicit WatchReactor(service::WatchHub& hub) : hub_(hub) {}

  void Subscribe(const v1::WatchRequest& request, std::weak_ptr<WatchReactor> weak) {
    auto watcher = hub_.Subscribe(request.namespace_(), request.key_prefix(), [weak] {
      if (std::shared_ptr<WatchReactor> r = weak.lock()) r->Pump();
    });
    if (!watcher.ok()) return Finish(ToGrpcStatus(watcher.status()));
    // Headers now tell the client that changes from here on will reach it.
    // Sent before watcher_ is set, so that no write can start ahead of them.
    StartSendInitialMetadata();
    {
      MutexLock lock(&mu_);
      watcher_ = std::move(*watcher);
    }
    Pump();  // for a wake that came before watcher_ was set
  }

  // Starts the next write, or Finish, unless a write is in flight. Called
  // on wake, on OnWriteDone and on OnCancel; never blocks.
  void Pump() {
    std::optional<grpc::Status> finish;
    {
      MutexLock lock(&mu_);
      if (watcher_ == nullptr || writing_ || finished_) return;
      service::Change change;
      if (gone_) {
        finish = grpc::Status(grpc::StatusCode::CANCELLED, "the client went away");
      } else if (watcher_->Next(&change)) {
        event_.set_key(std::move(change.key));
        event_.set_version(change.version);
        event_.set_op(ToWatchOp(change.op));
        event_.set_local(change.local);
        writing_ = true;
      } else if (absl::Status closed = watcher_->status(); !closed.ok()) {
        finish = ToGrpcStatus(closed);
      } else {
        return;  // nothing queued: the next wake comes back here
      }
      finished_ = finish.has_value();
    }
    // Outside mu_: gRPC may run reactions inline. event_ is not touched
    // again until OnWriteDone.
    if (finish.has_value()) {
      Finish(std::move(*finish));
    } else {
      StartWrite(&event_);
    }
  }

  service::WatchHub& hub_;
  std::shared_ptr<WatchReactor> self_;  // set in Start, dropped in OnDone

  Mutex mu_;
  std::shared_ptr<service::WatchHub::Watcher> watcher_ ABSL_GUARDED_BY(mu_);
  v1::WatchEvent event_;  // the write in flight (writing_)
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool gone_ ABSL_GUARDED_BY(mu_) = false;  // cancelled, or a write failed
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace

grpc::ServerUnaryReactor* CacheGrpcService::Get(grpc::CallbackServerContext* ctx,
                                                const v1::GetRequest* request,
                                                v1::GetResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const std::optional<service::Consistency> consistency = ToConsistency(request->consistency());
  if (!consistency) {
    reactor->Finish(UnknownConsistency(request->consistency()));
    return reactor;
  }
  service_.Get(request->namespace_(), request->key(), *consistency, DeadlineOf(ctx),
               [reactor, response](absl::StatusOr<service::ReadResult> r) {
                 if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                 response->set_found(r->found);
                 response->set_value(std::move(r->value));
                 response->set_version(r->version);
                 response->set_source(ToSource(r->source));
                 reactor->Finish(grpc::Status::OK);
               });
  return reactor;
}

grpc::ServerUnaryReactor* CacheGrpcService::BatchGet(grpc::CallbackServerContext* ctx,
                                                     const v1::BatchGetRequest* request,
                                                     v1::BatchGetResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  const std::optional<service::Consistency> consistency = ToConsistency(request->consistency());
  if (!consistency) {
    reactor->Finish(UnknownConsistency(request->consistency()));
    return reactor;
  }
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  // `request` stays valid until Finish: the answer takes its keys from there.
  service_.BatchGet(
      request->namespace_(), std::move(keys), *consistency, DeadlineOf(ctx),
      [reactor, request, response](absl::StatusOr<std::vector<service::ReadResult>> r) {
        if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
        for (size_t i = 0; i < r->size(); ++i) {
          service::ReadResult& one = (*r)[i];
          v1::BatchGetEntry* entry = response->add_entries();
          entry->set_key(request->keys(static_cast<int>(i)));
          entry->set_found(one.found);
          entry->set_value(std::move(one.value));
          entry->set_version(one.version);
          entry->set_source(ToSource(one.source));
        }
        reactor->Finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* CacheGrpcService::Put(grpc::CallbackServerContext* ctx,
                                                const v1::PutRequest* request,
                                                v1::PutResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  service::WriteOptions options;
  switch (request->precondition_case()) {
    case v1::PutRequest::kIfVersion:
      options.precondition = store::Precondition::IfVersion(request->if_version());
      break;
    case v1::PutRequest::kIfAbsent:
      if (request->if_absent()) options.precondition = store::Precondition::IfAbsent();
      break;
    case v1::PutRequest::PRECONDITION_NOT_SET:
      break;
  }
  if (request->ttl_ms() > 0) {
    options.ttl = absl::Milliseconds(
        static_cast<int64_t>(std::min<uint64_t>(request->ttl_ms(), uint64_t{1} << 50)));
  }
  service_.Put(request->namespace_(), request->key(), request->value(), options, DeadlineOf(ctx),
               [reactor, response](absl::StatusOr<uint64_t> v) {
                 if (!v.ok()) return reactor->Finish(ToGrpcStatus(v.status()));
                 response->set_version(*v);
                 reactor->Finish(grpc::Status::OK);
               });
  return reactor;
}

grpc::ServerUnaryReactor* CacheGrpcService::Delete(grpc::CallbackServerContext* ctx,
                                                   const v1::DeleteRequest* request,
                                                   v1::DeleteResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::optional<uint64_t> if_version;
  if (request->has_if_version()) if_version = request->if_version();
  service_.Delete(request->namespace_(), request->key(), if_version, DeadlineOf(ctx),
                  [reactor, response](absl::StatusOr<service::DeleteOutcome> r) {
                    if (!r.ok()) return reactor->Finish(ToGrpcStatus(r.status()));
                    response->set_found(r->found);
                    response->set_version(r->version);
                    reactor->Finish(grpc::Status::OK);
                  });
  return reactor;
}

grpc::ServerUnaryReactor* CacheGrpcService::Invalidate(grpc::CallbackServerContext* ctx,
                                                       const v1::InvalidateRequest* request,
                                                       v1::InvalidateResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  service_.Invalidate(
      request->namespace_(), std::move(keys), request->all(),
      [reactor, response](absl::StatusOr<uint64_t> dropped) {
        if (dropped.ok()) response->set_dropped(*dropped);
        reactor->Finish(ToGrpcStatus(dropped.status()));
      },
      request->broadcast());
  return reactor;
}

grpc::ServerUnaryReactor* CacheGrpcService::Stats(grpc::CallbackServerContext* ctx,
                                                  const v1::StatsRequest* request,
                                                  v1::StatsResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  auto stats = service_.Stats(request->namespace_());
  if (stats.ok()) {
    for (const service::NamespaceStatsView& ns : *stats) {
      v1::NamespaceStats* out = response->add_namespaces();
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
  }
  reactor->Finish(ToGrpcStatus(stats.status()));
  return reactor;
}

grpc::ServerWriteReactor<v1::WatchEvent>* CacheGrpcService::Watch(
    grpc::CallbackServerContext* /*ctx*/, const v1::WatchRequest* request) {
  if (hub_ == nullptr) {
    return new FinishedWatch(grpc::Status(grpc::StatusCode::UNIMPLEMENTED,
                                          "this cachecar serves no Watch (no watch hub)"));
  }
  return WatchReactor::Start(*hub_, *request);
}

}  // namespace cachecar::server
