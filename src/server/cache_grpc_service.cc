// See cache_grpc_service.h.
#include "server/cache_grpc_service.h"

#include <grpcpp/server_context.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "common/mutex.h"
#include "server/grpc_status.h"
#include "server/raw_message.h"
#include "server/watch_call.h"

namespace cachecar::server {
namespace {

// Unknown values (a newer client's, or garbage) are refused: reading them as
// CACHED would give a weaker answer than asked for (issue #17).
std::optional<service::Consistency> ToConsistency(v1::Consistency c) {
  switch (c) {
    case v1::CONSISTENCY_CACHED:
      return service::Consistency::kCached;
    case v1::CONSISTENCY_STRONG:
      return service::Consistency::kStrong;
    case v1::CONSISTENCY_CACHE_ONLY:
      return service::Consistency::kCacheOnly;
    default:
      return std::nullopt;
  }
}

grpc::Status UnknownConsistency(int value) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                      "consistency " + std::to_string(value) +
                          " is not known: use CONSISTENCY_CACHED (0), CONSISTENCY_STRONG (1) or "
                          "CONSISTENCY_CACHE_ONLY (2)");
}

v1::Source ToSource(service::ReadResult::Source s) {
  switch (s) {
    case service::ReadResult::Source::kCache:
      return v1::SOURCE_CACHE;
    case service::ReadResult::Source::kStore:
      return v1::SOURCE_STORE;
    case service::ReadResult::Source::kNone:
      return v1::SOURCE_NOT_CACHED;
  }
  return v1::SOURCE_UNSPECIFIED;
}

// A PutRequest's or BatchWrite's ttl_ms (0: none), capped at 2^50 ms.
std::optional<absl::Duration> TtlOf(uint64_t ttl_ms) {
  if (ttl_ms == 0) return std::nullopt;
  return absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(ttl_ms, uint64_t{1} << 50)));
}

size_t MetricsIndex(absl::string_view method) {
  return metrics::Metrics::MethodIndex(absl::StrCat("/cachecar.v1.Cache/", method));
}

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
  method("WriteBatch", &RawService::RequestWriteBatch, &CacheGrpcService::WriteBatch);
  method("Invalidate", &RawService::RequestInvalidate, &CacheGrpcService::Invalidate);
  method("Stats", &RawService::RequestStats, &CacheGrpcService::Stats);
}

void CacheGrpcService::Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                              CallCounter& counter) {
  for (const UnaryCall::Method& m : methods_) UnaryCall::Listen(m, cq, metrics, counter);
  ListenForWatch(raw_, hub_, cq, metrics, counter);
}

void CacheGrpcService::Get(UnaryCall* call) {
  v1::GetRequest request;
  if (!call->Parse(&request)) return;
  const std::optional<service::Consistency> consistency = ToConsistency(request.consistency());
  if (!consistency) return call->Fail(UnknownConsistency(request.consistency()));
  // A hit is encoded under the shard lock (one copy, engine to wire) and
  // sent once the lock is released.
  grpc::ByteBuffer hit;
  bool answered_from_cache = false;
  service_.Get(
      request.namespace_(), request.key(), *consistency, call->deadline(),
      [&](const service::CacheService::CachedValue& v) {
        hit = EncodeGetResponse(v.found, v.value, v.version, v1::SOURCE_CACHE);
        answered_from_cache = true;
      },
      [call](absl::StatusOr<service::ReadResult> r) {
        if (!r.ok()) return call->Fail(ToGrpcStatus(r.status()));
        call->Reply(EncodeGetResponse(r->found, r->value, r->version, ToSource(r->source)));
      },
      request.min_version());
  if (answered_from_cache) call->Reply(hit);
}

void CacheGrpcService::BatchGet(UnaryCall* call) {
  auto request = std::make_shared<v1::BatchGetRequest>();
  if (!call->Parse(request.get())) return;
  const std::optional<service::Consistency> consistency = ToConsistency(request->consistency());
  if (!consistency) return call->Fail(UnknownConsistency(request->consistency()));
  std::vector<std::string> keys(request->keys().begin(), request->keys().end());
  // `request` lives in the callback: the answer takes its keys from there.
  service_.BatchGet(
      request->namespace_(), std::move(keys), *consistency, call->deadline(),
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
      },
      std::vector<uint64_t>(request->min_versions().begin(), request->min_versions().end()));
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
  options.ttl = TtlOf(request.ttl_ms());
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

void CacheGrpcService::WriteBatch(UnaryCall* call) {
  auto request = std::make_shared<v1::WriteBatchRequest>();
  if (!call->Parse(request.get())) return;
  std::vector<service::BatchWriteOp> writes;
  writes.reserve(static_cast<size_t>(request->writes_size()));
  for (v1::BatchWrite& w : *request->mutable_writes()) {
    service::BatchWriteOp op;
    op.key = w.key();  // kept in `request` for the answer
    op.is_delete = w.delete_();
    op.value = std::move(*w.mutable_value());
    switch (w.precondition_case()) {
      case v1::BatchWrite::kIfVersion:
        op.options.precondition = store::Precondition::IfVersion(w.if_version());
        break;
      case v1::BatchWrite::kIfAbsent:
        if (w.if_absent()) op.options.precondition = store::Precondition::IfAbsent();
        break;
      case v1::BatchWrite::PRECONDITION_NOT_SET:
        break;
    }
    op.options.ttl = TtlOf(w.ttl_ms());
    writes.push_back(std::move(op));
  }
  service_.WriteBatch(request->namespace_(), std::move(writes), call->deadline(),
                      [call, request](absl::StatusOr<std::vector<service::DeleteOutcome>> r) {
                        if (!r.ok()) return call->Fail(ToGrpcStatus(r.status()));
                        v1::WriteBatchResponse response;
                        response.mutable_results()->Reserve(static_cast<int>(r->size()));
                        for (size_t i = 0; i < r->size(); ++i) {
                          v1::BatchWriteResult* out = response.add_results();
                          out->set_key(request->writes(static_cast<int>(i)).key());
                          out->set_version((*r)[i].version);
                          out->set_found((*r)[i].found);
                        }
                        call->Reply(response);
                      });
}

void CacheGrpcService::Invalidate(UnaryCall* call) {
  v1::InvalidateRequest request;
  if (!call->Parse(&request)) return;
  std::vector<std::string> keys(request.keys().begin(), request.keys().end());
  service_.Invalidate(
      request.namespace_(), keys, request.all(),
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
