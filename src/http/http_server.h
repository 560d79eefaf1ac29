// HttpServer: a small HTTP/1.1 server (optionally over TLS) for the
// endpoints other programs call: the admission webhook (src/inject) and
// /metrics (src/metrics). One request per connection, answered with
// Connection: close.
//
// Built to keep answering whatever clients do (issue #17):
//   - One event-loop thread owns every socket (non-blocking, epoll), so a
//     slow client holds a few bytes of memory, never a thread. Handlers run
//     on `workers` threads, fed complete requests only.
//   - Every connection has a whole-request deadline from the moment it is
//     accepted: the TLS handshake and the full request must arrive within
//     `request_timeout` (408 if it had started, else just closed), and the
//     answer must be written by `response_timeout`. Dripping a byte now and
//     then buys nothing.
//   - At `max_connections`, a new connection evicts the oldest one still
//     handshaking or reading (never one being answered), so a flood of slow
//     clients cannot keep a good request out: it is the newest. Request
//     bytes held over all connections are bounded by `max_buffered_bytes`
//     the same way (oldest reader evicted, 503).
//   - Running out of descriptors (EMFILE) sheds the waiting connection
//     (a spare descriptor is kept for that) instead of spinning or dying.
//   - Writes never raise SIGPIPE: plain sockets use MSG_NOSIGNAL, and the
//     loop thread blocks SIGPIPE for OpenSSL's writes (a peer that closes
//     early killed the webhook with exit 141 before).
//
// Why not cpp-httplib (issue #16 asked for Debian's libcpp-httplib-dev,
// 0.11.4, which does build and run with OpenSSL 3): it serves each
// connection on a pool thread with blocking reads and a per-read timeout
// only. Measured here with its SSLServer (read timeout 10 s): while 100
// clients sent a header line every second for 40 s, a good request waited
// 51 s (its default pool is 8 threads, the queue behind them unbounded);
// it has no whole-request deadline to set; and it accepted a request with
// two different Content-Length headers (it took the first). civetweb (behind
// prometheus-cpp's Exposer) has the same thread-per-connection design: one
// half-sent request held /metrics for 30 s.
//
// Thread-safety: Start once; the handler is called on worker threads,
// concurrently, and must be thread-safe. The destructor stops the server
// and waits for handlers in flight.
#ifndef CACHECAR_HTTP_HTTP_SERVER_H_
#define CACHECAR_HTTP_HTTP_SERVER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "http/host_port.h"  // ParseNumericHostPort, for callers of the server
#include "http/request_reader.h"

typedef struct ssl_st SSL;

namespace cachecar::http {

struct HttpResponse {
  int code = 200;
  std::string content_type = "text/plain";
  std::string body;
};

using HttpHandler = std::function<HttpResponse(const HttpRequest&)>;

struct HttpServerOptions {
  std::string name = "http";  // in log lines: "webhook", "metrics"
  // "host:port" or "[v6]:port" with a numeric host ("0.0.0.0", "::"), or
  // ":port" for every interface. Port 0 picks a free port (see port()).
  std::string listen;
  // TLS when set: called on the loop thread for each new connection, it
  // returns a fresh SSL (the server frees it), or null to refuse it.
  std::function<SSL*()> new_ssl;
  size_t max_connections = 512;
  absl::Duration request_timeout = absl::Seconds(3);
  absl::Duration response_timeout = absl::Seconds(5);
  ReaderLimits limits;
  size_t max_buffered_bytes = 32 << 20;
  int workers = 2;
  size_t max_queued = 64;  // complete requests waiting for a worker; more get 503
};

// What the server has done, for tests and logs.
struct HttpServerCounters {
  uint64_t accepted = 0;
  uint64_t answered = 0;   // responses written in full
  uint64_t timed_out = 0;  // past request_timeout or response_timeout
  uint64_t evicted = 0;    // pushed out by max_connections or max_buffered_bytes
  uint64_t shed = 0;       // closed at once: no descriptor, or nothing evictable
  uint64_t failed = 0;     // TLS or socket errors, peers that went away
};

class HttpServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpServer>> Start(HttpServerOptions options,
                                                           HttpHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  HttpServerCounters counters() const;

 private:
  class Loop;
  HttpServer() = default;

  int port_ = 0;
  std::unique_ptr<Loop> loop_;
};

}  // namespace cachecar::http

#endif  // CACHECAR_HTTP_HTTP_SERVER_H_
