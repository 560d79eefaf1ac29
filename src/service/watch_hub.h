// WatchHub: hands the changes this replica applies (service/change.h) to the
// watchers of Cache.Watch. Publishers are the write path and the sync
// consumer thread; each watcher is one open stream with its own bounded
// queue, drained by whoever serves the stream.
//
// Publish never waits for a watcher: a watcher whose queue is full (by count
// or by bytes) is closed with RESOURCE_EXHAUSTED (its client must watch
// again and re-read), never silently skipped. With nobody watching, Publish
// is one atomic load. The number of watchers is capped too, so what
// watchers that never read can hold is bounded: max_watchers x
// max_queued_bytes_per_watcher (300 such watchers held 1.34 GB outside
// max_bytes before, issue #17).
//
// Order: each watcher receives changes in the order Publish was called
// (Publish calls from different threads are ordered by the hub's lock), so
// one publisher's changes arrive in that publisher's order, each once.
//
// Thread-safety: every method may be called from any thread, and none waits
// for another thread's work. A watcher's `wake` runs on a publisher's thread
// (or CloseAll's caller) with no hub lock held; it must be quick, and it may
// still run once after Unsubscribe returns (a publisher may have taken the
// watcher just before), so it must keep alive what it touches (capture a
// weak_ptr, not a raw pointer to something Unsubscribe's caller deletes).
#ifndef CACHECAR_SERVICE_WATCH_HUB_H_
#define CACHECAR_SERVICE_WATCH_HUB_H_

#include <atomic>
#include <cstddef>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/mutex.h"
#include "service/change.h"
#include "service/namespaces.h"

namespace cachecar::service {

struct WatchHubOptions {
  // Changes a watcher may have queued and not yet taken; one more closes it
  // with RESOURCE_EXHAUSTED.
  size_t max_queued_per_watcher = 4096;
  // The same bound in bytes (a change costs its key, its namespace name and
  // kChangeOverheadBytes).
  size_t max_queued_bytes_per_watcher = 1 << 20;
  // Open watchers; Subscribe beyond it is RESOURCE_EXHAUSTED.
  size_t max_watchers = 64;
  // Longest key_prefix (max_key_bytes: a longer prefix matches no key).
  size_t max_key_prefix_bytes = 1024;
};

// What a queued change costs beyond its strings: the Change and the queue's
// share of it.
inline constexpr size_t kChangeOverheadBytes = 96;

class WatchHub {
 public:
  // One subscription: the changes of one namespace whose key starts with a
  // prefix (and every flush of the namespace), queued until taken.
  class Watcher {
   public:
    // The canonical namespace name ("" was resolved to "default").
    const std::string& ns() const { return ns_; }
    const std::string& key_prefix() const { return key_prefix_; }

    // Moves the oldest queued change into `out`; false if none is queued.
    // A closed watcher queues nothing: check status() when this is false.
    bool Next(Change* out);
    // Every queued change, oldest first.
    std::vector<Change> TakeAll();
    // OK while open; once closed, why: RESOURCE_EXHAUSTED (fell behind),
    // UNAVAILABLE (shutting down) or CANCELLED (unsubscribed).
    absl::Status status() const;
    bool closed() const { return !status().ok(); }

   private:
    friend class WatchHub;
    Watcher(std::string ns, std::string key_prefix, std::function<void()> wake)
        : ns_(std::move(ns)), key_prefix_(std::move(key_prefix)), wake_(std::move(wake)) {}

    // Whether `change` is for this watcher (its namespace is checked by the hub).
    bool Wants(const Change& change) const;
    enum class Offered {
      kIgnored,     // closed or unsubscribed
      kQueued,      // queued behind others: the consumer was woken already
      kQueuedWake,  // queued into an empty queue: wake is due
      kOverflowed,  // closed with the overflow status: wake is due
    };
    // Queues `change`, or closes the watcher with `overflow` if it would take
    // the queue past `options`' bounds.
    Offered Offer(const Change& change, const WatchHubOptions& options,
                  const absl::Status& overflow);
    // Closes with `status` unless closed already, dropping what is queued.
    // True if a wake is due.
    bool Close(absl::Status status);
    // Runs `wake` unless unsubscribed. Call with no lock held.
    void RunWake();
    // Unsubscribed: no wake starts from now on; closes with CANCELLED if open.
    void Detach();

    const std::string ns_;
    const std::string key_prefix_;
    const std::function<void()> wake_;

    mutable Mutex mu_;
    std::deque<Change> queue_ ABSL_GUARDED_BY(mu_);
    size_t queued_bytes_ ABSL_GUARDED_BY(mu_) = 0;
    absl::Status status_ ABSL_GUARDED_BY(mu_);
    bool unsubscribed_ ABSL_GUARDED_BY(mu_) = false;  // no wake may start
  };

  // `namespaces` resolves and checks Subscribe's namespace; it must outlive
  // the hub.
  explicit WatchHub(const NamespaceSet& namespaces, WatchHubOptions options = {});
  // Closes every watcher still subscribed (as CloseAll).
  ~WatchHub();
  WatchHub(const WatchHub&) = delete;
  WatchHub& operator=(const WatchHub&) = delete;

  // Queues `change` for every watcher of change.ns whose prefix matches
  // (every watcher of the namespace for kFlush), then wakes the watchers
  // whose queue was empty. `change.ns` is the canonical namespace name.
  void Publish(const Change& change);

  // A watcher of `ns` ("" means "default"; unknown: INVALID_ARGUMENT naming
  // the declared namespaces) for keys starting with `key_prefix` (longer
  // than max_key_prefix_bytes: INVALID_ARGUMENT; max_watchers open already:
  // RESOURCE_EXHAUSTED). `wake` is
  // called, on some other thread and without hub locks, when the queue goes
  // from empty to non-empty and when the watcher is closed. After CloseAll
  // (shutting down) it is UNAVAILABLE.
  absl::StatusOr<std::shared_ptr<Watcher>> Subscribe(absl::string_view ns, std::string key_prefix,
                                                     std::function<void()> wake);

  // Removes and closes `watcher` (CANCELLED if it was still open): no new
  // `wake` starts, though one a publisher started just before may still be
  // running. Never waits, so it may be called from `wake` itself.
  // Idempotent; null is ignored.
  void Unsubscribe(const std::shared_ptr<Watcher>& watcher);

  // Closes every watcher with `status` (default UNAVAILABLE "cachecar is
  // shutting down") and refuses new ones with it; for shutdown, so that open
  // streams end before the server waits for them.
  void CloseAll(const absl::Status& status = ShuttingDown());

  // Watchers currently subscribed and open.
  size_t watcher_count() const { return watchers_.load(std::memory_order_acquire); }

  static absl::Status ShuttingDown();

 private:
  using WatcherList = std::vector<std::shared_ptr<Watcher>>;
  // Removes `watcher` from by_ns_ if it is there.
  void RemoveLocked(const Watcher* watcher) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const NamespaceSet& namespaces_;
  const WatchHubOptions options_;
  const absl::Status overflow_;  // the status a watcher that fell behind gets

  // Mirrors the number of watchers in by_ns_, so that Publish with nobody
  // watching takes no lock.
  std::atomic<size_t> watchers_{0};
  mutable Mutex mu_;  // before any Watcher::mu_
  std::map<std::string, WatcherList, std::less<>> by_ns_ ABSL_GUARDED_BY(mu_);
  absl::Status closed_ ABSL_GUARDED_BY(mu_);  // set by CloseAll
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_WATCH_HUB_H_
