// See server_loop.h. The event loop, accepting, eviction, deadlines and the
// worker threads.
#include "http/server_loop.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_text.h"
#include "spdlog/spdlog.h"

namespace cachecar::http {
namespace {

constexpr int kTickMs = 50;  // how often deadlines are checked

}  // namespace

HttpServer::Loop::~Loop() {
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
}

absl::StatusOr<int> HttpServer::Loop::Bind() {
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
    const std::string error = ErrnoText(errno);
    freeaddrinfo(found);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen, ": ", error));
  }
  freeaddrinfo(found);
  listen_fd_ = fd;
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  return ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                           : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
}

absl::Status HttpServer::Loop::Run() {
  if (absl::Status s = fds_.Open(kWakeId); !s.ok()) return s;
  fds_.Add(listen_fd_, EPOLLIN, kListenId);
  for (int i = 0; i < std::max(1, options_.workers); ++i) {
    workers_.emplace_back([this] { WorkerLoop(); });
  }
  thread_ = std::thread([this] { EventLoop(); });
  return absl::OkStatus();
}

// The oldest connection still handshaking or reading, other than `keep`.
HttpServer::Loop::Conn* HttpServer::Loop::OldestEvictable(uint64_t keep) {
  for (auto it = by_age_.begin(); it != by_age_.end(); ++it) {
    if (*it != keep) return conns_.at(*it).get();
  }
  return nullptr;
}

// `c` is gone or being answered (503) when this returns.
void HttpServer::Loop::Evict(Conn& c, absl::string_view why) {
  Count(&HttpServerCounters::evicted);
  evict_log_.Warn(absl::StrCat(
      options_.name, ": evicted the oldest connection still sending its request (", why, ")"));
  if (c.phase == Phase::kReading && c.reader.started()) {
    Answer(c, PlainResponse(503, absl::StrCat("server busy (", why, "); retry")));
  } else {
    Close(c.id);
  }
}

void HttpServer::Loop::AcceptAll() {
  while (true) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      if (errno == EMFILE || errno == ENFILE) {
        // Out of descriptors: shed the waiting connection with the spare
        // descriptor (else epoll would report it forever).
        Count(&HttpServerCounters::shed);
        shed_log_.Warn(absl::StrCat(options_.name, ": out of file descriptors (", ErrnoText(errno),
                                    "); a connection was refused"));
        if (fds_.ShedOne({listen_fd_})) continue;
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
      SSL_set_mode(conn->ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
      conn->phase = Phase::kHandshake;
    }
    Conn& c = *conn;
    by_age_.insert(c.id);
    conns_.emplace(c.id, std::move(conn));
    SetInterest(c, EPOLLIN | EPOLLRDHUP);
    Step(c);  // the client may have sent already
  }
}

void HttpServer::Loop::Completed() {
  fds_.DrainWake();
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
    c.out = SerializeResponse(d.response);
    c.written = 0;
    SetInterest(c, EPOLLOUT);
    WriteSome(c);
  }
}

void HttpServer::Loop::CheckDeadlines() {
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
      Answer(c, PlainResponse(408, absl::StrCat("the whole request must arrive within ",
                                                absl::FormatDuration(options_.request_timeout))));
      // One try only: a client that does not read is closed next tick.
      auto left = conns_.find(id);
      if (left != conns_.end()) left->second->accepted = now - options_.response_timeout;
    } else if (c.phase != Phase::kProcessing) {
      Close(id);
    }
  }
}

void HttpServer::Loop::EventLoop() {
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
    const int n = epoll_wait(fds_.epoll_fd(), events, 64, kTickMs);
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

void HttpServer::Loop::WorkerLoop() {
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
      response = PlainResponse(500, "internal error");
    }
    {
      MutexLock lock(&mu_);
      done_.push_back({job.first, std::move(response)});
    }
    Wake();
  }
}

}  // namespace cachecar::http
