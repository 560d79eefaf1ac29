// ReplicatedLoader: keeps replicated namespaces (`replicated: true`) whole.
// Once `may_start` says so (with a sync topic: the consumer is positioned,
// since positioning flushes), it loads every replicated namespace's whole
// table: pages of keys from Store::ScanKeys, each filled through fill
// tickets with one multi-key read (service/store_fill.h), so events that
// arrive meanwhile win. A load that ends in the flush epoch it began in
// marks the namespace complete (service/replicated_state.h); a later flush
// (lost events, a partition reset, a TRUNCATE, Invalidate all) makes it load
// again. Keys the event path could not keep (an upsert whose event carried
// no value, an invalidation, an event at or below the positioning floor)
// are marked unknown and reloaded here. The event path itself (update mode
// adding keys it never read) is in SyncReplication.
//
// Thread-safety: Start/Stop from one thread; the rest from any. The loading
// runs on one thread of its own.
#ifndef CACHECAR_SERVICE_REPLICATED_H_
#define CACHECAR_SERVICE_REPLICATED_H_

#include <atomic>
#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "service/namespaces.h"
#include "store/store.h"

namespace cachecar::service {

struct ReplicatedLoaderOptions {
  size_t page_keys = 500;           // keys per scan page (and per fill read)
  std::function<bool()> may_start;  // polled until true; null: at once
  absl::Duration call_timeout = absl::Seconds(5);
  absl::Duration poll = absl::Milliseconds(20);  // between passes
};

class ReplicatedLoader {
 public:
  // `namespaces` and `store` must outlive the loader.
  ReplicatedLoader(NamespaceSet& namespaces, store::Store& store, ReplicatedLoaderOptions options);
  ~ReplicatedLoader();  // Stop()
  ReplicatedLoader(const ReplicatedLoader&) = delete;
  ReplicatedLoader& operator=(const ReplicatedLoader&) = delete;

  // Whether any namespace is replicated (else there is nothing to run).
  static bool AnyReplicated(const NamespaceSet& namespaces);

  void Start();
  void Stop();
  // Every replicated namespace was loaded whole at least once (readiness).
  bool InitialLoadDone() const;
  // One pass: loads the namespaces that need it, reloads unknown keys. The
  // loading thread runs it every `poll`; tests call it directly.
  absl::Status RunOnce();
  uint64_t keys_loaded() const { return keys_loaded_.load(std::memory_order_relaxed); }

 private:
  absl::Status LoadAll(Namespace& ns);
  absl::Status ReloadUnknown(Namespace& ns);

  NamespaceSet& namespaces_;
  store::Store& store_;
  const ReplicatedLoaderOptions options_;
  Notification stop_;
  std::thread thread_;
  std::atomic<uint64_t> keys_loaded_{0};
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_REPLICATED_H_
