// HttpServer::Loop: the HTTP server's event loop, its connections and the
// worker threads (see http_server.h for what it promises). Its methods live
// in two files: server_loop.cc (the loop, accepting, eviction, deadlines,
// workers) and connection_io.cc (one connection's reads, writes and TLS).
// Internal to src/http/.
//
// Thread-safety: the loop thread alone touches the connections; workers
// meet it only through `mu_` (queue_, done_) and the wake eventfd;
// counters() from any thread.
#ifndef CACHECAR_HTTP_SERVER_LOOP_H_
#define CACHECAR_HTTP_SERVER_LOOP_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/epoll_fds.h"
#include "common/mutex.h"
#include "common/rate_limited_log.h"
#include "http/http_server.h"
#include "http/request_reader.h"

namespace cachecar::http {

// The response as written on the wire (Connection: close).
std::string SerializeResponse(const HttpResponse& r);
// A text/plain answer of `text`.
HttpResponse PlainResponse(int code, absl::string_view text);

class HttpServer::Loop {
 public:
  Loop(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}

  ~Loop();

  // Binds options.listen; the port bound.
  absl::StatusOr<int> Bind();
  // Starts the event loop and the workers.
  absl::Status Run();

  HttpServerCounters counters() const {
    MutexLock lock(&counters_mu_);
    return counters_;
  }

 private:
  static constexpr uint64_t kListenId = 0;
  static constexpr uint64_t kWakeId = 1;

  enum class Phase { kHandshake, kReading, kProcessing, kWriting };

  struct Conn {
    uint64_t id = 0;
    int fd = -1;
    SSL* ssl = nullptr;
    Phase phase = Phase::kReading;
    RequestReader reader;
    absl::Time accepted;
    std::string out;
    size_t written = 0;
    uint32_t interest = 0;    // epoll events registered
    bool registered = false;  // in the epoll set
    size_t counted = 0;       // bytes of reader.buffered() in buffered_
    explicit Conn(const ReaderLimits& limits) : reader(limits) {}
  };

  struct Done {
    uint64_t id;
    HttpResponse response;
  };

  void Count(uint64_t HttpServerCounters::*field) {
    MutexLock lock(&counters_mu_);
    ++(counters_.*field);
  }

  void Wake() { fds_.Wake(); }

  // connection_io.cc: one connection's reads, writes and TLS.
  void CloseSocket(Conn& c);
  void Close(uint64_t id);
  // Which events to wait for; none takes the socket out of the epoll set
  // (a hung-up peer would otherwise be reported again and again).
  void SetInterest(Conn& c, uint32_t events);
  // Answers without calling the handler (errors, timeouts, overload). `c`
  // may be gone when this returns (written and closed).
  void Answer(Conn& c, const HttpResponse& response);
  // A TLS call returned `r`: true if it should be retried when the socket is
  // ready (interest set), false if the connection failed.
  bool TlsRetry(Conn& c, int r);
  // Advances a connection as far as its socket allows.
  void Step(Conn& c);

  void ReadSome(Conn& c);
  // A complete request: queued for a worker (or 503 if the queue is full).
  void Dispatch(Conn& c);
  void WriteSome(Conn& c);

  // server_loop.cc: the loop, accepting, eviction, deadlines, workers.
  // Answers that workers finished, written out.
  void Completed();
  void CheckDeadlines();
  // The oldest connection still handshaking or reading, other than `keep`.
  Conn* OldestEvictable(uint64_t keep);
  // `c` is gone or being answered (503) when this returns.
  void Evict(Conn& c, absl::string_view why);
  void AcceptAll();
  void EventLoop();
  void WorkerLoop();

  const HttpServerOptions options_;
  const HttpHandler handler_;
  int listen_fd_ = -1;
  EpollFds fds_;
  std::atomic<bool> stopping_{false};
  std::thread thread_;
  std::vector<std::thread> workers_;

  // Loop thread only.
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
  std::set<uint64_t> by_age_;  // ids handshaking or reading; ids grow with age
  uint64_t next_id_ = 2;
  size_t buffered_ = 0;
  RateLimitedLog evict_log_{absl::Seconds(10)};
  RateLimitedLog shed_log_{absl::Seconds(10)};

  Mutex mu_;
  CondVar queue_cv_;
  std::deque<std::pair<uint64_t, HttpRequest>> queue_ ABSL_GUARDED_BY(mu_);
  std::deque<Done> done_ ABSL_GUARDED_BY(mu_);

  mutable Mutex counters_mu_;
  HttpServerCounters counters_ ABSL_GUARDED_BY(counters_mu_);
};

}  // namespace cachecar::http

#endif  // CACHECAR_HTTP_SERVER_LOOP_H_
