// A gRPC server interceptor that records every finished call (method,
// status code, latency) in Metrics: cachecar_requests_total and
// cachecar_request_duration_seconds. Handlers stay free of metrics code.
#ifndef CACHECAR_SERVER_METRICS_INTERCEPTOR_H_
#define CACHECAR_SERVER_METRICS_INTERCEPTOR_H_

#include <grpcpp/support/server_interceptor.h>

#include <memory>

#include "metrics/metrics.h"

namespace cachecar::server {

std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface> MetricsInterceptorFactory(
    metrics::Metrics& metrics);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_METRICS_INTERCEPTOR_H_
