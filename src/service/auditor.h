// Auditor: the staleness auditor (issue #15 item 1). In the background, at
// `audit_rate` keys per second, it samples the entries this replica caches,
// reads their versions from the store in batches (Store::ReadVersions: no
// values), and judges each one:
//   - the store is not newer than the cached copy: fine;
//   - the store is newer, but its version was written within max_staleness
//     (by the store row's time, on the store's clock): in flight, fine;
//   - the store is newer and was written longer ago than max_staleness, and
//     the engine still holds the older copy after the read: divergent. The
//     entry is dropped through the engine's versioned invalidation
//     (Engine::Apply(kInvalidate) at the store's version: moves forward
//     only, cancels older fill tickets, inserts nothing) and logged with
//     namespace, key and both versions.
// It is the independent proof in production that the sync path works: a
// healthy fleet shows divergent = 0 while checked grows.
//
// While the replica cannot vouch for its cache (Replication::CacheTrusted
// false: reads bypass to the store anyway) rounds are skipped.
//
// Pacing uses the injected clock (Pacer); the store is read on the
// auditor's own thread, never on a gRPC thread, with no lock held.
//
// Thread-safety: stats() from any thread; AuditOnce from one thread at a
// time (the auditor's own once Start was called).
#ifndef CACHECAR_SERVICE_AUDITOR_H_
#define CACHECAR_SERVICE_AUDITOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cache/clock.h"
#include "common/mutex.h"
#include "service/namespaces.h"
#include "service/replication.h"
#include "store/store.h"

namespace cachecar::service {

struct AuditorOptions {
  uint32_t rate = 10;  // keys per second; 0: no auditor
  // A cached copy older than a store version written longer ago than this
  // is divergent.
  absl::Duration max_staleness = absl::Seconds(2);
  // Keys per store read; 0: min(rate, 100), so a batch is at most a second
  // of the rate.
  size_t batch = 0;
  // Each store read's deadline.
  absl::Duration store_timeout = absl::Seconds(2);
  // Sleep after a round that found nothing cached, or failed.
  absl::Duration idle = absl::Seconds(1);
};

struct AuditStats {
  uint64_t checked = 0;    // cached entries compared with the store
  uint64_t divergent = 0;  // older than the store past max_staleness (each dropped)
  uint64_t behind = 0;     // older than the store, within max_staleness (in flight)
  uint64_t errors = 0;     // store reads that failed
  uint64_t skipped = 0;    // rounds skipped: the replica could not vouch for its cache
  // The largest lag of an entry found behind (divergent or not) in the last
  // 5 to 10 minutes (two 5-minute windows on the injected clock), seconds.
  double worst_lag_seconds = 0;
};

// Paces work at `rate` units per second on a clock: after `n` units, the
// next round is due n / rate later than the last one was (or now, if that
// is already past: no bursts to catch up).
class Pacer {
 public:
  Pacer(uint32_t rate, const cache::Clock& clock) : rate_(rate), clock_(clock) {}
  // How long to wait from now before the next round, after one of `n` units.
  absl::Duration After(size_t n);

 private:
  const uint32_t rate_;
  const cache::Clock& clock_;
  absl::Time due_ = absl::InfinitePast();
};

class Auditor {
 public:
  // All must outlive the auditor; `replication` and `clock` may be null
  // (always trusted; the real clock).
  Auditor(AuditorOptions options, NamespaceSet& namespaces, store::Store& store,
          const Replication* replication, const cache::Clock* clock = nullptr);
  ~Auditor();  // Stop()
  Auditor(const Auditor&) = delete;
  Auditor& operator=(const Auditor&) = delete;

  // Starts the auditor's thread (nothing with rate 0).
  void Start();
  // Stops it (waits for a store read in flight, at most store_timeout).
  void Stop();

  // One round: up to `batch` entries of the next namespaces that hold any,
  // one ReadVersions per namespace, judged and repaired. Returns how many
  // entries were checked. Blocks on the store.
  absl::StatusOr<size_t> AuditOnce();

  AuditStats stats() const;

 private:
  void Loop();
  // Judges one namespace's sample against what the store read.
  void Judge(Namespace& ns, const std::vector<cache::SampledEntry>& sample,
             const store::VersionSnapshot& snapshot);
  void NoteLag(absl::Duration lag);

  const AuditorOptions options_;
  const size_t batch_;
  NamespaceSet& namespaces_;
  store::Store& store_;
  const Replication* const replication_;
  const cache::Clock& clock_;

  // AuditOnce's own (one caller at a time).
  size_t next_namespace_ = 0;
  std::vector<uint64_t> cursors_;  // per namespace, Engine::Sample's

  std::atomic<uint64_t> checked_{0}, divergent_{0}, behind_{0}, errors_{0}, skipped_{0};
  mutable Mutex mu_;
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration worst_now_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();
  absl::Duration worst_before_ ABSL_GUARDED_BY(mu_) = absl::ZeroDuration();

  Notification stop_;
  std::thread thread_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_AUDITOR_H_
