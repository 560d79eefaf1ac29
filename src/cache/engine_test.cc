// Unit tests for the cache engine: one test per rule of engine.h.
#include "cache/engine.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace cachecar::cache {

// Stops a Flush half-way: the floor is raised and the epoch bumped, but no
// shard has been swept yet (what a Get on a shard the sweep has not reached
// sees).
class EngineTestPeer {
 public:
  static void BeginFlush(Engine& engine, std::optional<uint64_t> floor_version = std::nullopt) {
    engine.BeginFlush(floor_version);
  }
  static size_t SweepShards(Engine& engine) { return engine.SweepShards(); }
};

namespace {

using Kind = Lookup::Kind;

size_t Charge(std::string_view key, std::string_view value) {
  return key.size() + value.size() + Engine::EntryOverhead();
}

EngineOptions SingleShard(size_t max_bytes, EvictionPolicy policy = EvictionPolicy::kS3Fifo) {
  EngineOptions options;
  options.max_bytes = max_bytes;
  options.shards = 1;
  options.policy = policy;
  return options;
}

// A load that read `value` at `version` with nothing in between.
FillResult Fill(Engine& engine, std::string_view key, uint64_t version,
                std::optional<std::string_view> value) {
  return engine.CompleteFill(engine.BeginFill(key), version, value);
}

void ExpectHit(Engine& engine, std::string_view key, uint64_t version, std::string_view value) {
  const Lookup got = engine.Get(key);
  EXPECT_EQ(got.kind, Kind::kHit) << key;
  EXPECT_EQ(got.version, version) << key;
  EXPECT_EQ(got.value, value) << key;
}

void ExpectMiss(Engine& engine, std::string_view key) {
  EXPECT_EQ(engine.Get(key).kind, Kind::kMiss) << key;
}

// --- byte bound and accounting ----------------------------------------------

class PolicyTest : public testing::TestWithParam<EvictionPolicy> {};

TEST_P(PolicyTest, ByteBoundHoldsWhenFillingFarPastMax) {
  EngineOptions options;
  options.max_bytes = 64 << 10;
  options.shards = 4;
  options.policy = GetParam();
  Engine engine(options);
  std::mt19937_64 rng(7);
  uint64_t version = 0;
  for (int i = 0; i < 20000; ++i) {
    const std::string key = "key-" + std::to_string(i);
    const std::string value(rng() % 600, 'v');
    engine.Apply(key, ++version, ChangeKind::kValue, value);
    if (i % 3 == 0) engine.Get("key-" + std::to_string(rng() % (i + 1)));
    ASSERT_LE(engine.Stats().bytes, engine.max_bytes()) << i;
  }
  const EngineStats stats = engine.Stats();
  EXPECT_LE(stats.bytes, options.max_bytes);
  EXPECT_GT(stats.bytes, options.max_bytes / 2);
  EXPECT_GT(stats.evictions, 0u);
  EXPECT_LT(stats.entries, 20000u);
  EXPECT_EQ(stats.evictions + stats.entries, 20000u);
  std::string why;
  EXPECT_TRUE(engine.CheckStorage(&why)) << why;
}

TEST(EngineTest, ValuesOfMixedSizesStillFillTheByteBudget) {
  // Entries live in a fixed arena per shard: holes between blocks of mixed
  // sizes must not make the engine evict long before max_bytes.
  EngineOptions options;
  options.max_bytes = 4 << 20;
  options.shards = 4;
  Engine engine(options);
  std::mt19937_64 rng(3);
  uint64_t version = 0;
  for (int i = 0; i < 60000; ++i) {
    engine.Apply("key-" + std::to_string(rng() % 20000), ++version, ChangeKind::kValue,
                 std::string(rng() % 4000, 'v'));
  }
  const EngineStats stats = engine.Stats();
  EXPECT_GE(stats.bytes, options.max_bytes * 97 / 100);
  EXPECT_LE(stats.bytes, options.max_bytes);
  std::string why;
  EXPECT_TRUE(engine.CheckStorage(&why)) << why;
}

INSTANTIATE_TEST_SUITE_P(Policies, PolicyTest,
                         testing::Values(EvictionPolicy::kS3Fifo, EvictionPolicy::kLru),
                         [](const auto& info) {
                           return info.param == EvictionPolicy::kLru ? std::string("Lru")
                                                                     : std::string("S3Fifo");
                         });

TEST(EngineTest, BytesCountKeyValueAndEntryOverhead) {
  // The overhead covers at least the entry header, its index slot and its
  // allocation; see kEntryOverhead in entry.h for the derivation.
  EXPECT_GE(Engine::EntryOverhead(), 80u);
  EXPECT_LE(Engine::EntryOverhead(), 160u);
  Engine engine(EngineOptions{});
  engine.Apply("a", 1, ChangeKind::kValue, "x");
  engine.Apply("bb", 2, ChangeKind::kValue, std::string(100, 'y'));
  engine.Apply("ccc", 3, ChangeKind::kTombstone);
  Fill(engine, "dddd", 4, std::string(5000, 'z'));
  size_t expected = Charge("a", "x") + Charge("bb", std::string(100, 'y')) + Charge("ccc", "") +
                    Charge("dddd", std::string(5000, 'z'));
  EXPECT_EQ(engine.Stats().bytes, expected);
  EXPECT_EQ(engine.Stats().entries, 4u);
  // Replacing a value re-charges it; dropping it gives the bytes back.
  engine.Apply("a", 5, ChangeKind::kValue, "longer value");
  expected += Charge("a", "longer value") - Charge("a", "x");
  EXPECT_EQ(engine.Stats().bytes, expected);
  engine.Invalidate("bb");
  expected -= Charge("bb", std::string(100, 'y'));
  EXPECT_EQ(engine.Stats().bytes, expected);
}

TEST(EngineTest, EntryBiggerThanShardIsNotCachedButItsVersionIsKnown) {
  Engine engine(SingleShard(1000));
  engine.Apply("k", 1, ChangeKind::kValue, "small");
  EXPECT_EQ(engine.Apply("k", 2, ChangeKind::kValue, std::string(2000, 'b')),
            ApplyResult::kApplied);
  ExpectMiss(engine, "k");
  EXPECT_EQ(engine.Stats().bytes, 0u);
  // The old value must not come back.
  EXPECT_EQ(engine.Apply("k", 1, ChangeKind::kValue, "small"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 2, ChangeKind::kValue, "small"), ApplyResult::kStale);
  EXPECT_EQ(Fill(engine, "big", 3, std::string(2000, 'b')), FillResult::kAccepted);
  ExpectMiss(engine, "big");
}

// --- versions ---------------------------------------------------------------

TEST(EngineTest, ApplyMovesForwardOnly) {
  Engine engine(EngineOptions{});
  EXPECT_EQ(engine.Apply("k", 5, ChangeKind::kValue, "v5"), ApplyResult::kApplied);
  EXPECT_EQ(engine.Apply("k", 4, ChangeKind::kValue, "v4"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 5, ChangeKind::kValue, "other"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 3, ChangeKind::kTombstone), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 5, ChangeKind::kInvalidate), ApplyResult::kStale);
  ExpectHit(engine, "k", 5, "v5");
  EXPECT_EQ(engine.Apply("k", 6, ChangeKind::kValue, "v6"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 6, "v6");
}

TEST(EngineTest, TombstoneIsANegativeEntryThatCountsAsAHit) {
  Engine engine(EngineOptions{});
  engine.Apply("k", 1, ChangeKind::kValue, "v1");
  EXPECT_EQ(engine.Apply("k", 2, ChangeKind::kTombstone), ApplyResult::kApplied);
  const Lookup got = engine.Get("k");
  EXPECT_EQ(got.kind, Kind::kNegative);
  EXPECT_EQ(got.version, 2u);
  EXPECT_TRUE(got.value.empty());
  EXPECT_EQ(engine.Stats().hits, 1u);
  EXPECT_EQ(engine.Stats().entries, 1u);
  EXPECT_EQ(engine.Apply("k", 1, ChangeKind::kValue, "v1"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 3, ChangeKind::kValue, "v3"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 3, "v3");
}

TEST(EngineTest, VersionedInvalidateDropsTheEntry) {
  Engine engine(EngineOptions{});
  engine.Apply("k", 1, ChangeKind::kValue, "v1");
  EXPECT_EQ(engine.Apply("k", 2, ChangeKind::kInvalidate), ApplyResult::kApplied);
  ExpectMiss(engine, "k");
  EXPECT_EQ(engine.Stats().entries, 0u);
  // Newer information than the dropped value: that value stays out.
  EXPECT_EQ(engine.Apply("k", 1, ChangeKind::kValue, "v1"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 3, ChangeKind::kValue, "v3"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 3, "v3");
}

TEST(EngineTest, UnversionedInvalidateDropsTheEntry) {
  Engine engine(EngineOptions{});
  EXPECT_FALSE(engine.Invalidate("k"));
  engine.Apply("k", 4, ChangeKind::kValue, "v4");
  EXPECT_TRUE(engine.Invalidate("k"));
  ExpectMiss(engine, "k");
  EXPECT_FALSE(engine.Invalidate("k"));
  EXPECT_EQ(engine.Stats().bytes, 0u);
}

TEST(EngineTest, ApplyNeverReinsertsAVersionAtOrBelowOneItDropped) {
  // C1: after Get returned v10, a late event for v9 must not be served even
  // if v10 was dropped meanwhile (invalidation, TTL or eviction).
  ManualClock clock;
  EngineOptions options = SingleShard(Charge("k0", "v10") * 4);
  options.clock = &clock;
  Engine engine(options);
  engine.Apply("a", 10, ChangeKind::kValue, "v10");
  engine.Invalidate("a");
  EXPECT_EQ(engine.Apply("a", 9, ChangeKind::kValue, "v9"), ApplyResult::kStale);
  engine.Apply("b", 10, ChangeKind::kValue, "v10", absl::Seconds(1));
  clock.Advance(absl::Seconds(2));
  ExpectMiss(engine, "b");
  EXPECT_EQ(engine.Apply("b", 9, ChangeKind::kValue, "v9"), ApplyResult::kStale);
  engine.Apply("k0", 10, ChangeKind::kValue, "v10");
  for (int i = 1; i < 20; ++i) {
    engine.Apply("k" + std::to_string(i), 100 + i, ChangeKind::kValue, "v10");
  }
  ExpectMiss(engine, "k0");  // evicted
  EXPECT_EQ(engine.Apply("k0", 9, ChangeKind::kValue, "v9"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k0", 11, ChangeKind::kValue, "v11"), ApplyResult::kApplied);
}

// --- TTL --------------------------------------------------------------------

TEST(EngineTest, DefaultTtlExpiresEntries) {
  ManualClock clock;
  EngineOptions options;
  options.clock = &clock;
  options.default_ttl = absl::Seconds(10);
  Engine engine(options);
  engine.Apply("k", 1, ChangeKind::kValue, "v1");
  engine.Apply("gone", 1, ChangeKind::kTombstone);
  clock.Advance(absl::Seconds(9));
  ExpectHit(engine, "k", 1, "v1");
  EXPECT_EQ(engine.Get("gone").kind, Kind::kNegative);
  clock.Advance(absl::Seconds(1));
  ExpectMiss(engine, "k");
  ExpectMiss(engine, "gone");
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.expirations, 2u);
  EXPECT_EQ(stats.entries, 0u);
  EXPECT_EQ(stats.bytes, 0u);
  EXPECT_EQ(stats.misses, 2u);
  EXPECT_EQ(stats.evictions, 0u);
}

TEST(EngineTest, PerCallTtlOverridesTheDefault) {
  ManualClock clock;
  EngineOptions options;
  options.clock = &clock;
  options.default_ttl = absl::Seconds(10);
  Engine engine(options);
  engine.Apply("short", 1, ChangeKind::kValue, "v", absl::Seconds(2));
  engine.Apply("long", 1, ChangeKind::kValue, "v", absl::Seconds(60));
  engine.Apply("forever", 1, ChangeKind::kValue, "v", absl::InfiniteDuration());
  Fill(engine, "filled", 1, "v");  // default ttl
  engine.CompleteFill(engine.BeginFill("filled-short"), 1, "v", absl::Seconds(1));
  clock.Advance(absl::Seconds(3));
  ExpectMiss(engine, "short");
  ExpectMiss(engine, "filled-short");
  ExpectHit(engine, "filled", 1, "v");
  clock.Advance(absl::Seconds(10));
  ExpectMiss(engine, "filled");
  ExpectHit(engine, "long", 1, "v");
  clock.Advance(absl::Hours(1000));
  ExpectMiss(engine, "long");
  ExpectHit(engine, "forever", 1, "v");
  EXPECT_EQ(engine.Stats().expirations, 4u);
}

TEST(EngineTest, NegativeTtlAppliesToAbsentEntriesOnly) {
  ManualClock clock;
  EngineOptions options;
  options.clock = &clock;
  options.default_ttl = absl::Seconds(60);
  options.negative_ttl = absl::Seconds(5);
  Engine engine(options);
  engine.Apply("k", 1, ChangeKind::kValue, "v");
  engine.Apply("deleted", 2, ChangeKind::kTombstone);
  engine.CompleteFill(engine.BeginFill("never"), 0, std::nullopt);  // a load found nothing
  clock.Advance(absl::Seconds(4));
  EXPECT_EQ(engine.Get("deleted").kind, Kind::kNegative);
  EXPECT_EQ(engine.Get("never").kind, Kind::kNegative);
  clock.Advance(absl::Seconds(2));
  ExpectMiss(engine, "deleted");
  ExpectMiss(engine, "never");
  ExpectHit(engine, "k", 1, "v");
  clock.Advance(absl::Seconds(60));
  ExpectMiss(engine, "k");

  // Zero: absent entries never expire, whatever the default.
  options.negative_ttl = absl::ZeroDuration();
  Engine keep(options);
  keep.Apply("deleted", 2, ChangeKind::kTombstone);
  clock.Advance(absl::Hours(1000));
  EXPECT_EQ(keep.Get("deleted").kind, Kind::kNegative);
}

TEST(EngineTest, NoTtlMeansNoExpiry) {
  ManualClock clock;
  EngineOptions options;
  options.clock = &clock;
  Engine engine(options);
  engine.Apply("k", 1, ChangeKind::kValue, "v");
  clock.Advance(absl::Hours(24 * 365));
  ExpectHit(engine, "k", 1, "v");
}

TEST(EngineTest, ExpiredEntryIsRefilledAtTheSameVersion) {
  ManualClock clock;
  EngineOptions options;
  options.clock = &clock;
  options.default_ttl = absl::Seconds(1);
  Engine engine(options);
  engine.Apply("k", 3, ChangeKind::kValue, "v3");
  clock.Advance(absl::Seconds(2));
  FillTicket ticket = engine.BeginFill("k");
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 3, "v3"), FillResult::kAccepted);
  ExpectHit(engine, "k", 3, "v3");
}

// --- fill tickets ------------------------------------------------------------

TEST(EngineTest, FillAcceptedWhenNothingHappened) {
  Engine engine(EngineOptions{});
  FillTicket ticket = engine.BeginFill("k");
  EXPECT_EQ(ticket.key(), "k");
  EXPECT_EQ(engine.Stats().open_fills, 1u);
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 7, "v7"), FillResult::kAccepted);
  ExpectHit(engine, "k", 7, "v7");
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  EXPECT_EQ(engine.Stats().fills_rejected, 0u);
}

TEST(EngineTest, FillOfANeverWrittenKeyIsANegativeEntryAtVersionZero) {
  Engine engine(EngineOptions{});
  EXPECT_EQ(Fill(engine, "k", 0, std::nullopt), FillResult::kAccepted);
  const Lookup got = engine.Get("k");
  EXPECT_EQ(got.kind, Kind::kNegative);
  EXPECT_EQ(got.version, 0u);
  EXPECT_EQ(engine.Apply("k", 1, ChangeKind::kValue, "v1"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 1, "v1");
}

TEST(EngineTest, FillSupersededByANewerApplyDuringTheLoad) {
  Engine engine(EngineOptions{});
  FillTicket ticket = engine.BeginFill("k");
  engine.Apply("k", 8, ChangeKind::kValue, "v8");
  engine.Invalidate("other");  // unrelated keys do not matter
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 7, "v7"), FillResult::kSuperseded);
  ExpectHit(engine, "k", 8, "v8");
  EXPECT_EQ(engine.Stats().fills_rejected, 1u);
}

TEST(EngineTest, FillSupersededByANewerApplyEvenIfThatEntryIsGone) {
  Engine engine(EngineOptions{});
  FillTicket ticket = engine.BeginFill("k");
  engine.Apply("k", 8, ChangeKind::kInvalidate);
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 7, "v7"), FillResult::kSuperseded);
  ExpectMiss(engine, "k");
}

TEST(EngineTest, FillAcceptedAfterAnOlderOrEqualApply) {
  Engine engine(EngineOptions{});
  FillTicket older = engine.BeginFill("a");
  engine.Apply("a", 6, ChangeKind::kValue, "v6");
  EXPECT_EQ(engine.CompleteFill(std::move(older), 7, "v7"), FillResult::kAccepted);
  ExpectHit(engine, "a", 7, "v7");

  FillTicket equal = engine.BeginFill("b");
  engine.Apply("b", 7, ChangeKind::kValue, "v7");
  EXPECT_EQ(engine.CompleteFill(std::move(equal), 7, "v7"), FillResult::kAccepted);
  ExpectHit(engine, "b", 7, "v7");

  // Invalidate mode: "something changed at 7" and the load read 7 itself.
  FillTicket after_invalidate = engine.BeginFill("c");
  engine.Apply("c", 7, ChangeKind::kInvalidate);
  EXPECT_EQ(engine.CompleteFill(std::move(after_invalidate), 7, "v7"), FillResult::kAccepted);
  ExpectHit(engine, "c", 7, "v7");
}

TEST(EngineTest, FillSupersededByUnversionedInvalidate) {
  Engine engine(EngineOptions{});
  FillTicket ticket = engine.BeginFill("k");
  EXPECT_FALSE(engine.Invalidate("k"));
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 7, "v7"), FillResult::kSuperseded);
  ExpectMiss(engine, "k");
}

TEST(EngineTest, FillSupersededByFlush) {
  Engine engine(EngineOptions{});
  engine.Apply("x", 1, ChangeKind::kValue, "v1");
  FillTicket ticket = engine.BeginFill("k");
  EXPECT_EQ(engine.Flush(), 1u);
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 7, "v7"), FillResult::kSuperseded);
  ExpectMiss(engine, "k");
  ExpectMiss(engine, "x");
  EXPECT_EQ(engine.floor(), 0u);
  EXPECT_EQ(engine.epoch(), 1u);
  // Unversioned: no floor, so nothing stops a later event or load.
  EXPECT_EQ(engine.Apply("y", 1, ChangeKind::kValue, "v1"), ApplyResult::kApplied);
  EXPECT_EQ(Fill(engine, "k", 7, "v7"), FillResult::kAccepted);
  ExpectHit(engine, "k", 7, "v7");
}

// A flush does not change the store: rows keep their old versions, all below
// a versioned flush's. A load that began after the flush read the store
// after it, so it is accepted whatever version it read.
TEST(EngineTest, FillBegunAfterAVersionedFlushIsAcceptedAtAnyVersion) {
  Engine engine(EngineOptions{});
  engine.Apply("k", 5, ChangeKind::kValue, "v5");
  EXPECT_EQ(engine.Flush(100), 1u);
  EXPECT_EQ(engine.floor(), 100u);
  ExpectMiss(engine, "k");
  EXPECT_EQ(Fill(engine, "k", 5, "v5"), FillResult::kAccepted);
  ExpectHit(engine, "k", 5, "v5");
  ExpectHit(engine, "k", 5, "v5");
  EXPECT_EQ(Fill(engine, "at-floor", 100, "v100"), FillResult::kAccepted);
  ExpectHit(engine, "at-floor", 100, "v100");
  EXPECT_EQ(Fill(engine, "never-written", 0, std::nullopt), FillResult::kAccepted);
  EXPECT_EQ(engine.Get("never-written").kind, Kind::kNegative);
  EXPECT_EQ(engine.Stats().fills_rejected, 0u);
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  // The other ticket rules still hold after the flush.
  FillTicket ticket = engine.BeginFill("k");
  engine.Apply("k", 101, ChangeKind::kValue, "v101");
  EXPECT_EQ(engine.CompleteFill(std::move(ticket), 5, "v5"), FillResult::kSuperseded);
  ExpectHit(engine, "k", 101, "v101");
}

TEST(EngineTest, FillBegunBeforeAFlushIsSupersededWhateverItsVersion) {
  Engine engine(EngineOptions{});
  FillTicket low = engine.BeginFill("a");
  FillTicket high = engine.BeginFill("b");
  FillTicket unversioned = engine.BeginFill("c");
  EXPECT_EQ(engine.Stats().open_fills, 3u);
  engine.Flush(100);
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  EXPECT_EQ(engine.CompleteFill(std::move(low), 5, "v5"), FillResult::kSuperseded);
  EXPECT_EQ(engine.CompleteFill(std::move(high), 150, "v150"), FillResult::kSuperseded);
  engine.Flush();
  EXPECT_EQ(engine.CompleteFill(std::move(unversioned), 5, "v5"), FillResult::kSuperseded);
  ExpectMiss(engine, "a");
  ExpectMiss(engine, "b");
  ExpectMiss(engine, "c");
  EXPECT_EQ(engine.Stats().fills_rejected, 3u);
}

// Flush bumps the epoch before it sweeps the shards one at a time: an entry
// or ticket from before the flush is dead even in a shard not swept yet.
TEST(EngineTest, FlushKillsEntriesAndTicketsBeforeItsSweepReachesThem) {
  for (std::optional<uint64_t> floor : {std::optional<uint64_t>(100), std::optional<uint64_t>()}) {
    SCOPED_TRACE(floor.has_value() ? "versioned" : "unversioned");
    Engine engine(SingleShard(1 << 20));
    engine.Apply("applied", 5, ChangeKind::kValue, "v5");
    EXPECT_EQ(Fill(engine, "filled", 6, "v6"), FillResult::kAccepted);
    engine.Apply("gone", 7, ChangeKind::kTombstone);
    engine.Apply("same", 50, ChangeKind::kValue, "v50");
    FillTicket before = engine.BeginFill("loading");
    const uint64_t epoch = engine.epoch();

    EngineTestPeer::BeginFlush(engine, floor);
    EXPECT_EQ(engine.epoch(), epoch + 1);
    EXPECT_EQ(engine.Stats().entries, 4u);  // not swept
    EXPECT_EQ(engine.Stats().open_fills, 1u);
    ExpectMiss(engine, "applied");
    EXPECT_EQ(engine.Peek("filled").kind, Kind::kMiss);
    ExpectMiss(engine, "gone");
    EXPECT_EQ(engine.Stats().entries, 1u);  // each dead one dropped on sight
    EXPECT_EQ(engine.CompleteFill(std::move(before), 8, "v8"), FillResult::kSuperseded);
    ExpectMiss(engine, "loading");
    // A load begun after the bump is accepted, even at the version of a dead
    // entry still held: that entry counts as swept.
    EXPECT_EQ(Fill(engine, "same", 50, "v50"), FillResult::kAccepted);
    EXPECT_EQ(Fill(engine, "after", 5, "v5"), FillResult::kAccepted);
    FillTicket open_after = engine.BeginFill("open-after");
    EXPECT_EQ(engine.Apply("applied-after", 101, ChangeKind::kValue, "v101"),
              ApplyResult::kApplied);

    // The sweep drops nothing made since the bump, nor its tickets.
    EXPECT_EQ(EngineTestPeer::SweepShards(engine), 0u);
    EXPECT_EQ(engine.Stats().open_fills, 1u);
    ExpectHit(engine, "same", 50, "v50");
    ExpectHit(engine, "after", 5, "v5");
    ExpectHit(engine, "applied-after", 101, "v101");
    EXPECT_EQ(engine.CompleteFill(std::move(open_after), 3, "v3"), FillResult::kAccepted);
    ExpectHit(engine, "open-after", 3, "v3");
    EXPECT_EQ(engine.Stats().entries, 4u);
    EXPECT_EQ(engine.Stats().bytes, Charge("same", "v50") + Charge("after", "v5") +
                                        Charge("applied-after", "v101") +
                                        Charge("open-after", "v3"));
    // Dropped versions are still remembered.
    EXPECT_EQ(engine.Apply("applied", 5, ChangeKind::kValue, "v5"), ApplyResult::kStale);
  }
}

TEST(EngineTest, ApplyAtOrBelowFloorIsStaleAndTheFloorNeverGoesDown) {
  Engine engine(EngineOptions{});
  engine.Apply("k", 3, ChangeKind::kValue, "v3");
  EXPECT_EQ(engine.Flush(10), 1u);
  EXPECT_EQ(engine.Apply("k", 9, ChangeKind::kValue, "v9"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 10, ChangeKind::kValue, "v10"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 10, ChangeKind::kTombstone), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 10, ChangeKind::kInvalidate), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("new", 1, ChangeKind::kValue, "v1"), ApplyResult::kStale);
  ExpectMiss(engine, "k");
  ExpectMiss(engine, "new");
  engine.Flush(5);
  EXPECT_EQ(engine.floor(), 10u);
  engine.Flush();
  EXPECT_EQ(engine.floor(), 10u);
  EXPECT_EQ(engine.Apply("k", 11, ChangeKind::kValue, "v11"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 11, "v11");
}

// Store versions are taken before commit, so a write can take v50, a flush
// v100, and the write commit after the flush was applied. A load begun after
// the flush may read the row from before v50; when v50's event arrives it is
// below the floor and inserts nothing, but it must not leave the older value
// cached (C5).
TEST(EngineTest, EventBelowTheFloorDropsAnOlderEntryFilledAfterTheFlush) {
  Engine engine(EngineOptions{});
  engine.Flush(100);
  EXPECT_EQ(Fill(engine, "k", 5, "v5"), FillResult::kAccepted);
  EXPECT_EQ(engine.Apply("k", 5, ChangeKind::kValue, "v5"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k", 4, ChangeKind::kInvalidate), ApplyResult::kStale);
  ExpectHit(engine, "k", 5, "v5");
  EXPECT_EQ(engine.Apply("k", 50, ChangeKind::kValue, "v50"), ApplyResult::kApplied);
  ExpectMiss(engine, "k");
  EXPECT_EQ(engine.Stats().bytes, 0u);
  // Its version is remembered like any dropped one; a new load reads v50.
  EXPECT_EQ(engine.Apply("k", 50, ChangeKind::kValue, "v50"), ApplyResult::kStale);
  EXPECT_EQ(Fill(engine, "k", 50, "v50"), FillResult::kAccepted);
  ExpectHit(engine, "k", 50, "v50");
  EXPECT_EQ(engine.Apply("k", 101, ChangeKind::kValue, "v101"), ApplyResult::kApplied);
  ExpectHit(engine, "k", 101, "v101");
}

TEST(EngineTest, FillDoesNotOverwriteANewerEntry) {
  Engine engine(EngineOptions{});
  engine.Apply("k", 9, ChangeKind::kValue, "v9");
  EXPECT_EQ(Fill(engine, "k", 7, "v7"), FillResult::kSuperseded);
  ExpectHit(engine, "k", 9, "v9");
  EXPECT_EQ(Fill(engine, "k", 9, "v9"), FillResult::kAccepted);
  ExpectHit(engine, "k", 9, "v9");
  EXPECT_EQ(Fill(engine, "k", 10, std::nullopt), FillResult::kAccepted);
  EXPECT_EQ(engine.Get("k").kind, Kind::kNegative);
}

TEST(EngineTest, TwoConcurrentFillsForOneKey) {
  Engine engine(EngineOptions{});
  // Both read the same version: both accepted, one entry.
  FillTicket a = engine.BeginFill("k");
  FillTicket b = engine.BeginFill("k");
  EXPECT_NE(a.id(), b.id());
  EXPECT_EQ(engine.Stats().open_fills, 2u);
  EXPECT_EQ(engine.CompleteFill(std::move(a), 5, "v5"), FillResult::kAccepted);
  EXPECT_EQ(engine.CompleteFill(std::move(b), 5, "v5"), FillResult::kAccepted);
  ExpectHit(engine, "k", 5, "v5");
  EXPECT_EQ(engine.Stats().entries, 1u);

  // Loads that read different versions: the newer wins whatever the order.
  FillTicket old_read = engine.BeginFill("j");
  FillTicket new_read = engine.BeginFill("j");
  EXPECT_EQ(engine.CompleteFill(std::move(new_read), 8, "v8"), FillResult::kAccepted);
  EXPECT_EQ(engine.CompleteFill(std::move(old_read), 6, "v6"), FillResult::kSuperseded);
  ExpectHit(engine, "j", 8, "v8");
  FillTicket first_old = engine.BeginFill("h");
  FillTicket then_new = engine.BeginFill("h");
  EXPECT_EQ(engine.CompleteFill(std::move(first_old), 6, "v6"), FillResult::kAccepted);
  EXPECT_EQ(engine.CompleteFill(std::move(then_new), 8, "v8"), FillResult::kAccepted);
  ExpectHit(engine, "h", 8, "v8");

  // Abandon releases a ticket; Invalidate cancels all of a key's tickets.
  FillTicket c = engine.BeginFill("i");
  FillTicket d = engine.BeginFill("i");
  engine.AbandonFill(std::move(c));
  EXPECT_EQ(engine.Stats().open_fills, 1u);
  engine.Invalidate("i");
  EXPECT_EQ(engine.Stats().open_fills, 0u);
  EXPECT_EQ(engine.CompleteFill(std::move(d), 5, "v5"), FillResult::kSuperseded);
}

TEST(EngineTest, AcceptedFillTellsOtherTicketsAboutItsVersion) {
  // Load A read v6, then v8 committed and load B read it and was accepted;
  // v8 is evicted before A completes. A must not bring v6 back.
  Engine engine(SingleShard(Charge("k", "v8") * 2));
  FillTicket a = engine.BeginFill("k");
  FillTicket b = engine.BeginFill("k");
  EXPECT_EQ(engine.CompleteFill(std::move(b), 8, "v8"), FillResult::kAccepted);
  for (int i = 0; i < 10; ++i) {
    engine.Apply("x" + std::to_string(i), 100, ChangeKind::kValue, "v1");
  }
  ExpectMiss(engine, "k");
  EXPECT_EQ(engine.CompleteFill(std::move(a), 6, "v6"), FillResult::kSuperseded);
  ExpectMiss(engine, "k");
}

TEST(EngineTest, UnknownOrDefaultTicketIsSuperseded) {
  Engine engine(EngineOptions{});
  EXPECT_EQ(engine.CompleteFill(FillTicket(), 1, "v"), FillResult::kSuperseded);
  engine.AbandonFill(FillTicket());
  EXPECT_EQ(engine.Stats().open_fills, 0u);
}

// One interleaving of operations on key "k", by letter: B=BeginFill,
// C=CompleteFill(5, "v5"), A=Apply(7, "v7"), I=Invalidate, F=Flush(100); with
// the fill's result and what Get finds afterwards.
struct InterleavingCase {
  const char* order;
  FillResult fill;
  Kind final_kind;
  uint64_t final_version;
};

// Checks that `cases` lists every ordering of `ops` with B before C, then
// runs each one against a fresh engine.
void CheckInterleavings(std::string ops, const std::vector<InterleavingCase>& cases) {
  std::sort(ops.begin(), ops.end());
  int valid = 0;
  do {
    if (ops.find('B') < ops.find('C')) {
      ++valid;
      EXPECT_TRUE(std::any_of(cases.begin(), cases.end(), [&](const InterleavingCase& c) {
        return ops == c.order;
      })) << ops;
    }
  } while (std::next_permutation(ops.begin(), ops.end()));
  EXPECT_EQ(valid, static_cast<int>(cases.size()));

  for (const InterleavingCase& c : cases) {
    SCOPED_TRACE(c.order);
    Engine engine(EngineOptions{});
    FillTicket ticket;
    std::optional<FillResult> fill;
    for (const char* op = c.order; *op != '\0'; ++op) {
      switch (*op) {
        case 'B':
          ticket = engine.BeginFill("k");
          break;
        case 'A':
          engine.Apply("k", 7, ChangeKind::kValue, "v7");
          break;
        case 'I':
          engine.Invalidate("k");
          break;
        case 'F':
          engine.Flush(100);
          break;
        case 'C':
          fill = engine.CompleteFill(std::move(ticket), 5, "v5");
          break;
      }
    }
    EXPECT_EQ(fill, c.fill);
    const Lookup got = engine.Get("k");
    EXPECT_EQ(got.kind, c.final_kind);
    if (c.final_kind == Kind::kHit) {
      EXPECT_EQ(got.version, c.final_version);
      EXPECT_EQ(got.value, "v" + std::to_string(c.final_version));
    }
    EXPECT_EQ(engine.Stats().open_fills, 0u);
  }
}

// Every ordering of {BeginFill, Apply(v7), Invalidate, CompleteFill(v5)} with
// BeginFill before CompleteFill, and the state it must leave.
TEST(EngineTest, FillInterleavings) {
  CheckInterleavings("ABCI", {
                                 {"BCAI", FillResult::kAccepted, Kind::kMiss, 0},
                                 {"BCIA", FillResult::kAccepted, Kind::kHit, 7},
                                 {"BACI", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"BAIC", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"BICA", FillResult::kSuperseded, Kind::kHit, 7},
                                 {"BIAC", FillResult::kSuperseded, Kind::kHit, 7},
                                 {"ABCI", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"ABIC", FillResult::kSuperseded, Kind::kMiss, 0},
                                 // The engine cannot tell: a real load that starts after Apply(7)
                                 // reads 7 or newer, never 5.
                                 {"AIBC", FillResult::kAccepted, Kind::kHit, 5},
                                 {"IABC", FillResult::kSuperseded, Kind::kHit, 7},
                                 {"IBCA", FillResult::kAccepted, Kind::kHit, 7},
                                 {"IBAC", FillResult::kSuperseded, Kind::kHit, 7},
                             });
}

// Every ordering of {BeginFill, Flush(100), Apply(7), CompleteFill(5)} with
// BeginFill before CompleteFill: versions below the floor, as after a
// versioned flush of a store whose rows keep their versions.
TEST(EngineTest, FlushFillInterleavings) {
  CheckInterleavings("ABCF", {
                                 {"BCAF", FillResult::kAccepted, Kind::kMiss, 0},
                                 {"BCFA", FillResult::kAccepted, Kind::kMiss, 0},
                                 {"BACF", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"BAFC", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"BFCA", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"BFAC", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"ABCF", FillResult::kSuperseded, Kind::kMiss, 0},
                                 {"ABFC", FillResult::kSuperseded, Kind::kMiss, 0},
                                 // As with AIBC above: a real load that starts after Apply(7) reads
                                 // 7 or newer, never 5.
                                 {"AFBC", FillResult::kAccepted, Kind::kHit, 5},
                                 {"FABC", FillResult::kAccepted, Kind::kHit, 5},
                                 // Begun after the flush: accepted below the floor...
                                 {"FBCA", FillResult::kAccepted, Kind::kMiss, 0},
                                 // ...unless the key changed meanwhile. Apply(7) is below the
                                 // floor, so it inserts nothing, but it still reaches the ticket
                                 // (FBAC) or drops the older entry (FBCA).
                                 {"FBAC", FillResult::kSuperseded, Kind::kMiss, 0},
                             });
}

// --- flush and stats -----------------------------------------------------------

TEST(EngineTest, FlushDropsEverythingAndCountsIt) {
  Engine engine(EngineOptions{});
  for (int i = 0; i < 100; ++i) {
    engine.Apply("k" + std::to_string(i), i + 1, ChangeKind::kValue, "v");
  }
  EXPECT_EQ(engine.Flush(), 100u);
  EXPECT_EQ(engine.Stats().entries, 0u);
  EXPECT_EQ(engine.Stats().bytes, 0u);
  EXPECT_EQ(engine.Flush(), 0u);
  // A versionless flush still remembers what it dropped.
  EXPECT_EQ(engine.Apply("k5", 6, ChangeKind::kValue, "v"), ApplyResult::kStale);
  EXPECT_EQ(engine.Apply("k5", 101, ChangeKind::kValue, "v"), ApplyResult::kApplied);
}

TEST(EngineTest, StatsCountHitsAndMisses) {
  Engine engine(EngineOptions{});
  engine.Apply("a", 1, ChangeKind::kValue, "v");
  engine.Apply("b", 1, ChangeKind::kTombstone);
  engine.Get("a");
  engine.Get("b");
  engine.Get("c");
  const EngineStats stats = engine.Stats();
  EXPECT_EQ(stats.hits, 2u);
  EXPECT_EQ(stats.misses, 1u);
  EXPECT_EQ(stats.entries, 2u);
}

// --- eviction policies ------------------------------------------------------------

TEST(EngineTest, LruEvictsTheLeastRecentlyUsed) {
  Engine engine(SingleShard(Charge("a", "1") * 3, EvictionPolicy::kLru));
  engine.Apply("a", 1, ChangeKind::kValue, "1");
  engine.Apply("b", 1, ChangeKind::kValue, "1");
  engine.Apply("c", 1, ChangeKind::kValue, "1");
  ExpectHit(engine, "a", 1, "1");
  engine.Apply("d", 1, ChangeKind::kValue, "1");
  ExpectMiss(engine, "b");
  ExpectHit(engine, "c", 1, "1");
  engine.Apply("e", 1, ChangeKind::kValue, "1");  // a is now the oldest
  ExpectMiss(engine, "a");
  ExpectHit(engine, "c", 1, "1");
  ExpectHit(engine, "d", 1, "1");
  ExpectHit(engine, "e", 1, "1");
  EXPECT_EQ(engine.Stats().evictions, 2u);
}

TEST(EngineTest, S3FifoKeepsAReadKeyThroughAScanThatLruLoses) {
  for (EvictionPolicy policy : {EvictionPolicy::kS3Fifo, EvictionPolicy::kLru}) {
    Engine engine(SingleShard(Charge("hot", "v") * 10, policy));
    engine.Apply("hot", 1, ChangeKind::kValue, "v");
    engine.Get("hot");
    for (int i = 0; i < 100; ++i) {
      engine.Apply("s" + std::to_string(i + 100), 1, ChangeKind::kValue, "v");
    }
    EXPECT_EQ(engine.Get("hot").kind, policy == EvictionPolicy::kS3Fifo ? Kind::kHit : Kind::kMiss);
    EXPECT_LE(engine.Stats().entries, 10u);
  }
}

// Zipf(0.9) over 100k keys with periodic scans of never-repeated keys; misses
// are filled. Deterministic: fixed seed, and the key hash is process-stable.
double HitRatio(EvictionPolicy policy) {
  constexpr int kKeys = 100000;
  constexpr int kRequests = 600000;
  constexpr int kScanEvery = 20000;
  constexpr int kScanLength = 10000;
  std::vector<double> cdf(kKeys);
  double sum = 0;
  for (int i = 0; i < kKeys; ++i) {
    sum += 1.0 / std::pow(i + 1, 0.9);
    cdf[i] = sum;
  }
  const std::string value(32, 'v');
  EngineOptions options;
  options.policy = policy;
  options.shards = 4;
  options.max_bytes = 7000 * Charge("key-00000", value);  // ~7% of the keys
  Engine engine(options);
  std::mt19937_64 rng(20231023);
  uint64_t hits = 0;
  uint64_t requests = 0;
  int scanned = 0;
  auto request = [&](const std::string& key) {
    ++requests;
    if (engine.Get(key).kind != Kind::kMiss) {
      ++hits;
      return;
    }
    engine.CompleteFill(engine.BeginFill(key), 1, value);
  };
  for (int r = 1; r <= kRequests; ++r) {
    const double u = static_cast<double>(rng() >> 11) * 0x1.0p-53 * sum;
    const int rank = static_cast<int>(std::lower_bound(cdf.begin(), cdf.end(), u) - cdf.begin());
    char key[16];
    std::snprintf(key, sizeof(key), "key-%05d", std::min(rank, kKeys - 1));
    request(key);
    if (r % kScanEvery == 0) {
      for (int s = 0; s < kScanLength; ++s) {
        request("scan-" + std::to_string(scanned++));
      }
    }
  }
  return static_cast<double>(hits) / static_cast<double>(requests);
}

TEST(EngineTest, S3FifoBeatsLruOnAScannedZipfTrace) {
  const double s3fifo = HitRatio(EvictionPolicy::kS3Fifo);
  const double lru = HitRatio(EvictionPolicy::kLru);
  std::printf("hit ratio: S3-FIFO %.4f, LRU %.4f\n", s3fifo, lru);
  RecordProperty("s3fifo_hit_ratio", std::to_string(s3fifo));
  RecordProperty("lru_hit_ratio", std::to_string(lru));
  EXPECT_GT(s3fifo, lru + 0.02);
}

}  // namespace
}  // namespace cachecar::cache
