// MetricsEndpoint (declared in metrics.h): GET /metrics on http::HttpServer.
#include "absl/strings/str_cat.h"
#include "http/http_server.h"
#include "metrics/metrics.h"

namespace cachecar::metrics {

struct MetricsEndpoint::Impl {
  std::unique_ptr<http::HttpServer> server;
};

absl::StatusOr<std::unique_ptr<MetricsEndpoint>> MetricsEndpoint::Start(const std::string& address,
                                                                        const Metrics& metrics) {
  http::HttpServerOptions options;
  options.name = "metrics";
  options.listen = address;
  options.max_connections = 64;
  options.request_timeout = absl::Seconds(3);
  options.response_timeout = absl::Seconds(10);  // Prometheus' default scrape timeout
  options.limits.max_body_bytes = 64 << 10;
  options.max_buffered_bytes = 4 << 20;
  options.workers = 2;
  auto handler = [&metrics](const http::HttpRequest& request) {
    if (request.path != "/metrics") {
      return http::HttpResponse{404, "text/plain", "GET /metrics\n"};
    }
    if (request.method != "GET") {
      return http::HttpResponse{405, "text/plain", "GET /metrics\n"};
    }
    return http::HttpResponse{200, "text/plain; version=0.0.4; charset=utf-8", metrics.Render()};
  };
  absl::StatusOr<std::unique_ptr<http::HttpServer>> server =
      http::HttpServer::Start(std::move(options), std::move(handler));
  if (!server.ok()) {
    return absl::Status(
        server.status().code(),
        absl::StrCat("cannot serve metrics on ", address,
                     " (metrics_listen): ", server.status().message(),
                     "; set --metrics-listen to another host:port, or empty to turn metrics off"));
  }
  auto endpoint = std::unique_ptr<MetricsEndpoint>(new MetricsEndpoint());
  endpoint->impl_ = std::make_unique<Impl>();
  endpoint->port_ = (*server)->port();
  endpoint->impl_->server = *std::move(server);
  return endpoint;
}

MetricsEndpoint::~MetricsEndpoint() = default;

}  // namespace cachecar::metrics
