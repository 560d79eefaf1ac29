// See listen_address.h.
#include "server/listen_address.h"

#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <sys/file.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/errno_text.h"

namespace cachecar::server {
namespace {

absl::Status Errno(absl::string_view what, int err) {
  return absl::InternalError(absl::StrCat(what, ": ", ErrnoText(err)));
}

// Closes a file descriptor when it goes out of scope.
struct FdCloser {
  int fd;
  ~FdCloser() {
    if (fd >= 0) close(fd);
  }
};

}  // namespace

absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text) {
  ListenAddress out;
  if (absl::StartsWith(text, "unix:")) {
    std::string path = text.substr(5);
    if (absl::StartsWith(path, "//")) path = path.substr(2);
    if (path.empty() || path[0] != '/') {
      return absl::InvalidArgumentError(
          absl::StrCat("listen address '", text,
                       "': a unix socket needs an absolute path, like unix:///run/cachecar.sock"));
    }
    // gRPC reads the path as a URI (percent-decoding, ?query, #fragment);
    // the lock and liveness checks must see the path gRPC binds.
    if (path.find_first_of("%?#") != std::string::npos) {
      return absl::InvalidArgumentError(absl::StrCat(
          "listen address '", text, "': a unix socket path may not contain %, ? or #"));
    }
    if (path.size() >= sizeof(sockaddr_un{}.sun_path)) {
      return absl::InvalidArgumentError(absl::StrCat("listen address '", text,
                                                     "': socket path is longer than ",
                                                     sizeof(sockaddr_un{}.sun_path) - 1, " bytes"));
    }
    out.kind = ListenAddress::Kind::kUnix;
    out.path = path;
    out.grpc_uri = "unix:" + path;
    return out;
  }
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        "listen address '", text, "': expected host:port (e.g. 127.0.0.1:50051) or unix:///path"));
  }
  std::string host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') {
    host = host.substr(1, host.size() - 2);
  }
  int port = -1;
  if (!absl::SimpleAtoi(text.substr(colon + 1), &port) || port < 0 || port > 65535) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", text, "': port must be a number from 0 to 65535"));
  }
  out.kind = ListenAddress::Kind::kTcp;
  out.host = host;
  out.port = port;
  out.grpc_uri = text;
  return out;
}

absl::Status PreflightTcp(const ListenAddress& address) {
  if (address.port == 0) return absl::OkStatus();  // the kernel picks a free one
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* found = nullptr;
  const std::string port = std::to_string(address.port);
  if (int rc = getaddrinfo(address.host.c_str(), port.c_str(), &hints, &found); rc != 0) {
    return absl::InvalidArgumentError(absl::StrCat("listen address ", address.grpc_uri,
                                                   ": cannot resolve '", address.host,
                                                   "': ", gai_strerror(rc)));
  }
  absl::Status result = absl::OkStatus();
  for (addrinfo* ai = found; ai != nullptr && result.ok(); ai = ai->ai_next) {
    FdCloser sock{socket(ai->ai_family, ai->ai_socktype, ai->ai_protocol)};
    if (sock.fd < 0) continue;
    // Like gRPC: SO_REUSEADDR (restart over TIME_WAIT), but not SO_REUSEPORT.
    int one = 1;
    setsockopt(sock.fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(sock.fd, ai->ai_addr, ai->ai_addrlen) != 0 && errno == EADDRINUSE) {
      result = absl::AlreadyExistsError(
          absl::StrCat("cannot listen on ", address.grpc_uri,
                       ": address already in use (is another cachecar running? stop it or choose "
                       "another --listen address)"));
    }
  }
  freeaddrinfo(found);
  return result;
}

absl::StatusOr<std::unique_ptr<UnixSocketClaim>> UnixSocketClaim::Claim(const std::string& path) {
  const std::string lock_path = path + ".lock";
  int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
  if (fd < 0) {
    return Errno(absl::StrCat("cannot open lock file ", lock_path,
                              " (does the directory exist and is it writable?)"),
                 errno);
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::AlreadyExistsError(absl::StrCat("cannot listen on unix://", path,
                                                 ": another cachecar holds ", lock_path,
                                                 "; stop it or choose another socket path"));
  }
  // From here on the lock is ours: on failure release it, touch nothing.
  FdCloser lock{fd};
  struct stat st;
  if (lstat(path.c_str(), &st) == 0) {
    if (absl::Status s = RemoveStaleSocket(path, st); !s.ok()) return s;
  }
  lock.fd = -1;
  return std::unique_ptr<UnixSocketClaim>(new UnixSocketClaim(path, fd));
}

absl::Status UnixSocketClaim::RemoveStaleSocket(const std::string& path, const struct stat& st) {
  if (!S_ISSOCK(st.st_mode)) {
    return absl::AlreadyExistsError(
        absl::StrCat("cannot listen on unix://", path,
                     ": the path exists and is not a socket; remove it or choose another path"));
  }
  // A socket without a lock holder: live (another program) or stale?
  FdCloser probe{socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)};
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, path.c_str(), path.size());
  if (connect(probe.fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
    return absl::AlreadyExistsError(
        absl::StrCat("cannot listen on unix://", path,
                     ": a live server answers on that socket; stop it or choose another path"));
  }
  unlink(path.c_str());  // stale: nobody listens
  return absl::OkStatus();
}

UnixSocketClaim::~UnixSocketClaim() {
  unlink(path_.c_str());
  close(lock_fd_);  // releases the flock; the lock file stays (harmless)
}

}  // namespace cachecar::server
