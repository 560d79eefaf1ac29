// See http_server.h. The server's parts: server_loop.h (the event loop and
// workers; server_loop.cc, connection_io.cc) and host_port.h.
#include "http/http_server.h"

#include "http/server_loop.h"

namespace cachecar::http {

absl::StatusOr<std::unique_ptr<HttpServer>> HttpServer::Start(HttpServerOptions options,
                                                              HttpHandler handler) {
  auto server = std::unique_ptr<HttpServer>(new HttpServer());
  server->loop_ = std::make_unique<Loop>(std::move(options), std::move(handler));
  absl::StatusOr<int> port = server->loop_->Bind();
  if (!port.ok()) return port.status();
  server->port_ = *port;
  if (absl::Status s = server->loop_->Run(); !s.ok()) return s;
  return server;
}

HttpServer::~HttpServer() = default;

HttpServerCounters HttpServer::counters() const { return loop_->counters(); }

}  // namespace cachecar::http
