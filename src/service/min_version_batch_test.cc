// BatchGet with min_versions (service/min_version_batch.h) through
// CacheService: keys new enough answer from the cache; keys behind wait
// together for their events, then the ones still behind are read in ONE
// store batch read; below min_version is OUT_OF_RANGE; CACHE_ONLY never
// reads the store; STRONG reads every key in one batch; the counters say
// what happened.
#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "gtest/gtest.h"
#include "service/cache_service.h"
#include "service/version_waits.h"
#include "store/testing/forwarding_store.h"

namespace cachecar::service {
namespace {

using Source = ReadResult::Source;

class CountingStore final : public store::testing::ForwardingStore {
 public:
  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& o) override {
    loads.fetch_add(1);
    return ForwardingStore::Load(ns, key, o);
  }
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& o) override {
    batch_loads.fetch_add(1);
    batch_keys.fetch_add(static_cast<int>(keys.size()));
    return ForwardingStore::LoadBatch(ns, keys, o);
  }
  std::atomic<int> loads{0}, batch_loads{0}, batch_keys{0};
};

// A replica that always vouches for its cache.
class Trusted final : public Replication {
 public:
  void Announce(const Namespace&, const Change&, absl::string_view) override {}
  bool CacheTrusted() const override { return true; }
};

config::Config OneNamespace() {
  config::Config c;
  c.max_bytes = 8 << 20;
  c.namespaces = {{"default", absl::ZeroDuration(), 0}};
  return c;
}

class MinVersionBatchTest : public ::testing::Test {
 protected:
  MinVersionBatchTest() : config_(OneNamespace()), namespaces_(config_), pool_(2, 1000) {
    // Store versions start above the cached copies' (version 1).
    for (int i = 0; i < 10; ++i) StoreWrite("unrelated", "x");
  }

  CacheService& Service(bool with_waits, absl::Duration wait = absl::Seconds(5)) {
    Limits limits = Limits::FromConfig(config_);
    limits.min_version_wait = wait;
    ServiceHooks hooks;
    hooks.replication = &trusted_;
    if (with_waits) hooks.waits = &waits_;
    service_ = std::make_unique<CacheService>(limits, namespaces_, store_, pool_, hooks);
    return *service_;
  }
  cache::Engine& engine() { return *(*namespaces_.Find("default"))->engine; }
  uint64_t StoreWrite(const std::string& key, const std::string& value) {
    return *store_.memory().Put("default", key, value, store::Precondition::None(), {});
  }
  absl::StatusOr<std::vector<ReadResult>> BatchGet(std::vector<std::string> keys,
                                                   std::vector<uint64_t> mins,
                                                   Consistency c = Consistency::kCached) {
    Notification done;
    absl::StatusOr<std::vector<ReadResult>> out = absl::UnknownError("not delivered");
    service_->BatchGet(
        "", std::move(keys), c, absl::Now() + absl::Seconds(30),
        [&](absl::StatusOr<std::vector<ReadResult>> r) {
          out = std::move(r);
          done.Notify();
        },
        std::move(mins));
    done.WaitForNotification();
    return out;
  }

  config::Config config_;
  CountingStore store_;
  NamespaceSet namespaces_;
  WorkerPool pool_;
  Trusted trusted_;
  VersionWaits waits_;
  std::unique_ptr<CacheService> service_;
};

TEST_F(MinVersionBatchTest, KeysNewEnoughAnswerFromTheCache) {
  CacheService& service = Service(true);
  engine().Apply("a", 5, cache::ChangeKind::kValue, "va");
  engine().Apply("b", 7, cache::ChangeKind::kTombstone);
  auto r = BatchGet({"a", "b"}, {5, 6});
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].value, "va");
  EXPECT_EQ((*r)[0].source, Source::kCache);
  EXPECT_FALSE((*r)[1].found);
  EXPECT_EQ((*r)[1].version, 7u);
  EXPECT_EQ(store_.loads + store_.batch_loads, 0);
  EXPECT_EQ(service.min_version_stats().from_cache, 2u);
}

// No sync topic (nothing to wait for): every key behind, and every miss,
// in one store read.
TEST_F(MinVersionBatchTest, KeysBehindAreReadInOneBatch) {
  CacheService& service = Service(false);
  std::vector<std::string> keys;
  std::vector<uint64_t> mins;
  for (int i = 0; i < 5; ++i) {
    keys.push_back("k" + std::to_string(i));
    engine().Apply(keys.back(), 1, cache::ChangeKind::kValue, "old");
    mins.push_back(StoreWrite(keys.back(), "new"));
  }
  keys.push_back("miss");  // no min_version, not cached
  mins.push_back(0);
  StoreWrite("miss", "m");
  auto r = BatchGet(keys, mins);
  ASSERT_TRUE(r.ok()) << r.status();
  for (int i = 0; i < 5; ++i) {
    EXPECT_EQ((*r)[i].version, mins[i]);
    EXPECT_EQ((*r)[i].value, "new");
    EXPECT_EQ((*r)[i].source, Source::kStore);
  }
  EXPECT_EQ((*r)[5].value, "m");
  EXPECT_EQ(store_.loads, 0);
  EXPECT_EQ(store_.batch_loads, 1);
  EXPECT_EQ(store_.batch_keys, 6);
  EXPECT_EQ(service.min_version_stats().read_through, 5u);
  // The store read went through fill tickets: now cached.
  EXPECT_EQ(engine().Get("k0").version, mins[0]);
}

// The waits run together: an event for one key answers it from the cache;
// the other's wait times out and only it is read from the store.
TEST_F(MinVersionBatchTest, AnEventEndsItsKeysWaitTheRestIsReadAfter) {
  CacheService& service = Service(true, absl::Milliseconds(300));
  engine().Apply("x", 1, cache::ChangeKind::kValue, "old");
  engine().Apply("y", 1, cache::ChangeKind::kValue, "old");
  const uint64_t vx = StoreWrite("x", "x2");
  const uint64_t vy = StoreWrite("y", "y2");
  std::atomic<bool> event_sent{false};
  std::thread consumer([&] {
    // Once both waits are open, the event for x arrives (as the sync's
    // consumer would apply it), and x's waiter is told.
    const absl::Time give_up = absl::Now() + absl::Seconds(10);
    while (waits_.waiting() < 2 && absl::Now() < give_up) std::this_thread::yield();
    engine().Apply("x", vx, cache::ChangeKind::kValue, "x2");
    waits_.Notify("default", "x", vx);
    event_sent = true;
  });
  auto r = BatchGet({"x", "y"}, {vx, vy});
  consumer.join();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(event_sent);
  EXPECT_EQ((*r)[0].source, Source::kCache);
  EXPECT_EQ((*r)[0].version, vx);
  EXPECT_EQ((*r)[1].source, Source::kStore);
  EXPECT_EQ((*r)[1].version, vy);
  EXPECT_EQ(store_.loads + store_.batch_loads, 1);  // y alone
  EXPECT_EQ(service.min_version_stats().from_cache, 1u);
  EXPECT_EQ(service.min_version_stats().read_through, 1u);
}

TEST_F(MinVersionBatchTest, BelowMinVersionInTheStoreIsOutOfRange) {
  CacheService& service = Service(false);
  const uint64_t v = StoreWrite("k", "v");
  auto r = BatchGet({"k"}, {v + 10});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kOutOfRange) << r.status();
  EXPECT_EQ(service.min_version_stats().out_of_range, 1u);
}

TEST_F(MinVersionBatchTest, CacheOnlyNeverReadsTheStore) {
  Service(false);
  engine().Apply("k", 1, cache::ChangeKind::kValue, "old");
  StoreWrite("k", "new");
  auto r = BatchGet({"k", "other"}, {2, 0}, Consistency::kCacheOnly);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ((*r)[0].source, Source::kNone);
  EXPECT_EQ((*r)[1].source, Source::kNone);
  EXPECT_EQ(store_.loads + store_.batch_loads, 0);
}

TEST_F(MinVersionBatchTest, StrongReadsEveryKeyInOneBatch) {
  CacheService& service = Service(true);
  const uint64_t a = StoreWrite("a", "va");
  const uint64_t b = StoreWrite("b", "vb");
  engine().Apply("a", a, cache::ChangeKind::kValue, "va");  // new enough, still read
  auto r = BatchGet({"a", "b", "a"}, {a, b, 0}, Consistency::kStrong);
  ASSERT_TRUE(r.ok()) << r.status();
  for (const ReadResult& x : *r) EXPECT_EQ(x.source, Source::kStore);
  EXPECT_EQ(store_.batch_loads, 1);
  EXPECT_EQ(store_.batch_keys, 2);  // distinct keys once
  EXPECT_EQ(service.min_version_stats().read_through, 2u);
}

}  // namespace
}  // namespace cachecar::service
