// The Cache.Watch stream of CacheGrpcService: one WatchHub watcher per
// stream, whose changes are written one at a time (the next when the last is
// done), ending with the watcher's close status (fell behind, shutting down)
// or when the client goes away. Without a hub, Watch answers UNIMPLEMENTED.
//
// Thread-safety: each stream's state is under its own mutex; hub wakes and
// gRPC completions may arrive on any thread, and a wake never touches a
// stream that is gone.
#ifndef CACHECAR_SERVER_WATCH_CALL_H_
#define CACHECAR_SERVER_WATCH_CALL_H_

#include <grpcpp/completion_queue.h>

#include "metrics/metrics.h"
#include "server/cache_grpc_service.h"
#include "server/unary_call.h"
#include "service/watch_hub.h"

namespace cachecar::server {

// Puts one Watch call up on `cq`; each call that a client takes puts up the
// next. `raw`, `hub` (unless null), `metrics` (unless null) and `counter`
// must outlive every call.
void ListenForWatch(CacheGrpcService::RawService& raw, service::WatchHub* hub,
                    grpc::ServerCompletionQueue* cq, metrics::Metrics* metrics,
                    CallCounter& counter);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_WATCH_CALL_H_
