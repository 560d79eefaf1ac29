// Auditor: entries older than the store past max_staleness (by the store
// row's time) are counted and dropped through the engine's versioned
// invalidation; entries in flight, current ones and ones the engine caught
// up with meanwhile are not; the worst lag ages out; the pacer keeps the
// rate on the injected clock; an untrusted replica skips rounds.
#include "service/auditor.h"

#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "store/memory/memory_store.h"

namespace cachecar::service {
namespace {

// A store whose versions the test sets, key by key, with their write time
// on the test's clock; everything else is the memory store.
class FakeVersionStore final : public store::Store {
 public:
  explicit FakeVersionStore(const cache::ManualClock& clock) : clock_(clock) {}
  void Set(const std::string& key, uint64_t version, bool found, absl::Time written) {
    rows_[key] = store::VersionRecord{found, version, written};
  }
  // Runs during ReadVersions, after the store "read" (a racing event).
  std::function<void()> during_read;
  int reads = 0;
  absl::Status fail = absl::OkStatus();

  absl::StatusOr<store::VersionSnapshot> ReadVersions(absl::string_view ns,
                                                      const std::vector<std::string>& keys,
                                                      const store::CallOptions&) override {
    ++reads;
    if (!fail.ok()) return fail;
    store::VersionSnapshot s;
    s.as_of = clock_.Now();
    for (const std::string& k : keys) {
      auto it = rows_.find(k);
      s.records.push_back(it == rows_.end() ? store::VersionRecord{} : it->second);
    }
    if (during_read) during_read();
    return s;
  }
  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& o) override {
    return inner_.Load(ns, key, o);
  }
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& o) override {
    return inner_.LoadBatch(ns, keys, o);
  }
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               store::Precondition p, const store::CallOptions& o) override {
    return inner_.Put(ns, key, value, p, o);
  }
  absl::StatusOr<store::DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                             std::optional<uint64_t> v,
                                             const store::CallOptions& o) override {
    return inner_.Delete(ns, key, v, o);
  }
  absl::string_view Name() const override { return "fake"; }

 private:
  const cache::ManualClock& clock_;
  store::MemoryStore inner_;
  std::map<std::string, store::VersionRecord> rows_;
};

class FixedTrust final : public Replication {
 public:
  void Announce(const Namespace&, const Change&, absl::string_view) override {}
  bool CacheTrusted() const override { return trusted; }
  bool trusted = true;
};

config::Config OneNamespace() {
  config::Config c;
  c.max_bytes = 16 << 20;
  c.shards = 4;
  c.namespaces = {{"default", absl::ZeroDuration(), 0}};
  return c;
}

class AuditorTest : public ::testing::Test {
 protected:
  AuditorTest() : namespaces_(OneNamespace(), &clock_), store_(clock_) {}
  cache::Engine& engine() { return *(*namespaces_.Find("default"))->engine; }
  AuditorOptions Options(size_t batch = 100) {
    AuditorOptions o;
    o.rate = 100;
    o.batch = batch;
    o.max_staleness = absl::Seconds(2);
    return o;
  }

  cache::ManualClock clock_;
  NamespaceSet namespaces_;
  FakeVersionStore store_;
  FixedTrust trust_;
};

TEST_F(AuditorTest, AnEntryBehindPastTheBoundIsCountedAndDropped) {
  engine().Apply("stale", 5, cache::ChangeKind::kValue, "old");
  store_.Set("stale", 9, true, clock_.Now() - absl::Seconds(10));
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_EQ(auditor.AuditOnce().value(), 1u);
  const AuditStats s = auditor.stats();
  EXPECT_EQ(s.checked, 1u);
  EXPECT_EQ(s.divergent, 1u);
  EXPECT_NEAR(s.worst_lag_seconds, 10.0, 1e-6);
  // Dropped, and the engine knows version 9 now: a late copy of the old
  // value (version 5..9) cannot come back; a newer one can.
  EXPECT_EQ(engine().Get("stale").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(engine().Apply("stale", 9, cache::ChangeKind::kValue, "late"),
            cache::ApplyResult::kStale);
  EXPECT_EQ(engine().Apply("stale", 10, cache::ChangeKind::kValue, "new"),
            cache::ApplyResult::kApplied);
}

TEST_F(AuditorTest, CurrentAndInFlightEntriesAreLeftAlone) {
  engine().Apply("current", 7, cache::ChangeKind::kValue, "v");
  store_.Set("current", 7, true, clock_.Now() - absl::Hours(1));
  engine().Apply("ahead", 8, cache::ChangeKind::kValue, "v");  // the store read is older
  store_.Set("ahead", 6, true, clock_.Now() - absl::Hours(1));
  engine().Apply("in_flight", 3, cache::ChangeKind::kValue, "v");
  store_.Set("in_flight", 4, true, clock_.Now() - absl::Milliseconds(500));
  engine().Apply("deleted", 2, cache::ChangeKind::kTombstone);
  store_.Set("deleted", 2, false, clock_.Now() - absl::Hours(1));
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_EQ(auditor.AuditOnce().value(), 4u);
  const AuditStats s = auditor.stats();
  EXPECT_EQ(s.checked, 4u);
  EXPECT_EQ(s.divergent, 0u);
  EXPECT_EQ(s.behind, 1u);
  EXPECT_NEAR(s.worst_lag_seconds, 0.5, 1e-6);
  for (const char* k : {"current", "ahead", "in_flight"}) {
    EXPECT_EQ(engine().Get(k).kind, cache::Lookup::Kind::kHit) << k;
  }
  EXPECT_EQ(engine().Get("deleted").kind, cache::Lookup::Kind::kNegative);
}

// The sample is taken before the store is read; an event that arrives in
// between brings the engine up to date, and that is not a divergence.
TEST_F(AuditorTest, AnEntryTheEngineCaughtUpWithDuringTheReadIsNotDivergent) {
  engine().Apply("k", 5, cache::ChangeKind::kValue, "old");
  store_.Set("k", 9, true, clock_.Now() - absl::Seconds(10));
  store_.during_read = [this] { engine().Apply("k", 9, cache::ChangeKind::kValue, "new"); };
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_EQ(auditor.AuditOnce().value(), 1u);
  EXPECT_EQ(auditor.stats().divergent, 0u);
  const cache::Lookup now = engine().Get("k");
  EXPECT_EQ(now.value, "new");
}

// A delete the replica missed: the cache still has the value, the store
// has the tombstone (found false, newer version).
TEST_F(AuditorTest, AMissedDeleteIsDivergentAndDropped) {
  engine().Apply("gone", 5, cache::ChangeKind::kValue, "v");
  store_.Set("gone", 6, false, clock_.Now() - absl::Seconds(3));
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_TRUE(auditor.AuditOnce().ok());
  EXPECT_EQ(auditor.stats().divergent, 1u);
  EXPECT_EQ(engine().Get("gone").kind, cache::Lookup::Kind::kMiss);
}

// The repair never inserts: a load that began before it (a fill ticket
// taken while the old value was cached... or not) cannot cache what it read
// before the newer version.
TEST_F(AuditorTest, TheRepairCancelsOlderFillsAndInsertsNothing) {
  engine().Apply("k", 5, cache::ChangeKind::kValue, "old");
  cache::FillTicket ticket = engine().BeginFill("k");
  store_.Set("k", 9, true, clock_.Now() - absl::Seconds(10));
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_TRUE(auditor.AuditOnce().ok());
  EXPECT_EQ(engine().CompleteFill(std::move(ticket), 7, std::string_view("read before")),
            cache::FillResult::kSuperseded);
  EXPECT_EQ(engine().Get("k").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(engine().Stats().entries, 0u);
}

TEST_F(AuditorTest, BatchesWalkTheWholeCacheAndStartOver) {
  for (int i = 0; i < 25; ++i) {
    engine().Apply(absl::StrCat("k", i), 1, cache::ChangeKind::kValue, "v");
    store_.Set(absl::StrCat("k", i), 1, true, clock_.Now() - absl::Hours(1));
  }
  Auditor auditor(Options(/*batch=*/10), namespaces_, store_, &trust_, &clock_);
  size_t total = 0;
  for (int round = 0; round < 3; ++round) total += auditor.AuditOnce().value();
  EXPECT_EQ(total, 25u);                        // 10 + 10 + 5: the walk's end
  EXPECT_EQ(auditor.AuditOnce().value(), 10u);  // from the start again
  EXPECT_EQ(auditor.stats().checked, 35u);
  EXPECT_EQ(auditor.stats().divergent, 0u);
}

// The store has no trace of the key (deleted, and the tombstone cleaned up
// since) while the cache still serves its value.
TEST_F(AuditorTest, AValueTheStoreHasNoTraceOfIsDivergent) {
  engine().Apply("vanished", 5, cache::ChangeKind::kValue, "v");
  engine().Apply("never", 3, cache::ChangeKind::kTombstone);  // absent both sides: fine
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_EQ(auditor.AuditOnce().value(), 2u);
  EXPECT_EQ(auditor.stats().divergent, 1u);
  EXPECT_EQ(engine().Get("vanished").kind, cache::Lookup::Kind::kMiss);
  EXPECT_EQ(engine().Get("never").kind, cache::Lookup::Kind::kNegative);
}

TEST_F(AuditorTest, StoreErrorsAreCountedAndNothingIsDropped) {
  engine().Apply("k", 5, cache::ChangeKind::kValue, "v");
  store_.fail = absl::UnavailableError("down");
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  EXPECT_EQ(auditor.AuditOnce().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(auditor.stats().errors, 1u);
  EXPECT_EQ(auditor.stats().checked, 0u);
  EXPECT_EQ(engine().Get("k").kind, cache::Lookup::Kind::kHit);
}

TEST_F(AuditorTest, AnUntrustedReplicaSkipsRounds) {
  engine().Apply("k", 5, cache::ChangeKind::kValue, "v");
  store_.Set("k", 9, true, clock_.Now() - absl::Seconds(10));
  trust_.trusted = false;
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  EXPECT_EQ(auditor.AuditOnce().value(), 0u);
  EXPECT_EQ(store_.reads, 0);
  EXPECT_EQ(auditor.stats().skipped, 1u);
  EXPECT_EQ(engine().Get("k").kind, cache::Lookup::Kind::kHit);
}

TEST_F(AuditorTest, TheWorstLagAgesOut) {
  engine().Apply("k", 5, cache::ChangeKind::kValue, "v");
  store_.Set("k", 6, true, clock_.Now() - absl::Seconds(1));  // in flight: 1 s
  Auditor auditor(Options(), namespaces_, store_, &trust_, &clock_);
  ASSERT_TRUE(auditor.AuditOnce().ok());
  EXPECT_NEAR(auditor.stats().worst_lag_seconds, 1.0, 1e-6);
  clock_.Advance(absl::Minutes(6));  // the next window: still shown
  EXPECT_NEAR(auditor.stats().worst_lag_seconds, 1.0 + 0, 1e-6);
  clock_.Advance(absl::Minutes(5));  // two windows on
  EXPECT_EQ(auditor.stats().worst_lag_seconds, 0.0);
}

TEST(PacerTest, KeepsTheRateOnTheClockWithoutBursts) {
  cache::ManualClock clock;
  Pacer pacer(10, clock);                        // 10 keys/s
  EXPECT_EQ(pacer.After(10), absl::Seconds(1));  // a batch of 10: 1 s
  clock.Advance(absl::Milliseconds(1300));       // the wait, then a 300 ms round
  EXPECT_EQ(pacer.After(10), absl::Milliseconds(700));
  clock.Advance(absl::Milliseconds(700));
  EXPECT_EQ(pacer.After(5), absl::Milliseconds(500));
  clock.Advance(absl::Seconds(30));                  // stalled (the store was away)
  EXPECT_EQ(pacer.After(10), absl::ZeroDuration());  // go on at once...
  EXPECT_EQ(pacer.After(10), absl::Seconds(1));      // ...but no burst to catch up
}

}  // namespace
}  // namespace cachecar::service
