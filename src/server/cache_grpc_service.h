// CacheGrpcService: the cachecar.v1.Cache gRPC service on completion queues
// (GrpcServer polls them with its own threads; docs/BENCHMARKS.md, "Serving
// core", has the measurements behind that). Every method is registered raw:
// requests are parsed here (one that does not parse gets INVALID_ARGUMENT),
// and answers serialized here.
//
// It translates messages to CacheService calls and back; nothing else. A
// hit is answered inline on the polling thread, encoded straight from the
// cache entry; anything that needs the store is answered from CacheService's
// worker pool, so a polling thread never waits for I/O. A Watch stream is a
// WatchHub watcher whose changes are written one at a time.
//
// Thread-safety: Listen may be called for several queues; calls run on any
// polling thread and worker. The class holds no mutable state of its own.
#ifndef CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_
#define CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_

#include <grpcpp/completion_queue.h>

#include <vector>

#include "cachecar/v1/cache.grpc.pb.h"
#include "metrics/metrics.h"
#include "server/completion_tag.h"
#include "server/unary_call.h"
#include "service/cache_service.h"
#include "service/watch_hub.h"

namespace cachecar::server {

class CacheGrpcService {
 public:
  // Every method raw: gRPC hands the request over as bytes.
  using RawService = v1::Cache::WithRawMethod_Get<v1::Cache::WithRawMethod_BatchGet<
      v1::Cache::WithRawMethod_Put<v1::Cache::WithRawMethod_Delete<
          v1::Cache::WithRawMethod_Invalidate<v1::Cache::WithRawMethod_Stats<
              v1::Cache::WithRawMethod_Watch<v1::Cache::Service>>>>>>>;

  // `service`, and `hub` unless null, must outlive this. Without a hub,
  // Watch answers UNIMPLEMENTED.
  explicit CacheGrpcService(service::CacheService& service, service::WatchHub* hub = nullptr);

  // What the server registers.
  grpc::Service* grpc_service() { return &raw_; }

  // Puts one call of every method up on `cq` (after the server started).
  // `metrics` (unless null) and `counter` must outlive every call.
  void Listen(grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics, CallCounter& counter);

 private:
  void Get(UnaryCall* call);
  void BatchGet(UnaryCall* call);
  void Put(UnaryCall* call);
  void Delete(UnaryCall* call);
  void Invalidate(UnaryCall* call);
  void Stats(UnaryCall* call);

  service::CacheService& service_;
  service::WatchHub* const hub_;
  RawService raw_;
  std::vector<UnaryCall::Method> methods_;  // built once; calls point into it
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_
