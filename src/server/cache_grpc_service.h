// CacheGrpcService: the cachecar.v1.Cache gRPC service on the callback API.
// It translates messages to CacheService calls and back; nothing else. A
// hit is answered inline on gRPC's thread; anything that needs the store is
// answered from CacheService's worker pool, so handlers never block. A Watch
// stream is a WatchHub watcher whose changes are written one at a time.
//
// Thread-safety: gRPC calls the handlers concurrently; the class holds no
// mutable state of its own.
#ifndef CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_
#define CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_

#include "cachecar/v1/cache.grpc.pb.h"
#include "service/cache_service.h"
#include "service/watch_hub.h"

namespace cachecar::server {

class CacheGrpcService final : public cachecar::v1::Cache::CallbackService {
 public:
  // `service`, and `hub` unless null, must outlive the service. Without a
  // hub, Watch answers UNIMPLEMENTED.
  explicit CacheGrpcService(service::CacheService& service, service::WatchHub* hub = nullptr)
      : service_(service), hub_(hub) {}

  grpc::ServerUnaryReactor* Get(grpc::CallbackServerContext* ctx, const v1::GetRequest* request,
                                v1::GetResponse* response) override;
  grpc::ServerUnaryReactor* BatchGet(grpc::CallbackServerContext* ctx,
                                     const v1::BatchGetRequest* request,
                                     v1::BatchGetResponse* response) override;
  grpc::ServerUnaryReactor* Put(grpc::CallbackServerContext* ctx, const v1::PutRequest* request,
                                v1::PutResponse* response) override;
  grpc::ServerUnaryReactor* Delete(grpc::CallbackServerContext* ctx,
                                   const v1::DeleteRequest* request,
                                   v1::DeleteResponse* response) override;
  grpc::ServerUnaryReactor* Invalidate(grpc::CallbackServerContext* ctx,
                                       const v1::InvalidateRequest* request,
                                       v1::InvalidateResponse* response) override;
  grpc::ServerUnaryReactor* Stats(grpc::CallbackServerContext* ctx, const v1::StatsRequest* request,
                                  v1::StatsResponse* response) override;
  grpc::ServerWriteReactor<v1::WatchEvent>* Watch(grpc::CallbackServerContext* ctx,
                                                  const v1::WatchRequest* request) override;

 private:
  service::CacheService& service_;
  service::WatchHub* const hub_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_CACHE_GRPC_SERVICE_H_
