// See http_server.h.
#include "http/http_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>
#include <set>
#include <unordered_map>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "spdlog/spdlog.h"

namespace cachecar::http {
namespace {

constexpr size_t kReadChunk = 16 << 10;
constexpr int kTickMs = 50;  // how often deadlines are checked

std::string Serialize(const HttpResponse& r) {
  return absl::StrCat("HTTP/1.1 ", r.code, " ", ReasonPhrase(r.code),
                      "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
                      "\r\nConnection: close\r\n\r\n", r.body);
}

HttpResponse Plain(int code, absl::string_view text) {
  return HttpResponse{code, "text/plain", absl::StrCat(text, "\n")};
}

// Consumes a SIGPIPE a TLS write raised while blocked in this thread.
void DrainSigpipe() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  timespec zero{0, 0};
  while (sigtimedwait(&pipe, nullptr, &zero) > 0) {
  }
}

// Logs at most one line per `every` for one kind of event, with the count
// of those events since the last line.
class RateLimitedLog {
 public:
  explicit RateLimitedLog(absl::Duration every) : every_(every) {}
  void Warn(const std::string& message) {
    ++count_;
    const absl::Time now = absl::Now();
    if (now - last_ < every_) return;
    last_ = now;
    spdlog::warn("{} ({} times since the last such line)", message, count_);
    count_ = 0;
  }

 private:
  const absl::Duration every_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t count_ = 0;
};

}  // namespace

absl::StatusOr<HostPort> ParseNumericHostPort(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
  };
  HostPort out;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || text.substr(close + 1, 1) != ":") {
      return bad("want [v6]:port, e.g. [::1]:9464");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) return bad("not an IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return bad("want host:port, e.g. 127.0.0.1:9464");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    in_addr a4{};
    if (!out.host.empty() && inet_pton(AF_INET, out.host.c_str(), &a4) != 1) {
      return bad(absl::StrContains(out.host, ":")
                     ? "an IPv6 address needs brackets, e.g. [::1]:9464"
                     : "the host must be a numeric IPv4 address (four numbers 0-255) or "
                       "[IPv6]; 0.0.0.0 listens on every interface");
    }
  }
  uint32_t number = 0;
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || !absl::SimpleAtoi(port, &number) || number > 65535) {
    return bad("the port must be 0 to 65535");
  }
  out.port = static_cast<int>(number);
  return out;
}

// The event loop, its connections and the worker threads.
class HttpServer::Loop {
 public:
  Loop(HttpServerOptions options, HttpHandler handler)
      : options_(std::move(options)), handler_(std::move(handler)) {}

  ~Loop() {
    stopping_.store(true);
    Wake();
    if (thread_.joinable()) thread_.join();
    {
      MutexLock lock(&mu_);
      queue_cv_.SignalAll();
    }
    for (std::thread& w : workers_) w.join();
    for (auto& [id, c] : conns_) CloseSocket(*c);
    if (listen_fd_ >= 0) close(listen_fd_);
    if (wake_fd_ >= 0) close(wake_fd_);
    if (epoll_fd_ >= 0) close(epoll_fd_);
    if (spare_fd_ >= 0) close(spare_fd_);
  }

  absl::StatusOr<int> Bind() {
    absl::StatusOr<HostPort> hp = ParseNumericHostPort(options_.listen);
    if (!hp.ok()) return hp.status();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const std::string port = std::to_string(hp->port);
    if (getaddrinfo(hp->host.empty() ? nullptr : hp->host.c_str(), port.c_str(), &hints, &found) !=
            0 ||
        found == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("cannot resolve ", options_.listen));
    }
    const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    const int one = 1;
    if (fd >= 0) setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 512) != 0) {
      const std::string error = std::strerror(errno);
      freeaddrinfo(found);
      if (fd >= 0) close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot listen on ", options_.listen, ": ", error));
    }
    freeaddrinfo(found);
    listen_fd_ = fd;
    sockaddr_storage bound{};
    socklen_t len = sizeof(bound);
    getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
    return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                             : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  }

  absl::Status Run() {
    epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
    wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (epoll_fd_ < 0 || wake_fd_ < 0) {
      return absl::InternalError(absl::StrCat("epoll/eventfd: ", std::strerror(errno)));
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = kListenId;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, listen_fd_, &ev);
    ev.data.u64 = kWakeId;
    epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, wake_fd_, &ev);
    for (int i = 0; i < std::max(1, options_.workers); ++i) {
      workers_.emplace_back([this] { WorkerLoop(); });
    }
    thread_ = std::thread([this] { EventLoop(); });
    return absl::OkStatus();
  }

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

  void Wake() {
    if (wake_fd_ < 0) return;
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
  }

  void CloseSocket(Conn& c) {
    if (c.ssl != nullptr) {
      if (c.phase == Phase::kWriting && c.written == c.out.size()) {
        SSL_shutdown(c.ssl);  // best effort: one non-blocking try
        DrainSigpipe();
      }
      SSL_free(c.ssl);
      c.ssl = nullptr;
    }
    if (c.fd >= 0) close(c.fd);
    c.fd = -1;
  }

  void Close(uint64_t id) {
    auto it = conns_.find(id);
    if (it == conns_.end()) return;
    Conn& c = *it->second;
    buffered_ -= c.counted;
    by_age_.erase(id);
    CloseSocket(c);
    conns_.erase(it);
  }

  // Which events to wait for; none takes the socket out of the epoll set
  // (a hung-up peer would otherwise be reported again and again).
  void SetInterest(Conn& c, uint32_t events) {
    if (c.registered && c.interest == events) return;
    epoll_event ev{};
    ev.events = events;
    ev.data.u64 = c.id;
    if (events == 0) {
      if (c.registered) epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, c.fd, nullptr);
      c.registered = false;
    } else {
      epoll_ctl(epoll_fd_, c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev);
      c.registered = true;
    }
    c.interest = events;
  }

  // Answers without calling the handler (errors, timeouts, overload). `c`
  // may be gone when this returns (written and closed).
  void Answer(Conn& c, const HttpResponse& response) {
    buffered_ -= c.counted;
    c.counted = 0;
    c.reader = RequestReader(options_.limits);  // frees what it held
    c.phase = Phase::kWriting;
    c.out = Serialize(response);
    c.written = 0;
    by_age_.erase(c.id);  // no longer evictable
    WriteSome(c);
  }

  // The oldest connection still handshaking or reading, other than `keep`.
  Conn* OldestEvictable(uint64_t keep) {
    for (auto it = by_age_.begin(); it != by_age_.end(); ++it) {
      if (*it != keep) return conns_.at(*it).get();
    }
    return nullptr;
  }

  // `c` is gone or being answered (503) when this returns.
  void Evict(Conn& c, absl::string_view why) {
    Count(&HttpServerCounters::evicted);
    evict_log_.Warn(absl::StrCat(
        options_.name, ": evicted the oldest connection still sending its request (", why, ")"));
    if (c.phase == Phase::kReading && c.reader.started()) {
      Answer(c, Plain(503, absl::StrCat("server busy (", why, "); retry")));
    } else {
      Close(c.id);
    }
  }

  void AcceptAll() {
    while (true) {
      const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE) {
          // Out of descriptors: shed the waiting connection with the spare
          // descriptor (else epoll would report it forever).
          Count(&HttpServerCounters::shed);
          shed_log_.Warn(absl::StrCat(options_.name, ": out of file descriptors (",
                                      std::strerror(errno), "); a connection was refused"));
          if (spare_fd_ >= 0) {
            close(spare_fd_);
            const int victim = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
            if (victim >= 0) close(victim);
            spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
            continue;
          }
        }
        return;  // EAGAIN, or nothing more to do now
      }
      Count(&HttpServerCounters::accepted);
      if (conns_.size() >= options_.max_connections) {
        Conn* victim = OldestEvictable(0);
        if (victim == nullptr) {
          Count(&HttpServerCounters::shed);
          shed_log_.Warn(absl::StrCat(options_.name, ": ", conns_.size(),
                                      " connections are being answered; a new one was refused"));
          close(fd);
          continue;
        }
        Evict(*victim, absl::StrCat("at the ", options_.max_connections, "-connection cap"));
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
      auto conn = std::make_unique<Conn>(options_.limits);
      conn->id = next_id_++;
      conn->fd = fd;
      conn->accepted = absl::Now();
      if (options_.new_ssl) {
        conn->ssl = options_.new_ssl();
        if (conn->ssl == nullptr || SSL_set_fd(conn->ssl, fd) != 1) {
          Count(&HttpServerCounters::failed);
          CloseSocket(*conn);
          continue;
        }
        // Non-blocking writes: a retry may come with the rest of the buffer.
        SSL_set_mode(conn->ssl,
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        conn->phase = Phase::kHandshake;
      }
      Conn& c = *conn;
      by_age_.insert(c.id);
      conns_.emplace(c.id, std::move(conn));
      SetInterest(c, EPOLLIN | EPOLLRDHUP);
      Step(c);  // the client may have sent already
    }
  }

  // A TLS call returned `r`: true if it should be retried when the socket is
  // ready (interest set), false if the connection failed.
  bool TlsRetry(Conn& c, int r) {
    const int error = SSL_get_error(c.ssl, r);
    if (error == SSL_ERROR_WANT_READ) {
      SetInterest(c, EPOLLIN | EPOLLRDHUP);
      return true;
    }
    if (error == SSL_ERROR_WANT_WRITE) {
      SetInterest(c, EPOLLOUT);
      return true;
    }
    DrainSigpipe();
    ERR_clear_error();
    return false;
  }

  // Advances a connection as far as its socket allows.
  void Step(Conn& c) {
    if (c.phase == Phase::kHandshake) {
      const int r = SSL_accept(c.ssl);
      if (r != 1) {
        if (!TlsRetry(c, r)) {
          Count(&HttpServerCounters::failed);
          Close(c.id);
        }
        return;
      }
      c.phase = Phase::kReading;
      SetInterest(c, EPOLLIN | EPOLLRDHUP);
    }
    if (c.phase == Phase::kReading) return ReadSome(c);
    if (c.phase == Phase::kWriting) return WriteSome(c);
  }

  void ReadSome(Conn& c) {
    char buffer[kReadChunk];
    while (c.phase == Phase::kReading) {
      ssize_t n;
      if (c.ssl != nullptr) {
        const int r = SSL_read(c.ssl, buffer, sizeof(buffer));
        if (r <= 0) {
          if (TlsRetry(c, r)) return;
          Count(&HttpServerCounters::failed);
          return Close(c.id);
        }
        n = r;
      } else {
        n = recv(c.fd, buffer, sizeof(buffer), 0);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
        if (n <= 0) {
          Count(&HttpServerCounters::failed);
          return Close(c.id);
        }
      }
      const RequestReader::State state =
          c.reader.Feed(absl::string_view(buffer, static_cast<size_t>(n)));
      buffered_ = buffered_ - c.counted + c.reader.buffered();
      c.counted = c.reader.buffered();
      if (state == RequestReader::State::kError) {
        return Answer(c, Plain(c.reader.error_code(), c.reader.error()));
      }
      if (state == RequestReader::State::kDone) return Dispatch(c);
      const uint64_t id = c.id;
      while (buffered_ > options_.max_buffered_bytes) {
        Conn* victim = OldestEvictable(0);
        if (victim == nullptr) break;
        const bool self = victim->id == id;
        Evict(*victim,
              absl::StrCat("over ", options_.max_buffered_bytes, " bytes of requests held"));
        if (self) return;
      }
    }
  }

  void Dispatch(Conn& c) {
    by_age_.erase(c.id);
    bool queued = false;
    {
      MutexLock lock(&mu_);
      if (queue_.size() < options_.max_queued) {
        queue_.push_back({c.id, c.reader.TakeRequest()});
        queue_cv_.Signal();
        queued = true;
      }
    }
    if (!queued) return Answer(c, Plain(503, "server busy (too many requests in progress); retry"));
    buffered_ -= c.counted;
    c.counted = 0;
    c.phase = Phase::kProcessing;
    SetInterest(c, 0);  // until the answer is ready
  }

  void WriteSome(Conn& c) {
    while (c.written < c.out.size()) {
      const size_t left = c.out.size() - c.written;
      if (c.ssl != nullptr) {
        const int r = SSL_write(c.ssl, c.out.data() + c.written,
                                static_cast<int>(std::min<size_t>(left, 1 << 20)));
        if (r <= 0) {
          if (TlsRetry(c, r)) return;
          Count(&HttpServerCounters::failed);
          return Close(c.id);
        }
        c.written += static_cast<size_t>(r);
      } else {
        const ssize_t n = send(c.fd, c.out.data() + c.written, left, MSG_NOSIGNAL);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
          SetInterest(c, EPOLLOUT);
          return;
        }
        if (n <= 0) {
          Count(&HttpServerCounters::failed);
          return Close(c.id);
        }
        c.written += static_cast<size_t>(n);
      }
    }
    Count(&HttpServerCounters::answered);
    Close(c.id);
  }

  void Completed() {
    uint64_t drained = 0;
    [[maybe_unused]] ssize_t n = read(wake_fd_, &drained, sizeof(drained));
    std::deque<Done> done;
    {
      MutexLock lock(&mu_);
      done.swap(done_);
    }
    for (Done& d : done) {
      auto it = conns_.find(d.id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      c.phase = Phase::kWriting;
      c.out = Serialize(d.response);
      c.written = 0;
      SetInterest(c, EPOLLOUT);
      WriteSome(c);
    }
  }

  void CheckDeadlines() {
    const absl::Time now = absl::Now();
    std::vector<uint64_t> expired;
    for (auto& [id, c] : conns_) {
      const bool reading = c->phase == Phase::kHandshake || c->phase == Phase::kReading;
      const absl::Duration limit = reading ? options_.request_timeout : options_.response_timeout;
      if (now - c->accepted > limit) expired.push_back(id);
    }
    for (uint64_t id : expired) {
      auto it = conns_.find(id);
      if (it == conns_.end()) continue;
      Conn& c = *it->second;
      Count(&HttpServerCounters::timed_out);
      if (c.phase == Phase::kReading && c.reader.started()) {
        Answer(c, Plain(408, absl::StrCat("the whole request must arrive within ",
                                          absl::FormatDuration(options_.request_timeout))));
        // One try only: a client that does not read is closed next tick.
        auto left = conns_.find(id);
        if (left != conns_.end()) left->second->accepted = now - options_.response_timeout;
      } else if (c.phase != Phase::kProcessing) {
        Close(id);
      }
    }
  }

  void EventLoop() {
    // OpenSSL writes with write(2): a peer that went away must not kill the
    // process with SIGPIPE. Blocked here, the signal stays pending on this
    // thread and is drained.
    sigset_t pipe;
    sigemptyset(&pipe);
    sigaddset(&pipe, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe, nullptr);
    epoll_event events[64];
    absl::Time last_check = absl::Now();
    while (!stopping_.load()) {
      const int n = epoll_wait(epoll_fd_, events, 64, kTickMs);
      for (int i = 0; i < n; ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kListenId) {
          AcceptAll();
        } else if (id == kWakeId) {
          Completed();
        } else {
          auto it = conns_.find(id);
          if (it == conns_.end()) continue;
          Conn& c = *it->second;
          if (c.phase != Phase::kProcessing) Step(c);
        }
      }
      if (absl::Now() - last_check >= absl::Milliseconds(kTickMs)) {
        last_check = absl::Now();
        CheckDeadlines();
      }
    }
  }

  void WorkerLoop() {
    while (true) {
      std::pair<uint64_t, HttpRequest> job;
      {
        MutexLock lock(&mu_);
        while (queue_.empty() && !stopping_.load()) queue_cv_.Wait(&mu_);
        if (stopping_.load()) return;
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      HttpResponse response;
      try {
        response = handler_(job.second);
      } catch (const std::exception& e) {
        spdlog::error("{}: handler failed: {}", options_.name, e.what());
        response = Plain(500, "internal error");
      }
      {
        MutexLock lock(&mu_);
        done_.push_back({job.first, std::move(response)});
      }
      Wake();
    }
  }

  const HttpServerOptions options_;
  const HttpHandler handler_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;
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
