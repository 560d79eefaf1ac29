// Listen addresses: parsing, and the checks that make a second cachecar on
// the same port or socket path fail loudly instead of sharing it.
//
// TCP: gRPC would set SO_REUSEPORT and let two servers share a port; the
// server turns that off, and PreflightTcp binds once first to name the
// problem clearly. Unix sockets: gRPC unlinks whatever is at the path before
// binding, which would steal a live server's socket; ClaimUnixSocket takes an
// flock on "<path>.lock" for the life of the process, refuses a path a live
// server answers on, and removes only a stale socket.
//
// Thread-safety: plain functions; a UnixSocketClaim is owned by one thread.
#ifndef CACHECAR_SERVER_LISTEN_ADDRESS_H_
#define CACHECAR_SERVER_LISTEN_ADDRESS_H_

#include <sys/stat.h>

#include <memory>
#include <string>

#include "absl/status/statusor.h"

namespace cachecar::server {

struct ListenAddress {
  enum class Kind { kTcp, kUnix };
  Kind kind = Kind::kTcp;
  std::string host;      // kTcp: without brackets
  int port = 0;          // kTcp
  std::string path;      // kUnix: absolute
  std::string grpc_uri;  // what grpc::ServerBuilder::AddListeningPort takes
};

// "127.0.0.1:50051", "[::1]:50051", "localhost:0", "unix:///tmp/c.sock",
// "unix:/tmp/c.sock".
absl::StatusOr<ListenAddress> ParseListenAddress(const std::string& text);

// Fails with ALREADY_EXISTS if something is bound to host:port already.
absl::Status PreflightTcp(const ListenAddress& address);

// Holds the lock on a unix socket path while alive; unlinks the socket when
// released (only the holder of the lock ever unlinks it).
class UnixSocketClaim {
 public:
  ~UnixSocketClaim();
  UnixSocketClaim(const UnixSocketClaim&) = delete;
  UnixSocketClaim& operator=(const UnixSocketClaim&) = delete;

  static absl::StatusOr<std::unique_ptr<UnixSocketClaim>> Claim(const std::string& path);

 private:
  // Refuses a path that is not a socket or that a live server answers on;
  // unlinks a stale socket.
  static absl::Status RemoveStaleSocket(const std::string& path, const struct stat& st);
  UnixSocketClaim(std::string path, int lock_fd) : path_(std::move(path)), lock_fd_(lock_fd) {}
  std::string path_;
  int lock_fd_;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_LISTEN_ADDRESS_H_
