// See cache_grpc_service.h.
#include "server/cache_grpc_service.h"

#include <chrono>

#include "absl/time/clock.h"
#include "server/grpc_status.h"

namespace cachecar::server {
namespace {

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  const auto deadline = ctx->deadline();
  if (deadline == std::chrono::system_clock::time_point::max()) {
    return absl::InfiniteFuture();
  }
  return absl::FromChrono(deadline);
}

service::Consistency ToConsistency(v1::Consistency c) {
  return c == v1::CONSISTENCY_STRONG ? service::Consistency::kStrong
                                     : service::Consistency::kCached;
}

v1::Source ToSource(service::ReadResult::Source s) {
  return s == service::ReadResult::Source::kCache ? v1::SOURCE_CACHE : v1::SOURCE_STORE;
}

}  // namespace

grpc::ServerUnaryReactor* CacheGrpcService::Get(grpc::CallbackServerContext* ctx,
                                                const v1::GetRequest* request,
                                                v1::GetResponse* response) {
  grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
  service_.Get(request->namespace_(), request->key(),
               ToConsistency(request->consistency()), DeadlineOf(ctx),
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
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  // `request` stays valid until Finish: the answer takes its keys from there.
  service_.BatchGet(
      request->namespace_(), std::move(keys), ToConsistency(request->consistency()),
      DeadlineOf(ctx),
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
    options.ttl = absl::Milliseconds(static_cast<int64_t>(
        std::min<uint64_t>(request->ttl_ms(), uint64_t{1} << 50)));
  }
  service_.Put(request->namespace_(), request->key(), request->value(), options,
               DeadlineOf(ctx), [reactor, response](absl::StatusOr<uint64_t> v) {
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
  service_.Invalidate(request->namespace_(), std::move(keys), request->all(),
                      [reactor, response](absl::StatusOr<uint64_t> dropped) {
                        if (dropped.ok()) response->set_dropped(*dropped);
                        reactor->Finish(ToGrpcStatus(dropped.status()));
                      });
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

}  // namespace cachecar::server
