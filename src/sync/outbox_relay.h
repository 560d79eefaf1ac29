// The outbox relay (docs/DESIGN.md "Relays", "Watermarks", C4, C6); the
// writer's fast path, which leaves the relay only what it could not
// publish, is sync/announcer.h.
//
// OutboxRelay: every replica runs one, but only a few relay at a time: the
// ones holding one of `leases` leases in the store. A replica that sees
// watermarks from fewer than `leases` other relays (its consumer reads
// them) tries to take a free or expired lease, with backoff and jitter, so
// the store hears from non-holders only when a relay is missing. A holder
// renews its lease every ttl/4 and relays only while the lease is valid; a
// holder that dies or is paused loses it at expiry, and another replica
// takes it over; one whose publishes keep failing for 3 ttl gives it up.
//
// A holder's round: a snapshot of the outbox (with the store's clock read
// before it), then
//   - publishes the entries nobody will announce (not `announced`: psql,
//     another service) at once, and announced ones whose writer has not
//     retired them within `min_age` (it crashed after its commit);
//   - remembers the snapshot as a watermark candidate: once every entry it
//     listed is gone (retired by its writer after the broker acknowledged
//     it, or relayed by a relay), every write committed before the
//     snapshot's time is on the topic, and the watermark with that time is
//     published into every partition (at most every `watermark_interval`).
// Rounds run when the store announces a direct write (NOTIFY) and at least
// every `watermark_interval`; while a watermark is due and its candidate
// waits for writers to retire their entries, every few milliseconds.
// Duplicates (a writer and a relay, or two relays, publishing one change)
// are harmless: events are versioned.
//
// The relay's time (lease expiry and renewal, tries, watermark interval,
// failing publishes) is read from the injected Clock; waits for the
// broker's acknowledgements are bounded in real time (publish_wait).
//
// Thread-safety: the relay runs on its own thread (tests may call RunOnce
// instead of Start); the accessors are safe from any thread.
#ifndef CACHECAR_SYNC_OUTBOX_RELAY_H_
#define CACHECAR_SYNC_OUTBOX_RELAY_H_

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "store/store.h"
#include "sync/sync.h"

namespace cachecar::sync {

struct RelayOptions {
  // An announced entry its writer has not retired after this long is
  // published by the relay (outbox_relay_delay).
  absl::Duration min_age = absl::Milliseconds(500);
  // A watermark round at least this often (the replicas' staleness runs
  // about this much behind).
  absl::Duration watermark_interval = absl::Milliseconds(200);
  size_t batch = 500;
  // How long one batch or watermark may wait for the broker's
  // acknowledgements.
  absl::Duration publish_wait = absl::Seconds(15);
  std::string origin;  // events' origin: "relay/<replica id>"
  // The lease holder's name and the watermarks' relay id: unique per
  // process ("<replica id>/<random>").
  std::string holder;
  int leases = 2;  // outbox_relays
  absl::Duration lease_ttl = absl::Milliseconds(1500);
  // A replica tries to take a lease when fewer than `leases` other relays
  // sent a watermark within this long.
  absl::Duration takeover_after = absl::Seconds(1);
  // How many relays other than `holder` sent watermarks since a time (the
  // replica's WatermarkTracker). Unset: never try to take a lease.
  std::function<int(absl::Time since)> relays_seen;
};

class OutboxRelay {
 public:
  // `clock` must outlive the relay.
  OutboxRelay(store::Outbox& outbox, Sync& sync, RelayOptions options,
              const Clock& clock = Clock::Real());
  ~OutboxRelay();  // Stop()

  void Start();
  // Stops the thread and gives up the lease (another replica takes it at
  // once).
  void Stop();

  // One round (see above), lease or not; how many entries it relayed.
  // Public for tests, which run it without Start.
  absl::StatusOr<size_t> RunOnce();

  bool holds_lease() const { return holding_.load(); }
  uint64_t relayed() const { return relayed_.load(); }
  uint64_t watermarks() const { return watermarks_.load(); }

 private:
  struct Candidate {
    absl::Time as_of;           // store clock, before the snapshot
    std::set<int64_t> waiting;  // entries it listed that are still there
  };
  void Loop();
  // Renews or takes the lease when due; whether this replica relays now.
  bool MaintainLease();
  // MaintainLease's halves. The holder's: renews when due, stops at expiry,
  // gives the lease up when publishing keeps failing.
  bool KeepLease(absl::Time now);
  // A non-holder's: takes a lease when relays are missing, with jittered
  // backoff.
  bool TryTakeLease(absl::Time now);
  // Publishes the newest candidate that waits for nothing, if a watermark
  // is due; drops it and the older ones.
  void MaybePublishWatermark();
  // Publishes `entries` and waits for the broker (bounded).
  absl::Status PublishAll(const std::vector<store::OutboxEntry>& entries);
  // A watermark_interval has passed since the last watermark.
  bool WatermarkDue() const;

  store::Outbox& outbox_;
  Sync& sync_;
  const RelayOptions options_;
  const Clock& clock_;
  Notification stop_;
  std::atomic<bool> stopping_{false};  // also ends a wait for acks
  std::atomic<uint64_t> relayed_{0}, watermarks_{0};
  std::atomic<bool> holding_{false};
  std::thread thread_;

  // The relay thread's (or RunOnce caller's) own state.
  std::deque<Candidate> candidates_;
  absl::Time last_watermark_ = absl::InfinitePast();  // local, when published
  // Local time of the first failed publish since the last one that worked.
  absl::Time failing_since_ = absl::InfinitePast();
  absl::Time lease_valid_until_ = absl::InfinitePast();
  absl::Time renew_at_ = absl::InfinitePast();
  absl::Time next_try_ = absl::InfinitePast();
  absl::Time held_since_ = absl::InfinitePast();
  absl::Duration backoff_;
  std::mt19937_64 rng_;
};

// An outbox entry as an event on the topic.
Event EventFromOutbox(const store::OutboxEntry& entry, const std::string& origin);

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_OUTBOX_RELAY_H_
