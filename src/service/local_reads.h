// LocalReads: cachecar's side of the published cache (docs/LOCAL_READS.md),
// once the engines keep their entries in it (NamespaceSet::Create with
// local_read_path). One thread that
//   - republishes the replica's freshness every publish period: the instant
//     up to which it vouches for its cache, Replication::TrustedUntil() (or
//     "always" without a Replication), so local readers fall back exactly
//     when gRPC reads bypass;
//   - serves the hit-report socket <path>.hits (SOCK_SEQPACKET): at most
//     max_clients connections, each read round-robin with a budget of
//     messages per round, every message checked and every record only ever
//     marking the entry with that key hash as read (Engine::TouchHashed). A
//     client that floods fills its own socket buffer; one that lies can only
//     make the keys it names look as used as gRPC reads of them would.
// Serving() turns the file to "serving" once the replica answers requests;
// Stop() retires it (readers fall back) and removes the file and socket.
//
// Thread-safety: Start, Serving and Stop from one thread; PublishNow and
// stats() from any.
#ifndef CACHECAR_SERVICE_LOCAL_READS_H_
#define CACHECAR_SERVICE_LOCAL_READS_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/namespaces.h"
#include "service/replication.h"

namespace cachecar::service {

struct LocalReadsOptions {
  absl::Duration publish_period = absl::Milliseconds(1);
  size_t max_clients = 256;
  size_t messages_per_round = 16;  // per client, per wakeup
};

struct LocalReadsStats {
  uint64_t clients = 0;             // connected now
  uint64_t clients_refused = 0;     // over max_clients
  uint64_t reports = 0;             // messages accepted
  uint64_t reports_rejected = 0;    // malformed messages (counted, ignored)
  uint64_t reports_other_file = 0;  // for an older file (a restart): ignored
  uint64_t touches = 0;             // records that marked an entry as read
  uint64_t touches_missed = 0;      // records naming no live entry
};

class LocalReads {
 public:
  // `namespaces` must live in a published Storage and, with `replication`
  // (may be null), outlive this.
  static absl::StatusOr<std::unique_ptr<LocalReads>> Start(NamespaceSet& namespaces,
                                                           const Replication* replication,
                                                           LocalReadsOptions options = {});
  ~LocalReads();
  LocalReads(const LocalReads&) = delete;
  LocalReads& operator=(const LocalReads&) = delete;

  void Serving();
  // Retires the file and stops the thread; idempotent.
  void Stop();
  // Publishes the freshness now (the thread does it every period).
  void PublishNow();
  LocalReadsStats stats() const;

 private:
  LocalReads(NamespaceSet& namespaces, const Replication* replication, LocalReadsOptions options);
  void Loop();
  void AcceptClients();
  // Reads up to the per-round budget; false when the client is gone.
  bool ReadClient(int fd);
  void HandleReport(const char* message, size_t bytes);
  void Close(int fd);

  NamespaceSet& namespaces_;
  const Replication* const replication_;
  const LocalReadsOptions options_;
  std::string socket_path_;
  int listen_fd_ = -1;
  int epoll_fd_ = -1;
  int stop_fd_ = -1;          // eventfd: wakes the loop to stop
  std::set<int> client_fds_;  // the loop thread's
  std::thread thread_;
  bool stopped_ = false;
  std::atomic<uint64_t> clients_{0}, clients_refused_{0}, reports_{0}, reports_rejected_{0},
      reports_other_file_{0}, touches_{0}, touches_missed_{0};
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_LOCAL_READS_H_
