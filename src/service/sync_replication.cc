// See sync_replication.h.
#include "service/sync_replication.h"

#include <string>

#include "absl/strings/str_cat.h"
#include "common/fault_point.h"
#include "spdlog/spdlog.h"

namespace cachecar::service {

SyncReplication::SyncReplication(NamespaceSet& namespaces, sync::Sync& sync,
                                 sync::Announcer& announcer, WatchHub* watch,
                                 SyncReplicationOptions options, const Clock& clock)
    : namespaces_(namespaces),
      sync_(sync),
      announcer_(announcer),
      watch_(watch),
      options_(std::move(options)),
      local_clock_(clock) {}

void SyncReplication::Announce(const Namespace& ns, const Change& change, absl::string_view value) {
  sync::Event event;
  event.ns = ns.name;
  event.key = change.key;
  event.version = change.version;
  event.op = change.op;
  if (change.op == ChangeOp::kUpsert && ns.sync_values && value.size() <= options_.inline_max) {
    event.value = std::string(value);
  }
  if (change.op == ChangeOp::kUpsert) event.ttl = change.ttl;
  event.origin = std::string(sync_.replica_id());
  event.committed = local_clock_.Now();
  // Versioned changes have an outbox entry to retire; broadcasts do not.
  announcer_.Announce(event, /*retire=*/change.version > 0);
}

absl::Time SyncReplication::AppliedAsOf(absl::Time now) const {
  if (!sync_.positioned()) return absl::InfinitePast();
  static const bool planted = FaultArmed(kFaultTopicFreshnessOnly);
  if (planted) {  // fresh whenever the broker answers (see fault_point.h)
    return sync_.Stats().broker_reachable ? now : absl::InfinitePast();
  }
  if (options_.clock == nullptr) return absl::InfinitePast();
  return options_.clock->EarliestLocal(watermarks_.applied_as_of(), now);
}

absl::Time SyncReplication::BoundUntilAt(absl::Time now) const {
  const absl::Time applied = AppliedAsOf(now);
  if (applied == absl::InfinitePast()) return absl::InfinitePast();
  return applied + options_.max_staleness;
}

absl::Time SyncReplication::BoundUntil() const { return BoundUntilAt(local_clock_.Now()); }

bool SyncReplication::WithinBound() const {
  const absl::Time now = local_clock_.Now();
  return now <= BoundUntilAt(now);
}

absl::Time SyncReplication::TrustedUntil() const {
  return options_.serve_stale ? absl::InfiniteFuture() : BoundUntil();
}

// Every cached Get asks this: one clock reading, not one here and one in
// BoundUntil.
bool SyncReplication::CacheTrusted() const { return options_.serve_stale || WithinBound(); }

absl::Duration SyncReplication::Staleness() const {
  const absl::Time now = local_clock_.Now();
  const absl::Time applied = AppliedAsOf(now);
  if (applied == absl::InfinitePast()) return absl::InfiniteDuration();
  return std::max(absl::ZeroDuration(), now - applied);
}

void SyncReplication::OnWatermark(int32_t partition, const sync::Watermark& watermark) {
  watermarks_.OnWatermark(partition, watermark, local_clock_.Now());
}

void SyncReplication::OnPartitions(const std::vector<int32_t>& partitions,
                                   const std::vector<int32_t>& restarted) {
  watermarks_.SetPartitions(partitions, restarted);
}

bool SyncReplication::ApplyTo(Namespace& ns, const sync::Event& e) {
  const bool applied = ApplyToEngine(ns, e);
  // A replicated namespace holds every key: one this event left out (no
  // value on it, an invalidation, at or below the positioning floor) is
  // unknown until the loader reloads it (service/replicated.h).
  if (ns.replicated && e.op != sync::Op::kFlush && !e.key.empty() &&
      ns.engine->Peek(e.key).kind == cache::Lookup::Kind::kMiss) {
    ns.replicated->MarkUnknown(e.key);
  }
  return applied;
}

bool SyncReplication::ApplyToEngine(Namespace& ns, const sync::Event& e) {
  cache::Engine& engine = *ns.engine;
  // Update mode replaces what this replica holds; it does not add keys it
  // never read (that would fill every replica with every replica's keys),
  // but for a replicated namespace, which holds them all.
  // For a key it does not hold, the version is still recorded, and loads in
  // flight are cancelled, as for an invalidation.
  auto held = [&] {
    return ns.replicated != nullptr || engine.Peek(e.key).kind != cache::Lookup::Kind::kMiss;
  };
  switch (e.op) {
    case sync::Op::kUpsert:
      if (ns.sync_values && e.value.has_value() && held()) {
        // The writer's ttl travels with the value (else the namespace's).
        return engine.Apply(e.key, e.version, cache::ChangeKind::kValue, *e.value, e.ttl) ==
               cache::ApplyResult::kApplied;
      }
      return engine.Apply(e.key, e.version, cache::ChangeKind::kInvalidate) ==
             cache::ApplyResult::kApplied;
    case sync::Op::kDelete:
      return engine.Apply(e.key, e.version,
                          ns.sync_values && held()
                              ? cache::ChangeKind::kTombstone
                              : cache::ChangeKind::kInvalidate) == cache::ApplyResult::kApplied;
    case sync::Op::kInvalidate:
      if (e.version == 0) {
        engine.Invalidate(e.key);
        return true;
      }
      return engine.Apply(e.key, e.version, cache::ChangeKind::kInvalidate) ==
             cache::ApplyResult::kApplied;
    case sync::Op::kFlush:
      if (e.version == 0) {
        engine.Flush();
        return true;
      }
      if (e.version <= engine.floor()) return false;
      engine.Flush(e.version);
      return true;
  }
  return false;
}

void SyncReplication::OnEvent(const sync::Event& e) {
  // Our own broadcasts were applied here when they were made.
  if (e.version == 0 && e.origin == sync_.replica_id()) {
    stale_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  // A planted bug for the chaos checker (tests/chaos): the event is dropped
  // (with skip_event/N, every event whose version is a multiple of N).
  if (e.version > 0 && FaultPointFires(kFaultSkipEvent, e.version)) {
    spdlog::debug("fault point {}: event {} of key {} not applied", kFaultSkipEvent, e.version,
                  e.key);
    return;
  }
  std::vector<Namespace*> targets;
  if (e.op == sync::Op::kFlush && e.ns.empty()) {
    targets = namespaces_.All();  // a TRUNCATE of the shared table
  } else {
    absl::StatusOr<Namespace*> ns = namespaces_.Find(e.ns.empty() ? "default" : e.ns);
    if (!ns.ok()) {
      unknown_namespace_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    targets.push_back(*ns);
  }
  for (Namespace* ns : targets) {
    const bool applied = ApplyTo(*ns, e);
    (applied ? applied_ : stale_).fetch_add(1, std::memory_order_relaxed);
    if (options_.waits != nullptr) {
      if (e.op == sync::Op::kFlush) {
        options_.waits->NotifyFlush(ns->name);
      } else if (e.version > 0) {
        options_.waits->Notify(ns->name, e.key, e.version);
      }
    }
    if (watch_ == nullptr) continue;
    // For a key this replica does not hold, "stale" only means "not above
    // the version its hash slot remembers" (the engine's sketch of dropped
    // keys), which another key may have raised: it is not proof of older
    // news, so watchers still hear of the change (they compare versions; a
    // relay's duplicate may reach them twice).
    const bool per_key = e.op != sync::Op::kFlush && e.version > 0;
    if (applied || (per_key && ns->engine->Peek(e.key).kind == cache::Lookup::Kind::kMiss)) {
      watch_->Publish(Change{ns->name, e.key, e.version, e.op});
    }
  }
}

void SyncReplication::OnEventsLost(absl::string_view why) {
  lost_.fetch_add(1, std::memory_order_relaxed);
  for (Namespace* ns : namespaces_.All()) {
    const size_t dropped = ns->engine->Flush();
    spdlog::warn("namespace {}: dropped {} cached entries: sync events were lost ({})", ns->name,
                 dropped, std::string(why));
    if (watch_ != nullptr) watch_->Publish(Change{ns->name, "", 0, ChangeOp::kFlush});
    if (options_.waits != nullptr) options_.waits->NotifyFlush(ns->name);
  }
}

absl::Status SyncReplication::OnPositioned() {
  if (!options_.latest_version) return absl::OkStatus();
  static const bool planted = FaultArmed(kFaultNoPositioningFloor);
  if (planted) return absl::OkStatus();  // see fault_point.h
  absl::StatusOr<uint64_t> latest = options_.latest_version();
  if (!latest.ok()) {
    return absl::UnavailableError(absl::StrCat(
        "positioned on the sync topic, but cannot read the latest version from the store: ",
        latest.status().message()));
  }
  for (Namespace* ns : namespaces_.All()) {
    if (*latest > ns->engine->floor()) ns->engine->Flush(*latest);
  }
  spdlog::info(
      "sync: events at or below version {} predate this replica's position; they "
      "cache nothing",
      *latest);
  return absl::OkStatus();
}

ApplyStats SyncReplication::apply_stats() const {
  return ApplyStats{applied_.load(), stale_.load(), unknown_namespace_.load(), lost_.load()};
}

}  // namespace cachecar::service
