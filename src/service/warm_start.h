// Warm start: a stopping replica lists the keys its cache holds
// (SnapshotKeys, written to `warm_start_file`, service/warm_start_file.h);
// a starting one reloads them from the store in the background (WarmLoader)
// so that it gets its hit ratio back without a miss storm.
//
// The reload takes the same fill path as a miss (docs/DESIGN.md C3): a fill
// ticket per key before one multi-key store read per batch, then
// CompleteFill, so an event, a write or a flush that reaches a key while its
// batch is being read wins and the loaded value is dropped. It waits until
// `may_start` says so (with a sync topic: the consumer is positioned, since
// positioning flushes every namespace), and it goes slower than live
// traffic: at most `keys_per_second`, and not while `live_busy` says live
// store work is queued. Keys of namespaces that are no longer declared, or
// that no longer fit max_key_bytes, are skipped. A store that fails is
// retried with a backoff until `give_up_after` passes without progress.
// The keys it did not reach (stopped first, or gave up) stay listed
// (Unvisited), so a replica stopped mid-reload saves them with what its
// cache holds (AddUnvisited) and the next start still has them.
//
// Thread-safety: Start, Stop and stats from any thread; the loading runs on
// one thread of its own.
#ifndef CACHECAR_SERVICE_WARM_START_H_
#define CACHECAR_SERVICE_WARM_START_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/time/time.h"
#include "cache/clock.h"
#include "common/mutex.h"
#include "service/namespaces.h"
#include "service/warm_start_file.h"
#include "store/store.h"

namespace cachecar::service {

// The keys every namespace holds now (values and negative entries).
WarmKeys SnapshotKeys(const NamespaceSet& namespaces);

// Adds to `snapshot` the keys of `unvisited` it does not list yet, per
// namespace (what a stopping replica saves: its cache's keys and those its
// own warm start had not reached).
void AddUnvisited(WarmKeys& snapshot, WarmKeys unvisited);

struct WarmLoaderOptions {
  size_t batch_keys = 500;          // keys per store read
  double keys_per_second = 50000;   // at most; <= 0: no limit
  std::function<bool()> may_start;  // polled until true; null: at once
  std::function<bool()> live_busy;  // true: live store work waits, pause; null: never
  absl::Duration call_timeout = absl::Seconds(5);
  absl::Duration give_up_after = absl::Minutes(5);  // of store errors in a row
  const cache::Clock* clock = nullptr;              // for the rate; null: real time
};

struct WarmLoaderStats {
  uint64_t keys_total = 0;    // in the file, for declared namespaces
  uint64_t keys_loaded = 0;   // filled into the cache
  uint64_t keys_skipped = 0;  // overtaken by something newer, or not loadable
  uint64_t batches = 0;       // store reads
  uint64_t store_errors = 0;  // store reads that failed (and were retried)
  bool done = false;          // finished, gave up, or was stopped
};

class WarmLoader {
 public:
  // `namespaces` and `store` must outlive the loader.
  WarmLoader(NamespaceSet& namespaces, store::Store& store, WarmLoaderOptions options);
  ~WarmLoader();  // Stop()
  WarmLoader(const WarmLoader&) = delete;
  WarmLoader& operator=(const WarmLoader&) = delete;

  // Starts loading `keys` on a thread of its own. Once only.
  void Start(WarmKeys keys);
  // Stops the loading (a batch in flight finishes first) and joins.
  void Stop();
  WarmLoaderStats stats() const;
  // After Stop(): the keys of declared namespaces the loading had not
  // reached (or gave up on), in file order; empty once it finished.
  WarmKeys Unvisited() const;

  // One batch of one namespace under fill tickets; how many were filled,
  // or the store's error (nothing filled). For the loading thread and tests.
  absl::StatusOr<size_t> LoadBatch(Namespace& ns, const std::vector<std::string>& keys);

 private:
  void Run(WarmKeys keys);
  // Sleeps up to `d`; false if Stop() was called.
  bool Pause(absl::Duration d);
  // Waits for may_start, the rate and a quiet live path; false if stopped.
  bool WaitForTurn(absl::Time started, uint64_t sent);
  // Loads one batch, retrying store errors with a backoff; false if it
  // gave up or was stopped.
  bool LoadWithRetry(Namespace& ns, const std::vector<std::string>& keys);
  using Work = std::vector<std::pair<Namespace*, std::vector<std::string>>>;
  // Keeps the keys from work[ns_index].second[key_index] on as unvisited.
  void KeepUnvisited(Work& work, size_t ns_index, size_t key_index);

  NamespaceSet& namespaces_;
  store::Store& store_;
  const WarmLoaderOptions options_;
  const cache::Clock& clock_;
  Notification stop_;
  std::thread thread_;
  std::atomic<uint64_t> total_{0}, loaded_{0}, skipped_{0}, batches_{0}, errors_{0};
  std::atomic<bool> done_{false};
  mutable Mutex mu_;
  WarmKeys unvisited_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_WARM_START_H_
