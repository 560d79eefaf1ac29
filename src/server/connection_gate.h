// ConnectionGate: accepts the gRPC listeners' connections itself and hands
// each to the grpc::Server (grpc::AddInsecureChannelFromFd) once it has sent
// the HTTP/2 client preface. What it is for (issue #17):
//
//   - gRPC 1.51's listener stops accepting for good after one failed
//     accept4 (tcp_server_posix.cc: any error but EAGAIN/ECONNABORTED/EINTR
//     leaves on_read without re-arming it), so one EMFILE killed the API
//     while health stayed SERVING. Here EMFILE sheds the waiting
//     connection (a spare descriptor is kept for that) and accepting goes on.
//   - gRPC 1.51 has no connection cap (GRPC_ARG_MAX_ALLOWED_INCOMING_-
//     CONNECTIONS came later) and a socket mutator that refuses a
//     connection kills the listener the same way. Here at most
//     `max_connections` are open: at the cap the oldest connection that has
//     not yet sent its preface is closed for the new one, or, if every one
//     has, the new one is refused. Connections handed to gRPC are counted
//     until gRPC closes them (their descriptor no longer names the same
//     socket inode).
//   - A connection that sends nothing is closed after `handshake_timeout`
//     (before, 300 such connections were held forever). Once handed over,
//     gRPC's own limits apply (ApplyConnectionArgs: idle connections are
//     closed, dead peers found by keepalive).
//
// Thread-safety: Start once; counters() and at_cap() from any thread. The
// destructor stops accepting; call it before the server's Shutdown.
#ifndef CACHECAR_SERVER_CONNECTION_GATE_H_
#define CACHECAR_SERVER_CONNECTION_GATE_H_

#include <grpcpp/server.h>
#include <grpcpp/server_builder.h>

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "server/listen_address.h"

namespace cachecar::server {

struct ConnectionLimits {
  size_t max_connections = 1024;
  // Connect to the HTTP/2 preface.
  absl::Duration handshake_timeout = absl::Seconds(10);
  // Handed to gRPC (ApplyConnectionArgs): a connection with no call for this
  // long is closed (GOAWAY; clients reconnect when they next call), and an
  // idle one is pinged every keepalive_time, closed if no answer comes
  // within keepalive_timeout.
  absl::Duration idle_timeout = absl::Minutes(10);
  absl::Duration keepalive_time = absl::Minutes(2);
  absl::Duration keepalive_timeout = absl::Seconds(20);
};

// Sets the gRPC channel arguments of `limits` on `builder`: max connection
// idle, keepalive, and the handshake timeout (gRPC's own, for completeness:
// the gate enforces it before gRPC sees a connection). gRPC 1.51 has no
// argument that caps connections; the gate does. No max connection age is
// set: it would end long Watch streams.
void ApplyConnectionArgs(grpc::ServerBuilder& builder, const ConnectionLimits& limits);

class ConnectionGate {
 public:
  struct Counters {
    uint64_t accepted = 0;
    uint64_t handed = 0;     // given to gRPC
    uint64_t timed_out = 0;  // no preface within handshake_timeout
    uint64_t not_http2 = 0;  // sent something else
    uint64_t evicted = 0;    // closed at the cap for a newer one
    uint64_t refused = 0;    // at the cap with nothing to evict, or out of descriptors
    size_t open = 0;         // now: waiting for a preface, or held by gRPC
  };

  // Binds `addresses` (TCP resolved and bound one by one; unix sockets at
  // their path, already claimed by the caller) and starts accepting for
  // `server`, which must be started and outlive the gate. `name` is for
  // logs ("api", "probe").
  static absl::StatusOr<std::unique_ptr<ConnectionGate>> Start(
      std::string name, const std::vector<ListenAddress>& addresses, grpc::Server* server,
      ConnectionLimits limits);
  ~ConnectionGate();
  ConnectionGate(const ConnectionGate&) = delete;
  ConnectionGate& operator=(const ConnectionGate&) = delete;

  // What was bound: "127.0.0.1:50051", "[::1]:50051", "unix:///run/c.sock".
  const std::vector<std::string>& bound() const { return bound_; }
  Counters counters() const;
  // Whether the last accepted connection found the gate full.
  bool at_cap() const;
  // When the accept loop last ran (it wakes at least every 100 ms).
  absl::Time last_turn() const;

 private:
  class Loop;
  ConnectionGate() = default;

  std::vector<std::string> bound_;
  std::unique_ptr<Loop> loop_;
};

// The most connections the API and the probe listeners may hold, given the
// descriptor limit `soft_limit`: what is left after `reserved` for everything
// else (store connections, Kafka, files), the probe listeners taking at most
// 64 of it.
struct ConnectionBudget {
  size_t api = 0;
  size_t probe = 0;
};
ConnectionBudget BudgetConnections(uint64_t soft_limit, size_t wanted_api, size_t reserved);

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_CONNECTION_GATE_H_
