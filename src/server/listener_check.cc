// See listener_check.h.
#include "server/listener_check.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/errno_text.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {

// The client preface and an empty SETTINGS frame.
constexpr char kHello[] =
    "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
    "\x00\x00\x00\x04\x00\x00\x00\x00\x00";
constexpr size_t kHelloSize = sizeof(kHello) - 1;

struct Fd {
  int fd = -1;
  ~Fd() {
    if (fd >= 0) close(fd);
  }
};

// Waits for `events` on fd until `deadline`; false on timeout.
bool WaitFor(int fd, short events, absl::Time deadline) {
  while (true) {
    const int64_t ms = absl::ToInt64Milliseconds(deadline - absl::Now());
    if (ms <= 0) return false;
    pollfd p{fd, events, 0};
    const int r = poll(&p, 1, static_cast<int>(ms));
    if (r > 0) return true;
    if (r < 0 && errno != EINTR) return false;
  }
}

// Fills `addr` for a target; a wildcard host is probed on loopback.
bool Resolve(const std::string& target, sockaddr_storage& addr, socklen_t& len) {
  addr = {};
  if (absl::StartsWith(target, "unix://")) {
    auto* un = reinterpret_cast<sockaddr_un*>(&addr);
    const std::string path = target.substr(7);
    if (path.size() >= sizeof(un->sun_path)) return false;
    un->sun_family = AF_UNIX;
    std::memcpy(un->sun_path, path.c_str(), path.size());
    len = sizeof(sockaddr_un);
    return true;
  }
  const size_t colon = target.rfind(':');
  int port = 0;
  if (colon == std::string::npos || !absl::SimpleAtoi(target.substr(colon + 1), &port)) {
    return false;
  }
  std::string host = target.substr(0, colon);
  if (absl::StartsWith(host, "[")) {
    host = host.substr(1, host.size() - 2);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&addr);
    v6->sin6_family = AF_INET6;
    v6->sin6_port = htons(static_cast<uint16_t>(port));
    if (host == "::") host = "::1";
    len = sizeof(sockaddr_in6);
    return inet_pton(AF_INET6, host.c_str(), &v6->sin6_addr) == 1;
  }
  auto* v4 = reinterpret_cast<sockaddr_in*>(&addr);
  v4->sin_family = AF_INET;
  v4->sin_port = htons(static_cast<uint16_t>(port));
  if (host == "0.0.0.0") host = "127.0.0.1";
  len = sizeof(sockaddr_in);
  return inet_pton(AF_INET, host.c_str(), &v4->sin_addr) == 1;
}

}  // namespace

absl::Status ListenerCheck::Probe(const std::string& target, absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  sockaddr_storage addr;
  socklen_t len = 0;
  if (!Resolve(target, addr, len)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot probe ", target));
  }
  Fd s{socket(addr.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)};
  if (s.fd < 0) {
    return errno == EMFILE || errno == ENFILE
               ? absl::ResourceExhaustedError("no file descriptor for the probe")
               : absl::UnavailableError(absl::StrCat("socket: ", ErrnoText(errno)));
  }
  if (connect(s.fd, reinterpret_cast<sockaddr*>(&addr), len) != 0 && errno != EINPROGRESS) {
    return absl::UnavailableError(absl::StrCat("connect: ", ErrnoText(errno)));
  }
  if (!WaitFor(s.fd, POLLOUT, deadline)) {
    return absl::UnavailableError("connect did not complete");
  }
  int error = 0;
  socklen_t error_len = sizeof(error);
  getsockopt(s.fd, SOL_SOCKET, SO_ERROR, &error, &error_len);
  if (error != 0) return absl::UnavailableError(absl::StrCat("connect: ", ErrnoText(error)));
  if (send(s.fd, kHello, kHelloSize, MSG_NOSIGNAL) != static_cast<ssize_t>(kHelloSize)) {
    return absl::UnavailableError("could not send the HTTP/2 preface");
  }
  unsigned char frame[9];
  size_t got = 0;
  while (got < sizeof(frame)) {
    if (!WaitFor(s.fd, POLLIN, deadline)) {
      return absl::UnavailableError(
          absl::StrCat("no HTTP/2 SETTINGS within ", absl::FormatDuration(timeout),
                       " (connected, but nothing serves the connection)"));
    }
    const ssize_t n = recv(s.fd, frame + got, sizeof(frame) - got, 0);
    if (n <= 0) return absl::UnavailableError("closed before answering the HTTP/2 preface");
    got += static_cast<size_t>(n);
  }
  if (frame[3] != 0x04)
    return absl::UnavailableError("answered with something other than SETTINGS");
  return absl::OkStatus();
}

std::unique_ptr<ListenerCheck> ListenerCheck::Start(std::vector<std::string> targets,
                                                    std::function<bool(size_t)> busy, Report report,
                                                    ListenerCheckOptions options) {
  auto check = std::unique_ptr<ListenerCheck>(new ListenerCheck());
  check->targets_ = std::move(targets);
  check->busy_ = std::move(busy);
  check->report_ = std::move(report);
  check->options_ = options;
  ListenerCheck* raw = check.get();
  check->thread_ = std::thread([raw] { raw->Run(); });
  return check;
}

void ListenerCheck::Run() {
  std::vector<int> failed(targets_.size(), 0);
  bool alive = true;
  while (true) {
    {
      MutexLock lock(&mu_);
      const absl::Time until = absl::Now() + options_.interval;
      while (!stopping_ && absl::Now() < until) cv_.WaitUntil(&mu_, absl::ToChronoTime(until));
      if (stopping_) return;
    }
    std::string why;
    for (size_t i = 0; i < targets_.size(); ++i) {
      const absl::Status s = Probe(targets_[i], options_.timeout);
      if (s.ok() || s.code() == absl::StatusCode::kResourceExhausted || (busy_ && busy_(i))) {
        failed[i] = 0;
        continue;
      }
      spdlog::debug("listener check: {}: {}", targets_[i], std::string(s.message()));
      if (++failed[i] >= options_.failures && why.empty()) {
        why = absl::StrCat("the gRPC listener on ", targets_[i], " failed ", failed[i],
                           " probes in a row: ", s.message());
      }
    }
    if (alive == why.empty()) continue;
    alive = why.empty();
    report_(alive, alive ? "every gRPC listener answers again" : why);
  }
}

ListenerCheck::~ListenerCheck() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    cv_.SignalAll();
  }
  if (thread_.joinable()) thread_.join();
}

}  // namespace cachecar::server
