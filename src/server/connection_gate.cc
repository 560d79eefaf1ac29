// See connection_gate.h.
#include "server/connection_gate.h"

#include <arpa/inet.h>
#include <grpcpp/server_posix.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <map>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/epoll_fds.h"
#include "common/errno_text.h"
#include "common/rate_limited_log.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {

constexpr absl::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr int kTickMs = 100;

int64_t Millis(absl::Duration d) { return absl::ToInt64Milliseconds(d); }

std::string Show(const sockaddr_storage& a) {
  char host[INET6_ADDRSTRLEN] = "";
  if (a.ss_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(&a);
    inet_ntop(AF_INET6, &v6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(v6->sin6_port));
  }
  const auto* v4 = reinterpret_cast<const sockaddr_in*>(&a);
  inet_ntop(AF_INET, &v4->sin_addr, host, sizeof(host));
  return absl::StrCat(host, ":", ntohs(v4->sin_port));
}

}  // namespace

void ApplyConnectionArgs(grpc::ServerBuilder& builder, const ConnectionLimits& limits) {
  builder.AddChannelArgument(GRPC_ARG_SERVER_HANDSHAKE_TIMEOUT_MS,
                             static_cast<int>(Millis(limits.handshake_timeout)));
  builder.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_IDLE_MS,
                             static_cast<int>(Millis(limits.idle_timeout)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIME_MS,
                             static_cast<int>(Millis(limits.keepalive_time)));
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                             static_cast<int>(Millis(limits.keepalive_timeout)));
  // Clients may ping as their keepalive wants (grpc-go's minimum is 10 s).
  builder.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  builder.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
}

ConnectionBudget BudgetConnections(uint64_t soft_limit, size_t wanted_api, size_t reserved) {
  const uint64_t left = soft_limit > reserved ? soft_limit - reserved : 0;
  ConnectionBudget b;
  b.probe = static_cast<size_t>(std::max<uint64_t>(4, std::min<uint64_t>(64, left / 8)));
  b.api = static_cast<size_t>(
      std::max<uint64_t>(8, std::min<uint64_t>(wanted_api, left > b.probe ? left - b.probe : 0)));
  return b;
}

// The accept loop: listeners, connections waiting for their preface, and
// the descriptors handed to gRPC.
class ConnectionGate::Loop {
 public:
  Loop(std::string name, grpc::Server* server, ConnectionLimits limits)
      : name_(std::move(name)), server_(server), limits_(limits) {}

  ~Loop() {
    stopping_.store(true);
    fds_.Wake();
    if (thread_.joinable()) thread_.join();
    for (auto& [id, p] : pending_) close(p.fd);
    for (int fd : listen_fds_) close(fd);
  }

  // Binds a unix socket address; appends what was bound.
  absl::Status BindUnix(const ListenAddress& address, std::vector<std::string>& bound) {
    sockaddr_un un{};
    un.sun_family = AF_UNIX;
    if (address.path.size() >= sizeof(un.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("unix socket path too long: ", address.path));
    }
    std::memcpy(un.sun_path, address.path.c_str(), address.path.size());
    const int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0 || bind(fd, reinterpret_cast<sockaddr*>(&un), sizeof(un)) != 0 ||
        listen(fd, 1024) != 0) {
      const std::string error = ErrnoText(errno);
      if (fd >= 0) close(fd);
      return absl::UnavailableError(
          absl::StrCat("cannot listen on unix://", address.path, ": ", error));
    }
    listen_fds_.push_back(fd);
    bound.push_back("unix://" + address.path);
    return absl::OkStatus();
  }

  // Binds one address; appends what was bound.
  absl::Status Bind(const ListenAddress& address, std::vector<std::string>& bound) {
    if (address.kind == ListenAddress::Kind::kUnix) return BindUnix(address, bound);
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    int port = address.port;
    if (int rc = getaddrinfo(address.host.empty() ? nullptr : address.host.c_str(),
                             std::to_string(port).c_str(), &hints, &found);
        rc != 0) {
      return absl::InvalidArgumentError(absl::StrCat("listen address ", address.grpc_uri,
                                                     ": cannot resolve '", address.host,
                                                     "': ", gai_strerror(rc)));
    }
    absl::Status result = absl::OkStatus();
    int bound_here = 0;
    for (addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
      // Port 0 on a name with several addresses (localhost): the first
      // picks the port, the others take the same one.
      if (port != 0) {
        if (ai->ai_family == AF_INET6) {
          reinterpret_cast<sockaddr_in6*>(ai->ai_addr)->sin6_port = htons(port);
        } else {
          reinterpret_cast<sockaddr_in*>(ai->ai_addr)->sin_port = htons(port);
        }
      }
      const int fd = socket(ai->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
      if (fd < 0) continue;
      const int one = 1;
      setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
      if (bind(fd, ai->ai_addr, ai->ai_addrlen) != 0 || listen(fd, 1024) != 0) {
        const int error = errno;
        close(fd);
        if (bound_here == 0 && ai->ai_next == nullptr) {
          result = error == EADDRINUSE
                       ? absl::AlreadyExistsError(absl::StrCat(
                             "cannot listen on ", address.grpc_uri,
                             ": address already in use (is another cachecar running? stop it "
                             "or choose another --listen address)"))
                       : absl::UnavailableError(absl::StrCat("cannot listen on ", address.grpc_uri,
                                                             ": ", ErrnoText(error)));
        }
        continue;
      }
      sockaddr_storage local{};
      socklen_t len = sizeof(local);
      getsockname(fd, reinterpret_cast<sockaddr*>(&local), &len);
      const std::string shown = Show(local);
      port = std::stoi(shown.substr(shown.rfind(':') + 1));
      listen_fds_.push_back(fd);
      bound.push_back(shown);
      ++bound_here;
    }
    freeaddrinfo(found);
    if (bound_here == 0 && result.ok()) {
      result = absl::UnavailableError(absl::StrCat("cannot listen on ", address.grpc_uri));
    }
    return result;
  }

  absl::Status Run() {
    if (absl::Status s = fds_.Open(kWakeId); !s.ok()) return s;
    for (size_t i = 0; i < listen_fds_.size(); ++i) {
      fds_.Add(listen_fds_[i], EPOLLIN, kFirstListenId + i);
    }
    thread_ = std::thread([this] { EventLoop(); });
    return absl::OkStatus();
  }

  Counters counters() const {
    MutexLock lock(&mu_);
    return counters_;
  }
  bool at_cap() const { return at_cap_.load(std::memory_order_relaxed); }
  absl::Time last_turn() const {
    return absl::FromUnixNanos(last_turn_ns_.load(std::memory_order_relaxed));
  }

 private:
  static constexpr uint64_t kWakeId = 0;
  static constexpr uint64_t kFirstListenId = 1;
  static constexpr uint64_t kFirstConnId = 1 << 20;

  struct Pending {
    int fd;
    absl::Time accepted;
  };
  struct Handed {
    int fd;
    ino_t inode;
  };

  template <typename F>
  void Update(F f) {
    MutexLock lock(&mu_);
    f(counters_);
    counters_.open = pending_.size() + handed_.size();
  }

  // Drops handed connections gRPC has closed since.
  void Sweep() {
    last_sweep_ = absl::Now();
    handed_.erase(std::remove_if(handed_.begin(), handed_.end(),
                                 [](const Handed& h) {
                                   struct stat st {};
                                   return fstat(h.fd, &st) != 0 || st.st_ino != h.inode ||
                                          !S_ISSOCK(st.st_mode);
                                 }),
                  handed_.end());
    Update([](Counters&) {});
  }

  size_t open_count() const { return pending_.size() + handed_.size(); }

  void ClosePending(uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    epoll_ctl(fds_.epoll_fd(), EPOLL_CTL_DEL, it->second.fd, nullptr);
    close(it->second.fd);
    pending_.erase(it);
  }

  // Room for one more connection: true if there is (after forgetting what
  // gRPC closed, then closing the oldest that sent nothing yet).
  bool MakeRoom() {
    if (open_count() < limits_.max_connections) return true;
    Sweep();
    if (open_count() < limits_.max_connections) return true;
    if (pending_.empty()) return false;
    ClosePending(pending_.begin()->first);  // ids grow: the oldest
    Update([](Counters& c) { ++c.evicted; });
    cap_log_.Warn(absl::StrCat("gRPC ", name_, " listener: at its ", limits_.max_connections,
                               "-connection cap (max_connections); closed the oldest connection "
                               "that had not sent its HTTP/2 preface"));
    return true;
  }

  void Shed() {
    Update([](Counters& c) { ++c.refused; });
    fd_log_.Warn(absl::StrCat("gRPC ", name_, " listener: out of file descriptors (",
                              ErrnoText(errno), "); a connection was refused"));
    fds_.ShedOne(listen_fds_);
  }

  void AcceptAll(int listen_fd) {
    for (int n = 0; n < 256; ++n) {  // then let the others have a turn
      const int fd = accept4(listen_fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
      if (fd < 0) {
        if (errno == EINTR || errno == ECONNABORTED) continue;
        if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
          Shed();
          continue;
        }
        return;  // EAGAIN
      }
      Update([](Counters& c) { ++c.accepted; });
      const bool room = MakeRoom();
      at_cap_.store(!room, std::memory_order_relaxed);
      if (!room) {
        close(fd);
        Update([](Counters& c) { ++c.refused; });
        cap_log_.Warn(absl::StrCat("gRPC ", name_, " listener: ", limits_.max_connections,
                                   " connections open (max_connections); a new one was refused"));
        continue;
      }
      const int one = 1;
      setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));  // fails harmlessly on unix
      const uint64_t id = next_id_++;
      pending_.emplace(id, Pending{fd, absl::Now()});
      fds_.Add(fd, EPOLLIN | EPOLLRDHUP | EPOLLET, id);  // edge: peeking does not consume
      Update([](Counters&) {});
      Examine(id);
    }
  }

  // Hands a pending connection to gRPC once its preface is in.
  void Examine(uint64_t id) {
    auto it = pending_.find(id);
    if (it == pending_.end()) return;
    const int fd = it->second.fd;
    char head[kPreface.size()];
    const ssize_t n = recv(fd, head, sizeof(head), MSG_PEEK);
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    if (n <= 0) return ClosePending(id);  // gone
    if (absl::string_view(head, static_cast<size_t>(n)) != kPreface.substr(0, n)) {
      Update([](Counters& c) { ++c.not_http2; });
      return ClosePending(id);
    }
    if (static_cast<size_t>(n) < kPreface.size()) return;  // the rest comes later
    epoll_ctl(fds_.epoll_fd(), EPOLL_CTL_DEL, fd, nullptr);
    pending_.erase(it);
    struct stat st {};
    fstat(fd, &st);
    grpc::AddInsecureChannelFromFd(server_, fd);  // gRPC owns fd from here
    handed_.push_back(Handed{fd, st.st_ino});
    Update([](Counters& c) { ++c.handed; });
  }

  void CheckDeadlines() {
    const absl::Time now = absl::Now();
    std::vector<uint64_t> late;
    for (const auto& [id, p] : pending_) {
      if (now - p.accepted <= limits_.handshake_timeout) break;  // in accept order
      late.push_back(id);
    }
    for (uint64_t id : late) {
      ClosePending(id);
      Update([](Counters& c) { ++c.timed_out; });
    }
    if (now - last_sweep_ > absl::Seconds(1)) Sweep();
  }

  void EventLoop() {
    epoll_event events[64];
    while (!stopping_.load()) {
      last_turn_ns_.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
      const int n = epoll_wait(fds_.epoll_fd(), events, 64, kTickMs);
      for (int i = 0; i < n && !stopping_.load(); ++i) {
        const uint64_t id = events[i].data.u64;
        if (id == kWakeId) {
          fds_.DrainWake();
          continue;
        }
        if (id < kFirstConnId) {
          AcceptAll(listen_fds_[id - kFirstListenId]);
        } else {
          Examine(id);
        }
      }
      CheckDeadlines();
    }
  }

  const std::string name_;
  grpc::Server* const server_;
  const ConnectionLimits limits_;
  std::vector<int> listen_fds_;
  EpollFds fds_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> at_cap_{false};
  std::atomic<int64_t> last_turn_ns_{0};
  std::thread thread_;

  // Loop thread only.
  std::map<uint64_t, Pending> pending_;  // by id, so oldest first
  std::vector<Handed> handed_;
  uint64_t next_id_ = kFirstConnId;
  absl::Time last_sweep_ = absl::InfinitePast();
  RateLimitedLog cap_log_{absl::Seconds(10)};
  RateLimitedLog fd_log_{absl::Seconds(10)};

  mutable Mutex mu_;
  Counters counters_ ABSL_GUARDED_BY(mu_);
};

absl::StatusOr<std::unique_ptr<ConnectionGate>> ConnectionGate::Start(
    std::string name, const std::vector<ListenAddress>& addresses, grpc::Server* server,
    ConnectionLimits limits) {
  auto gate = std::unique_ptr<ConnectionGate>(new ConnectionGate());
  gate->loop_ = std::make_unique<Loop>(std::move(name), server, limits);
  for (const ListenAddress& address : addresses) {
    if (absl::Status s = gate->loop_->Bind(address, gate->bound_); !s.ok()) return s;
  }
  if (absl::Status s = gate->loop_->Run(); !s.ok()) return s;
  return gate;
}

ConnectionGate::~ConnectionGate() = default;

ConnectionGate::Counters ConnectionGate::counters() const { return loop_->counters(); }
bool ConnectionGate::at_cap() const { return loop_->at_cap(); }
absl::Time ConnectionGate::last_turn() const { return loop_->last_turn(); }

}  // namespace cachecar::server
