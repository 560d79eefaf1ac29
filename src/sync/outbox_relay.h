// The writer's fast path and the outbox relay (docs/DESIGN.md "Put", C6).
//
// Announcer: after a write commits, the writer publishes its event at once
// and, when the broker acknowledges it, retires the write's outbox entry (in
// batches, on a thread of its own). A failed publish leaves the entry for
// the relay.
//
// OutboxRelay: every replica runs one. It wakes when the store announces a
// new entry (LISTEN/NOTIFY) and at least every `poll`, waits `min_age` so
// writers can retire their own entries first, then claims what is left (rows
// locked, skipping rows another replica holds), publishes it, and lets the
// store delete the entries once the broker has them all. Duplicates (a
// writer and a relay both publishing) are harmless: events are versioned.
//
// Thread-safety: Announce may be called from any thread.
#ifndef CACHECAR_SYNC_OUTBOX_RELAY_H_
#define CACHECAR_SYNC_OUTBOX_RELAY_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/mutex.h"
#include "store/store.h"
#include "sync/sync.h"

namespace cachecar::sync {

class Announcer {
 public:
  // `outbox` may be null (nothing to retire). Both must outlive this.
  Announcer(Sync& sync, store::Outbox* outbox);
  ~Announcer();  // retires what was acknowledged so far, then stops

  // Publishes `event`; with `retire`, its outbox entry (by version) is
  // deleted once the broker has it.
  void Announce(const Event& event, bool retire);

  uint64_t retired() const { return retired_.load(); }

 private:
  void RetireLoop();

  Sync& sync_;
  store::Outbox* const outbox_;
  Mutex mu_;
  CondVar wake_;
  std::vector<uint64_t> to_retire_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> retired_{0};
  std::thread thread_;
};

struct RelayOptions {
  absl::Duration min_age = absl::Milliseconds(500);
  absl::Duration poll = absl::Seconds(1);
  size_t batch = 500;
  // How long one batch may wait for the broker's acknowledgements.
  absl::Duration publish_wait = absl::Seconds(15);
  std::string origin;  // "relay/<replica id>"
};

class OutboxRelay {
 public:
  OutboxRelay(store::Outbox& outbox, Sync& sync, RelayOptions options);
  ~OutboxRelay();  // Stop()

  void Start();
  void Stop();

  // One claim-publish-delete round; how many entries it relayed. Public for
  // tests (which run it without Start).
  absl::StatusOr<size_t> RunOnce();

  uint64_t relayed() const { return relayed_.load(); }

 private:
  void Loop();

  store::Outbox& outbox_;
  Sync& sync_;
  const RelayOptions options_;
  Notification stop_;
  std::atomic<bool> stopping_{false};  // also ends a RunOnce's wait for acks
  std::atomic<uint64_t> relayed_{0};
  std::thread thread_;
};

// An outbox entry as an event on the topic.
Event EventFromOutbox(const store::OutboxEntry& entry, const std::string& origin);

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_OUTBOX_RELAY_H_
