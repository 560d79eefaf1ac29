// SyncReplication: Replication over a sync topic (docs/DESIGN.md "Event apply",
// C4). It
//   - announces local changes (through the Announcer: publish now, retire
//     the outbox entry once acknowledged), carrying small values for
//     namespaces in update mode;
//   - applies the topic's events to the engines, version-guarded: an event
//     older than or equal to what the engine knows is a no-op; a newer one
//     replaces the value (update mode, value inline) or drops it, and
//     cancels older fill tickets; a FLUSH raises the namespace floor; lost
//     events (retention passed us) flush everything;
//   - hands every change it applied to the watchers;
//   - tracks the relays' watermarks (sync/watermarks.h) and trusts the
//     cache only while the consumer is positioned and the watermarks show
//     it has applied every write committed more than max_staleness ago,
//     on this replica's clock through the ClockBound (or always, with
//     stale_reads: serve).
//
// Local time is read from the injected Clock (tests pass a ManualClock).
//
// Thread-safety: Announce and CacheTrusted from any thread; OnEvent and
// OnEventsLost from the sync's consumer thread.
#ifndef CACHECAR_SERVICE_SYNC_REPLICATION_H_
#define CACHECAR_SERVICE_SYNC_REPLICATION_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include "absl/time/time.h"
#include "common/clock.h"
#include "service/namespaces.h"
#include "service/replication.h"
#include "service/version_waits.h"
#include "service/watch_hub.h"
#include "sync/announcer.h"
#include "sync/clock_bound.h"
#include "sync/sync.h"
#include "sync/watermarks.h"

namespace cachecar::service {

struct SyncReplicationOptions {
  // The store's latest version (Store::LatestVersion). When the consumer
  // positions, every namespace's floor rises to it: an event at or below it
  // is older than the replica's start, so it inserts nothing (a late copy of
  // an old event, e.g. a relay's duplicate, cannot cache an old value in a
  // replica that never saw the newer one). Unset: no floor.
  std::function<absl::StatusOr<uint64_t>()> latest_version;
  absl::Duration max_staleness = absl::Seconds(2);
  bool serve_stale = false;  // stale_reads: serve
  size_t inline_max = 1024;  // largest value carried in an event
  // The store's clock on this replica's (watermarks carry the store's
  // time). Must outlive the SyncReplication; null: never within the bound.
  const sync::ClockBound* clock = nullptr;
  // Min-version reads waiting for events (service/version_waits.h); told of
  // every per-key event and flush. Must outlive this; null: none.
  VersionWaits* waits = nullptr;
};

struct ApplyStats {
  uint64_t applied = 0;             // moved an engine forward
  uint64_t stale = 0;               // already known (own writes, duplicates)
  uint64_t unknown_namespace = 0;   // for a namespace this replica lacks
  uint64_t lost_event_flushes = 0;  // OnEventsLost
};

class SyncReplication final : public Replication, public sync::EventSink {
 public:
  // All must outlive this; `watch` may be null. `clock` is this replica's
  // local time (not the store's: that is options.clock).
  SyncReplication(NamespaceSet& namespaces, sync::Sync& sync, sync::Announcer& announcer,
                  WatchHub* watch, SyncReplicationOptions options,
                  const Clock& clock = Clock::Real());

  void Announce(const Namespace& ns, const Change& change, absl::string_view value) override;
  bool CacheTrusted() const override;
  // stale_reads: serve: always; else BoundUntil().
  absl::Time TrustedUntil() const override;

  void OnEvent(const sync::Event& event) override;
  void OnEventsLost(absl::string_view why) override;
  absl::Status OnPositioned() override;
  void OnWatermark(int32_t partition, const sync::Watermark& watermark) override;
  void OnPartitions(const std::vector<int32_t>& partitions,
                    const std::vector<int32_t>& restarted) override;

  // Positioned and within max_staleness now (whatever stale_reads says).
  bool WithinBound() const;
  // The instant the bound runs out: AppliedAsOf() + max_staleness, or
  // InfinitePast while the replica cannot show any freshness. What local
  // readers are given (docs/LOCAL_READS.md): Now() <= BoundUntil() is
  // exactly WithinBound().
  absl::Time BoundUntil() const;
  // How far behind the replica can show it is: now minus the earliest
  // local time of its watermarks' store time; InfiniteDuration before it is
  // positioned, has read the store's clock and has a watermark in every
  // partition.
  absl::Duration Staleness() const;
  ApplyStats apply_stats() const;
  const sync::WatermarkTracker& watermarks() const { return watermarks_; }

 private:
  // The local instant up to which every committed write has been applied
  // (the watermarks through the ClockBound), or InfinitePast when unknown.
  // The one source of Staleness, WithinBound and TrustedUntil.
  absl::Time AppliedAsOf(absl::Time now) const;
  // BoundUntil() as of `now` (WithinBound and CacheTrusted read the clock once).
  absl::Time BoundUntilAt(absl::Time now) const;
  // One event on one namespace; true if the engine moved forward.
  bool ApplyTo(Namespace& ns, const sync::Event& event);
  bool ApplyToEngine(Namespace& ns, const sync::Event& event);

  NamespaceSet& namespaces_;
  sync::Sync& sync_;
  sync::Announcer& announcer_;
  WatchHub* const watch_;
  const SyncReplicationOptions options_;
  const Clock& local_clock_;
  sync::WatermarkTracker watermarks_;
  std::atomic<uint64_t> applied_{0}, stale_{0}, unknown_namespace_{0}, lost_{0};
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_SYNC_REPLICATION_H_
