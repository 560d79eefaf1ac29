// SyncReplication against a fake Sync: the apply rules (version-guarded,
// update vs invalidate mode, FLUSH floors, unversioned broadcasts, unknown
// namespaces, lost events), what local changes announce, and when the cache
// is trusted (C4: by the relays' watermarks, through the store's clock), on
// a local clock the tests move (ManualClock).
#include "service/sync_replication.h"

#include "common/clock.h"
#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

class FakeSync final : public sync::Sync {
 public:
  std::vector<sync::Event> published;
  bool is_positioned = true;

  void Start(sync::EventSink&) override {}
  void Stop(absl::Duration) override {}
  void Publish(const sync::Event& e, Delivered d) override {
    published.push_back(e);
    if (d) d(absl::OkStatus());
  }
  void PublishWatermark(sync::Watermark, Delivered d) override { d(absl::OkStatus()); }
  bool positioned() const override { return is_positioned; }
  absl::Time topic_fresh_as_of() const override { return absl::Now(); }
  sync::SyncStats Stats() const override { return {}; }
  absl::string_view replica_id() const override { return "me"; }
};

config::Config TwoNamespaces() {
  config::Config c;
  c.max_bytes = 4 << 20;
  c.max_value_bytes = 1024;
  config::NamespaceConfig upd;
  upd.name = "upd";
  config::NamespaceConfig inv;
  inv.name = "inv";
  inv.sync = "invalidate";
  c.namespaces = {upd, inv};
  return c;
}

sync::Event Ev(std::string ns, std::string key, uint64_t v, sync::Op op,
               std::optional<std::string> value = std::nullopt, std::string origin = "other") {
  return sync::Event{std::move(ns),    std::move(key),    v,          op,
                     std::move(value), std::move(origin), absl::Now()};
}

class SyncReplicationTest : public ::testing::Test {
 protected:
  SyncReplicationTest()
      : namespaces_(TwoNamespaces(), &clock_engine_),
        announcer_(sync_, nullptr),
        hub_(namespaces_),
        replication_(namespaces_, sync_, announcer_, &hub_, Options(&clock_), local_) {}
  static SyncReplicationOptions Options(const sync::ClockBound* clock) {
    SyncReplicationOptions o;
    o.max_staleness = absl::Seconds(2);
    o.inline_max = 8;
    o.clock = clock;
    return o;
  }
  // The store's clock runs `skew` ahead of ours; one exact reading of it.
  void Calibrate(absl::Duration skew) {
    const absl::Time now = local_.Now();
    clock_.OnSample(now, now + skew, now);
  }
  // Relay `relay`'s watermark at store time `store_time` in both partitions.
  void Watermarks(absl::Time store_time, const std::string& relay = "r") {
    for (int32_t p : {0, 1}) replication_.OnWatermark(p, sync::Watermark{relay, store_time, 2});
  }
  cache::Engine& Engine(const std::string& ns) { return *(*namespaces_.Find(ns))->engine; }

  ManualClock clock_engine_;  // the engines' (TTLs)
  ManualClock local_;         // the replication's (this replica's time)
  sync::ClockBound clock_;
  FakeSync sync_;
  NamespaceSet namespaces_;
  sync::Announcer announcer_;
  WatchHub hub_;
  SyncReplication replication_;
};

TEST_F(SyncReplicationTest, UpdateModeReplacesAndIgnoresOlderOrEqual) {
  Engine("upd").Apply("k", 2, cache::ChangeKind::kValue, "two");
  replication_.OnEvent(Ev("upd", "k", 5, sync::Op::kUpsert, "five"));
  EXPECT_EQ(Engine("upd").Peek("k").value, "five");
  replication_.OnEvent(Ev("upd", "k", 4, sync::Op::kUpsert, "four"));  // late
  replication_.OnEvent(Ev("upd", "k", 5, sync::Op::kUpsert, "five"));  // duplicate
  EXPECT_EQ(Engine("upd").Peek("k").value, "five");
  EXPECT_EQ(Engine("upd").Peek("k").version, 5u);
  replication_.OnEvent(Ev("upd", "k", 9, sync::Op::kDelete));
  EXPECT_EQ(Engine("upd").Peek("k").kind, cache::Lookup::Kind::kNegative);
  EXPECT_EQ(Engine("upd").Peek("k").version, 9u);
  const ApplyStats s = replication_.apply_stats();
  EXPECT_EQ(s.applied, 2u);
  EXPECT_EQ(s.stale, 2u);
}

TEST_F(SyncReplicationTest, UpdateModeDoesNotAddKeysItDoesNotHold) {
  cache::FillTicket t = Engine("upd").BeginFill("new");  // a load in flight
  replication_.OnEvent(Ev("upd", "new", 5, sync::Op::kUpsert, "five"));
  EXPECT_EQ(Engine("upd").Peek("new").kind, cache::Lookup::Kind::kMiss);
  // ...but the load that read something older cannot cache it, and neither
  // can a late older copy of the event.
  EXPECT_EQ(Engine("upd").CompleteFill(std::move(t), 4, std::string_view("four")),
            cache::FillResult::kSuperseded);
  replication_.OnEvent(Ev("upd", "new", 3, sync::Op::kUpsert, "three"));
  EXPECT_EQ(Engine("upd").Peek("new").kind, cache::Lookup::Kind::kMiss);
  // A negative entry counts as held: the value replaces it.
  Engine("upd").Apply("gone", 6, cache::ChangeKind::kTombstone);
  replication_.OnEvent(Ev("upd", "gone", 7, sync::Op::kUpsert, "back"));
  EXPECT_EQ(Engine("upd").Peek("gone").value, "back");
}

// TTL that travels (#15): an upsert's ttl is the new copy's, announced and
// applied; without one, the namespace's (none here).
TEST_F(SyncReplicationTest, AnUpsertsTtlIsAnnouncedAndApplied) {
  Namespace& upd = **namespaces_.Find("upd");
  Change change{"upd", "a", 11, ChangeOp::kUpsert};
  change.ttl = absl::Seconds(3);
  replication_.Announce(upd, change, "small");
  ASSERT_EQ(sync_.published.size(), 1u);
  ASSERT_TRUE(sync_.published[0].ttl.has_value());
  EXPECT_EQ(*sync_.published[0].ttl, absl::Seconds(3));

  Engine("upd").Apply("k", 2, cache::ChangeKind::kValue, "two");
  Engine("upd").Apply("j", 2, cache::ChangeKind::kValue, "two");
  sync::Event timed = Ev("upd", "k", 5, sync::Op::kUpsert, "five");
  timed.ttl = absl::Seconds(3);
  replication_.OnEvent(timed);
  replication_.OnEvent(Ev("upd", "j", 5, sync::Op::kUpsert, "five"));
  clock_engine_.Advance(absl::Seconds(4));
  EXPECT_EQ(Engine("upd").Peek("k").kind, cache::Lookup::Kind::kMiss) << "the ttl did not travel";
  EXPECT_EQ(Engine("upd").Peek("j").value, "five");
}

TEST_F(SyncReplicationTest, UpsertWithoutValueDrops) {
  Engine("upd").Apply("k", 3, cache::ChangeKind::kValue, "three");
  replication_.OnEvent(Ev("upd", "k", 4, sync::Op::kUpsert));  // value too large to inline
  EXPECT_EQ(Engine("upd").Peek("k").kind, cache::Lookup::Kind::kMiss);
}

TEST_F(SyncReplicationTest, InvalidateModeDropsEvenWithAValue) {
  Engine("inv").Apply("k", 3, cache::ChangeKind::kValue, "three");
  replication_.OnEvent(Ev("inv", "k", 4, sync::Op::kUpsert, "four"));
  EXPECT_EQ(Engine("inv").Peek("k").kind, cache::Lookup::Kind::kMiss);
  // A load that read version 3 before the event must not be cached now.
  cache::FillTicket t = Engine("inv").BeginFill("k2");
  replication_.OnEvent(Ev("inv", "k2", 7, sync::Op::kUpsert, "seven"));
  EXPECT_EQ(Engine("inv").CompleteFill(std::move(t), 6, std::string_view("six")),
            cache::FillResult::kSuperseded);
}

TEST_F(SyncReplicationTest, FlushRaisesTheFloorAndEmptyNamespaceMeansAll) {
  Engine("upd").Apply("a", 3, cache::ChangeKind::kValue, "x");
  Engine("inv").Apply("b", 3, cache::ChangeKind::kValue, "y");
  replication_.OnEvent(Ev("", "", 10, sync::Op::kFlush));
  EXPECT_EQ(Engine("upd").Peek("a").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(Engine("inv").Peek("b").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(Engine("upd").floor(), 10u);
  // Pre-flush news inserts nothing.
  replication_.OnEvent(Ev("upd", "a", 8, sync::Op::kUpsert, "old"));
  EXPECT_EQ(Engine("upd").Peek("a").kind, cache::Lookup::Kind::kMiss);
  // A replayed flush is stale.
  const uint64_t applied = replication_.apply_stats().applied;
  replication_.OnEvent(Ev("upd", "", 10, sync::Op::kFlush));
  EXPECT_EQ(replication_.apply_stats().applied, applied);
}

// latest_version: positioning raises every namespace's floor to the
// store's latest version, so a late copy of an event from before the
// replica's start caches nothing, even over an entry the replica loaded at
// a lower version (a deleted key whose tombstone the store forgot reads as
// absent at 0). A store that cannot answer fails OnPositioned (the sync
// retries), and a later, lower answer never lowers a floor.
TEST_F(SyncReplicationTest, PositioningRaisesTheFloorsToTheLatestVersion) {
  absl::StatusOr<uint64_t> latest = absl::UnavailableError("PostgreSQL is down");
  SyncReplicationOptions options = Options(&clock_);
  options.latest_version = [&latest] { return latest; };
  SyncReplication replication(namespaces_, sync_, announcer_, &hub_, options);
  absl::Status positioned = replication.OnPositioned();
  EXPECT_EQ(positioned.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(positioned.message().find("PostgreSQL is down"), std::string::npos) << positioned;
  EXPECT_EQ(Engine("upd").floor(), 0u);

  latest = 20;
  ASSERT_TRUE(replication.OnPositioned().ok());
  EXPECT_EQ(Engine("upd").floor(), 20u);
  EXPECT_EQ(Engine("inv").floor(), 20u);
  // Loaded after positioning: absent at 0 (forgotten tombstone), and a
  // value at 18.
  ASSERT_EQ(Engine("upd").CompleteFill(Engine("upd").BeginFill("gone"), 0, std::nullopt),
            cache::FillResult::kAccepted);
  ASSERT_EQ(Engine("upd").CompleteFill(Engine("upd").BeginFill("k"), 18, std::string_view("v18")),
            cache::FillResult::kAccepted);
  replication.OnEvent(Ev("upd", "gone", 7, sync::Op::kUpsert, "old"));  // late copy
  EXPECT_NE(Engine("upd").Peek("gone").kind, cache::Lookup::Kind::kHit)
      << "a pre-position event cached a value";
  replication.OnEvent(Ev("upd", "k", 9, sync::Op::kUpsert, "v9"));
  EXPECT_EQ(Engine("upd").Peek("k").value, "v18");
  // News after the position applies as usual.
  replication.OnEvent(Ev("upd", "k", 21, sync::Op::kUpsert, "v21"));
  EXPECT_EQ(Engine("upd").Peek("k").value, "v21");

  latest = 5;  // repositioned against a store that answers lower
  ASSERT_TRUE(replication.OnPositioned().ok());
  EXPECT_EQ(Engine("upd").floor(), 20u);
  EXPECT_EQ(Engine("upd").Peek("k").value, "v21") << "an unchanged floor flushes nothing";
}

TEST_F(SyncReplicationTest, UnversionedBroadcastsApplyButNotOurOwn) {
  Engine("upd").Apply("k", 3, cache::ChangeKind::kValue, "x");
  replication_.OnEvent(Ev("upd", "k", 0, sync::Op::kInvalidate, std::nullopt, "me"));
  EXPECT_EQ(Engine("upd").Peek("k").kind, cache::Lookup::Kind::kHit);
  replication_.OnEvent(Ev("upd", "k", 0, sync::Op::kInvalidate));
  EXPECT_EQ(Engine("upd").Peek("k").kind, cache::Lookup::Kind::kMiss);
}

TEST_F(SyncReplicationTest, UnknownNamespaceIsCounted) {
  replication_.OnEvent(Ev("nope", "k", 3, sync::Op::kUpsert, "x"));
  EXPECT_EQ(replication_.apply_stats().unknown_namespace, 1u);
}

TEST_F(SyncReplicationTest, LostEventsFlushEverything) {
  Engine("upd").Apply("a", 3, cache::ChangeKind::kValue, "x");
  replication_.OnEventsLost("partition 0: offset out of range");
  EXPECT_EQ(Engine("upd").Peek("a").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(replication_.apply_stats().lost_event_flushes, 1u);
}

TEST_F(SyncReplicationTest, AnnouncesWithInlineValuesOnlyInUpdateModeAndWhenSmall) {
  Namespace& upd = **namespaces_.Find("upd");
  Namespace& inv = **namespaces_.Find("inv");
  replication_.Announce(upd, Change{"upd", "a", 11, ChangeOp::kUpsert}, "small");
  replication_.Announce(upd, Change{"upd", "b", 12, ChangeOp::kUpsert}, "far too large");
  replication_.Announce(inv, Change{"inv", "c", 13, ChangeOp::kUpsert}, "small");
  replication_.Announce(upd, Change{"upd", "d", 0, ChangeOp::kInvalidate}, "");
  ASSERT_EQ(sync_.published.size(), 4u);
  EXPECT_EQ(sync_.published[0].value, "small");
  EXPECT_EQ(sync_.published[0].origin, "me");
  EXPECT_FALSE(sync_.published[1].value.has_value());
  EXPECT_FALSE(sync_.published[2].value.has_value());
  EXPECT_EQ(sync_.published[3].op, sync::Op::kInvalidate);
  EXPECT_EQ(sync_.published[3].version, 0u);
}

TEST_F(SyncReplicationTest, TrustsTheCacheOnlyWithinTheBoundOfTheWatermarks) {
  const absl::Duration skew = absl::Minutes(7);  // the store's clock is 7 min ahead
  replication_.OnPartitions({0, 1}, {0, 1});
  EXPECT_FALSE(replication_.CacheTrusted()) << "no watermark yet";
  Watermarks(local_.Now() + skew - absl::Milliseconds(500));
  EXPECT_FALSE(replication_.CacheTrusted()) << "the store's clock was never read";
  EXPECT_EQ(replication_.Staleness(), absl::InfiniteDuration());
  Calibrate(skew);
  EXPECT_TRUE(replication_.CacheTrusted());
  EXPECT_EQ(replication_.Staleness(), absl::Milliseconds(500)) << "no time passed: no drift";
  // No newer watermark for 3 s (the relays are behind, or the broker is
  // away): past the bound.
  Watermarks(local_.Now() + skew - absl::Seconds(3), "late");
  EXPECT_TRUE(replication_.CacheTrusted()) << "an older relay's watermark does not hurt";
  replication_.OnPartitions({0, 1}, {0, 1});  // repositioned: everything before is skipped
  EXPECT_FALSE(replication_.CacheTrusted());
  Watermarks(local_.Now() + skew - absl::Seconds(3));
  EXPECT_FALSE(replication_.CacheTrusted());
  EXPECT_FALSE(replication_.WithinBound());
  Watermarks(local_.Now() + skew);
  EXPECT_TRUE(replication_.CacheTrusted());
  sync_.is_positioned = false;
  EXPECT_FALSE(replication_.CacheTrusted());
  EXPECT_EQ(replication_.Staleness(), absl::InfiniteDuration());
}

TEST_F(SyncReplicationTest, AStoreClockAheadOfOursIsNotMistakenForFreshness) {
  // Planted-bug check for the clock bound: read with the wrong skew (0), a
  // 3-second-old watermark from a store clock 10 s ahead would look 7 s in
  // the future. Through the ClockBound it is 3 s old: past the bound.
  replication_.OnPartitions({0, 1}, {0, 1});
  Calibrate(absl::Seconds(10));
  Watermarks(local_.Now() + absl::Seconds(10) - absl::Seconds(3));
  EXPECT_FALSE(replication_.CacheTrusted());
  EXPECT_EQ(replication_.Staleness(), absl::Seconds(3));
}

TEST_F(SyncReplicationTest, TrustedUntilIsTheInstantTheBoundRunsOut) {
  // What local readers get (docs/LOCAL_READS.md): the same decision as
  // CacheTrusted, as an instant they compare their clock with: the
  // watermarks' local time plus max_staleness.
  replication_.OnPartitions({0, 1}, {0, 1});
  EXPECT_EQ(replication_.TrustedUntil(), absl::InfinitePast());  // no watermark yet
  Calibrate(absl::ZeroDuration());
  const absl::Time fresh = local_.Now() - absl::Milliseconds(500);
  Watermarks(fresh);
  const absl::Time until = replication_.TrustedUntil();
  EXPECT_EQ(until, fresh + absl::Seconds(2)) << "no time passed since the clock sample";
  EXPECT_TRUE(replication_.CacheTrusted());
  sync_.is_positioned = false;
  EXPECT_EQ(replication_.TrustedUntil(), absl::InfinitePast());
  EXPECT_FALSE(replication_.CacheTrusted());
}

// The bound runs out as local time passes without a newer watermark: the
// watermark's age plus the drift allowed since the store's clock was read
// (500 ppm) reaches max_staleness (2 s).
TEST_F(SyncReplicationTest, TheBoundRunsOutAsLocalTimePasses) {
  replication_.OnPartitions({0, 1}, {0, 1});
  Calibrate(absl::ZeroDuration());
  Watermarks(local_.Now());
  EXPECT_TRUE(replication_.WithinBound());
  EXPECT_EQ(replication_.Staleness(), absl::ZeroDuration());
  local_.Advance(absl::Seconds(1));
  EXPECT_EQ(replication_.Staleness(), absl::Seconds(1) + absl::Microseconds(500))
      << "1 s old, and 500 us of drift since the sample";
  local_.Advance(absl::Milliseconds(900));  // 1.9 s old, 950 us of drift
  EXPECT_TRUE(replication_.CacheTrusted());
  local_.Advance(absl::Milliseconds(100));  // 2 s old, plus drift: past the bound
  EXPECT_FALSE(replication_.CacheTrusted());
  EXPECT_FALSE(replication_.WithinBound());
  Watermarks(local_.Now());  // a relay caught up
  EXPECT_TRUE(replication_.CacheTrusted());
}

TEST(SyncReplicationServeStaleTest, ServeModeTrustsTheCacheAnyway) {
  FakeSync sync;
  NamespaceSet namespaces(TwoNamespaces());
  sync::Announcer announcer(sync, nullptr);
  SyncReplicationOptions o;
  o.serve_stale = true;
  SyncReplication replication(namespaces, sync, announcer, nullptr, o);
  EXPECT_TRUE(replication.CacheTrusted());
  EXPECT_FALSE(replication.WithinBound());
  EXPECT_EQ(replication.TrustedUntil(), absl::InfiniteFuture());
}

TEST_F(SyncReplicationTest, WatchersSeeAppliedEventsOnly) {
  Engine("upd").Apply("k", 2, cache::ChangeKind::kValue, "two");
  auto watcher = hub_.Subscribe("upd", "", [] {});
  ASSERT_TRUE(watcher.ok());
  replication_.OnEvent(Ev("upd", "k", 5, sync::Op::kUpsert, "five"));
  replication_.OnEvent(Ev("upd", "k", 4, sync::Op::kUpsert, "four"));
  std::vector<Change> seen = (*watcher)->TakeAll();
  ASSERT_EQ(seen.size(), 1u);
  EXPECT_EQ(seen[0].version, 5u);
  EXPECT_FALSE(seen[0].local);
}

// The engine remembers versions of keys it does not hold per hash slot, so
// a key's slot can be above the key's own newest version (another key raised
// it; events of different keys arrive out of version order). Watchers must
// still hear of that key's change. (Found while explaining a benchmark run
// whose reader's Watch missed 1 of 10,000 writes; that this was its cause is
// not proven.)
TEST_F(SyncReplicationTest, WatchersHearOfUnheldKeysWhoseSlotIsAhead) {
  for (int i = 0; i < 200000; ++i) {
    Engine("upd").Apply("other:" + std::to_string(i), 1000, cache::ChangeKind::kInvalidate);
  }
  // Precondition: the engine calls version 10 of a never-seen key stale.
  ASSERT_EQ(Engine("upd").Apply("fresh", 10, cache::ChangeKind::kInvalidate),
            cache::ApplyResult::kStale);
  ASSERT_EQ(Engine("upd").Apply("held", 2000, cache::ChangeKind::kValue, "new"),
            cache::ApplyResult::kApplied);
  auto watcher = hub_.Subscribe("upd", "", [] {});
  ASSERT_TRUE(watcher.ok());
  replication_.OnEvent(Ev("upd", "fresh", 10, sync::Op::kUpsert, "ten"));
  replication_.OnEvent(Ev("upd", "held", 1500, sync::Op::kUpsert, "old"));
  std::vector<Change> seen = (*watcher)->TakeAll();
  ASSERT_EQ(seen.size(), 1u);  // not the held key's older version
  EXPECT_EQ(seen[0].key, "fresh");
  EXPECT_EQ(seen[0].version, 10u);
  EXPECT_EQ(Engine("upd").Peek("fresh").kind, cache::Lookup::Kind::kMiss);
}

}  // namespace
}  // namespace cachecar::service
