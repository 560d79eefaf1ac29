// CacheService: read path (hits, misses, singleflight, fill tickets, batches),
// write path (store first, then cache; unknown outcomes invalidate) and input
// validation. The store is the real MemoryStore behind a hook-able wrapper, so
// tests can hold a load at a known point instead of sleeping.
#include "service/cache_service.h"

#include <atomic>
#include <thread>

#include "common/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/memory/memory_store.h"
#include "store/outcome.h"
#include "store/testing/forwarding_store.h"

namespace cachecar::service {
namespace {

using ::testing::HasSubstr;
using Source = ReadResult::Source;

// MemoryStore plus counters and hooks for tests.
class HookedStore final : public store::testing::ForwardingStore {
 public:
  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& o) override {
    loads.fetch_add(1);
    if (before_load) before_load();
    auto record = ForwardingStore::Load(ns, key, o);
    if (after_load) after_load();
    return record;
  }
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& o) override {
    batch_loads.fetch_add(1);
    if (before_load) before_load();
    return ForwardingStore::LoadBatch(ns, keys, o);
  }
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               store::Precondition p, const store::CallOptions& o) override {
    if (!put_error.ok()) return put_error;
    return ForwardingStore::Put(ns, key, value, p, o);
  }

  std::atomic<int> loads{0};
  std::atomic<int> batch_loads{0};
  std::function<void()> before_load;
  std::function<void()> after_load;  // runs after the read, before it returns
  absl::Status put_error;
};

config::Config TestConfig() {
  config::Config c;
  c.max_bytes = 8 << 20;
  c.namespaces = {{"default", absl::ZeroDuration(), 0}, {"users", absl::ZeroDuration(), 0}};
  return c;
}

// Blocks until a callback delivers a value.
template <typename T>
struct Waiter {
  Notification done;
  absl::StatusOr<T> result = absl::UnknownError("not delivered");
  std::function<void(absl::StatusOr<T>)> Callback() {
    return [this](absl::StatusOr<T> r) {
      result = std::move(r);
      done.Notify();
    };
  }
  absl::StatusOr<T>& Wait() {
    done.WaitForNotification();
    return result;
  }
};

class CacheServiceTest : public ::testing::Test {
 protected:
  CacheServiceTest()
      : config_(TestConfig()),
        namespaces_(config_),
        pool_(4, 10000),
        service_(Limits::FromConfig(config_), namespaces_, store_, pool_) {}

  absl::StatusOr<ReadResult> Get(const std::string& key, std::string ns = "",
                                 Consistency c = Consistency::kCached) {
    Waiter<ReadResult> w;
    service_.Get(ns, key, c, absl::InfiniteFuture(), w.Callback());
    return w.Wait();
  }
  absl::StatusOr<uint64_t> Put(const std::string& key, const std::string& value,
                               WriteOptions opts = {}, std::string ns = "") {
    Waiter<uint64_t> w;
    service_.Put(ns, key, value, opts, absl::InfiniteFuture(), w.Callback());
    return w.Wait();
  }
  absl::StatusOr<uint64_t> Invalidate(std::vector<std::string> keys, bool all) {
    Waiter<uint64_t> w;
    service_.Invalidate("", std::move(keys), all, w.Callback());
    return w.Wait();
  }
  uint64_t StoreWrite(const std::string& key, const std::string& value) {
    return *store_.memory().Put("default", key, value, store::Precondition::None(), {});
  }

  config::Config config_;
  HookedStore store_;
  NamespaceSet namespaces_;
  WorkerPool pool_;
  CacheService service_;
};

TEST_F(CacheServiceTest, MissReadsStoreThenHitsCache) {
  const uint64_t v = StoreWrite("k", "hello");
  auto first = Get("k");
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->found);
  EXPECT_EQ(first->value, "hello");
  EXPECT_EQ(first->version, v);
  EXPECT_EQ(first->source, Source::kStore);
  auto second = Get("k");
  ASSERT_TRUE(second.ok());
  EXPECT_EQ(second->source, Source::kCache);
  EXPECT_EQ(second->value, "hello");
  EXPECT_EQ(store_.loads.load(), 1);
}

TEST_F(CacheServiceTest, AbsentKeyIsCachedAsNegative) {
  auto first = Get("ghost");
  ASSERT_TRUE(first.ok());
  EXPECT_FALSE(first->found);
  auto second = Get("ghost");
  ASSERT_TRUE(second.ok());
  EXPECT_FALSE(second->found);
  EXPECT_EQ(second->source, Source::kCache);
  EXPECT_EQ(store_.loads.load(), 1);
}

TEST_F(CacheServiceTest, PutIsReadBackFromCacheAtItsVersion) {
  auto v = Put("k", "v1");
  ASSERT_TRUE(v.ok());
  auto r = Get("k");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, *v);
  EXPECT_EQ(r->value, "v1");
  EXPECT_EQ(r->source, Source::kCache);
  EXPECT_EQ(store_.loads.load(), 0);
}

TEST_F(CacheServiceTest, StrongReadGoesToStoreEvenOnHit) {
  ASSERT_TRUE(Put("k", "v1").ok());
  // A write the cache did not see (another writer, straight to the store).
  const uint64_t v2 = StoreWrite("k", "v2");
  EXPECT_EQ(Get("k")->value, "v1");
  auto strong = Get("k", "", Consistency::kStrong);
  ASSERT_TRUE(strong.ok());
  EXPECT_EQ(strong->value, "v2");
  EXPECT_EQ(strong->version, v2);
  EXPECT_EQ(strong->source, Source::kStore);
  EXPECT_EQ(Get("k")->value, "v2");  // and refreshed the cache
}

TEST_F(CacheServiceTest, ThousandConcurrentMissesCauseOneStoreLoad) {
  Notification release;
  store_.before_load = [&] { release.WaitForNotification(); };
  constexpr int kCallers = 1000;
  std::atomic<int> answered{0}, not_found{0};
  Notification all_answered;
  auto cb = [&](absl::StatusOr<ReadResult> r) {
    if (r.ok() && !r->found) not_found.fetch_add(1);
    if (answered.fetch_add(1) + 1 == kCallers) all_answered.Notify();
  };
  // Callers on several threads; each Get returns at once (joins the flight).
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < kCallers / 4; ++i) {
        service_.Get("", "cold", Consistency::kCached, absl::InfiniteFuture(), cb);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(answered.load(), 0);  // all of them wait on the one held load
  release.Notify();
  all_answered.WaitForNotification();
  EXPECT_EQ(store_.loads.load(), 1);
  EXPECT_EQ(not_found.load(), kCallers);
  auto stats = service_.Stats("default");
  ASSERT_TRUE(stats.ok());
  EXPECT_EQ((*stats)[0].loads, 1u);
}

TEST_F(CacheServiceTest, LoadOvertakenByNewerWriteDoesNotCacheOldValue) {
  const uint64_t v1 = StoreWrite("k", "old");
  Notification loaded, release;
  Waiter<ReadResult> reader;
  std::atomic<int> loads{0};
  // The first load reads v1, then parks: by the time it answers, it is old.
  store_.after_load = [&] {
    if (loads.fetch_add(1) == 0) {
      loaded.Notify();
      release.WaitForNotification();
    }
  };
  CacheService& service = service_;
  service.Get("", "k", Consistency::kCached, absl::InfiniteFuture(), reader.Callback());
  loaded.WaitForNotification();  // the load has read v1 and is parked
  Waiter<uint64_t> writer;
  service.Put("", "k", "new", {}, absl::InfiniteFuture(), writer.Callback());
  ASSERT_TRUE(writer.Wait().ok());
  const uint64_t v2 = *writer.result;
  ASSERT_GT(v2, v1);
  release.Notify();
  auto r = reader.Wait();
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, v2) << "the overtaken load must answer with the newer value";
  EXPECT_EQ(r->value, "new");
  Waiter<ReadResult> again;
  service.Get("", "k", Consistency::kCached, absl::InfiniteFuture(), again.Callback());
  EXPECT_EQ(again.Wait()->value, "new");
  EXPECT_EQ(again.result->source, Source::kCache);
  EXPECT_GE((*service.Stats("default"))[0].engine.fills_rejected, 1u);
}

// A writer that commits after each read and reaches this replica only as an
// invalidation (the engine holds nothing newer to answer with).
void OvertakeLoads(HookedStore& store, NamespaceSet& namespaces, int times) {
  auto count = std::make_shared<int>(0);
  store.after_load = [&store, &namespaces, times, count] {
    if ((*count)++ >= times) return;
    auto v = store.memory().Put("default", "hot", "v" + std::to_string(*count),
                                store::Precondition::None(), {});
    (*namespaces.Find("default"))->engine->Apply("hot", *v, cache::ChangeKind::kInvalidate);
  };
}

TEST_F(CacheServiceTest, LoadOvertakenTwiceAnswersWithTheNewestValue) {
  StoreWrite("hot", "v0");
  OvertakeLoads(store_, namespaces_, 2);
  auto r = Get("hot");
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->value, "v2");
  EXPECT_EQ(r->version, store_.memory().Load("default", "hot", {})->version);
  EXPECT_EQ(store_.loads.load(), 3);
}

TEST_F(CacheServiceTest, LoadOvertakenEveryTimeIsUnavailableNeverStale) {
  StoreWrite("hot", "v0");
  OvertakeLoads(store_, namespaces_, 1000);
  auto r = Get("hot");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(r.status().message(), HasSubstr("changed"));
  auto strong = Get("hot", "", Consistency::kStrong);
  EXPECT_EQ(strong.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(CacheServiceTest, BatchGetAnswerLargerThanTheMessageLimitIsResourceExhausted) {
  ASSERT_TRUE(Put("big", std::string(512 << 10, 'x')).ok());  // cached
  StoreWrite("big2", std::string(512 << 10, 'y'));            // loaded
  for (Consistency c : {Consistency::kCached, Consistency::kStrong}) {
    Waiter<std::vector<ReadResult>> w;
    // 10 x 512 KiB of the same key: over the 4 MiB default.
    service_.BatchGet("", std::vector<std::string>(10, "big"), c, absl::InfiniteFuture(),
                      w.Callback());
    EXPECT_EQ(w.Wait().status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(w.result.status().message(), HasSubstr("fewer keys"));
  }
  Waiter<std::vector<ReadResult>> misses;
  service_.BatchGet("", std::vector<std::string>(10, "big2"), Consistency::kCached,
                    absl::InfiniteFuture(), misses.Callback());
  EXPECT_EQ(misses.Wait().status().code(), absl::StatusCode::kResourceExhausted);
  Waiter<std::vector<ReadResult>> fits;
  service_.BatchGet("", {"big", "big2"}, Consistency::kCached, absl::InfiniteFuture(),
                    fits.Callback());
  ASSERT_TRUE(fits.Wait().ok()) << fits.result.status();
  EXPECT_EQ((*fits.result)[1].value.size(), 512u << 10);
}

// Issue #17: values alone were counted, so an answer of exactly
// max_message_bytes of values passed, and its keys and framing pushed the
// message past what default clients accept.
TEST_F(CacheServiceTest, BatchGetCountsKeysAndFramingTowardsTheLimit) {
  std::vector<std::string> keys;
  for (int i = 0; i < 8; ++i) {
    keys.push_back("k" + std::to_string(i));
    ASSERT_TRUE(Put(keys.back(), std::string(512 << 10, 'v')).ok());  // 8 x 512 KiB = 4 MiB
  }
  for (Consistency c : {Consistency::kCached, Consistency::kStrong}) {
    Waiter<std::vector<ReadResult>> w;
    service_.BatchGet("", keys, c, absl::InfiniteFuture(), w.Callback());
    EXPECT_EQ(w.Wait().status().code(), absl::StatusCode::kResourceExhausted);
    EXPECT_THAT(w.result.status().message(), HasSubstr("ask for fewer keys"));
  }
  keys.pop_back();  // 7 x 512 KiB and their framing fit
  Waiter<std::vector<ReadResult>> fits;
  service_.BatchGet("", keys, Consistency::kCached, absl::InfiniteFuture(), fits.Callback());
  EXPECT_TRUE(fits.Wait().ok()) << fits.result.status();
}

TEST_F(CacheServiceTest, InvalidateOfTooManyKeysIsInvalidArgument) {
  auto r = Invalidate(std::vector<std::string>(1001, "k"), false);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("max_batch_keys"));
}

TEST_F(CacheServiceTest, BatchGetLoadsAllMissesInOneStoreCall) {
  StoreWrite("a", "A");
  StoreWrite("b", "B");
  ASSERT_TRUE(Put("c", "C").ok());  // a hit
  Waiter<std::vector<ReadResult>> w;
  service_.BatchGet("", {"a", "b", "c", "missing", "a"}, Consistency::kCached,
                    absl::InfiniteFuture(), w.Callback());
  auto r = w.Wait();
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->size(), 5u);
  EXPECT_EQ((*r)[0].value, "A");
  EXPECT_EQ((*r)[1].value, "B");
  EXPECT_EQ((*r)[2].value, "C");
  EXPECT_EQ((*r)[2].source, Source::kCache);
  EXPECT_FALSE((*r)[3].found);
  EXPECT_EQ((*r)[4].value, "A");
  EXPECT_EQ(store_.batch_loads.load(), 1);
  EXPECT_EQ(store_.loads.load(), 0);
}

TEST_F(CacheServiceTest, FailedPutLeavesCacheAlone) {
  auto v1 = Put("k", "v1");
  ASSERT_TRUE(v1.ok());
  auto bad = Put("k", "v2", WriteOptions{store::Precondition::IfVersion(*v1 + 100), {}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(bad.status().message(), HasSubstr("expected version"));
  EXPECT_EQ(Get("k")->value, "v1");
  EXPECT_EQ(Get("k")->source, Source::kCache);
}

TEST_F(CacheServiceTest, UnknownOutcomeInvalidatesTheKey) {
  ASSERT_TRUE(Put("k", "v1").ok());
  store_.put_error = store::OutcomeUnknownError("connection lost after COMMIT");
  auto r = Put("k", "v2");
  EXPECT_EQ(r.status().code(), absl::StatusCode::kUnavailable);
  store_.put_error = absl::OkStatus();
  auto after = Get("k");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->source, Source::kStore) << "the key must have been dropped";
}

TEST_F(CacheServiceTest, DeleteCachesAbsenceAtTheDeleteVersion) {
  auto v1 = Put("k", "v1");
  ASSERT_TRUE(v1.ok());
  Waiter<DeleteOutcome> d;
  service_.Delete("", "k", std::nullopt, absl::InfiniteFuture(), d.Callback());
  ASSERT_TRUE(d.Wait().ok());
  EXPECT_TRUE(d.result->found);
  EXPECT_GT(d.result->version, *v1);
  auto r = Get("k");
  EXPECT_FALSE(r->found);
  EXPECT_EQ(r->version, d.result->version);
  EXPECT_EQ(r->source, Source::kCache);
}

TEST_F(CacheServiceTest, InvalidateDropsKeysAndAll) {
  ASSERT_TRUE(Put("a", "1").ok());
  ASSERT_TRUE(Put("b", "2").ok());
  ASSERT_TRUE(Put("c", "3").ok());
  EXPECT_EQ(*Invalidate({"a", "zzz"}, false), 1u);
  EXPECT_EQ(Get("a")->source, Source::kStore);
  EXPECT_EQ(*Invalidate({}, true), 3u);  // b, c and the reloaded a
  EXPECT_EQ(Invalidate({}, false).status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(CacheServiceTest, BadInputGetsInvalidArgumentSayingWhatToFix) {
  auto empty = Get("");
  EXPECT_EQ(empty.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(empty.status().message(), HasSubstr("key is empty"));
  auto long_key = Get(std::string(1025, 'k'));
  EXPECT_EQ(long_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(long_key.status().message(), HasSubstr("max_key_bytes"));
  auto big = Put("k", std::string((1 << 20) + 1, 'v'));
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("max_value_bytes"));
  auto ns = Get("k", "nope");
  EXPECT_EQ(ns.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(ns.status().message(), HasSubstr("unknown namespace 'nope'"));
  EXPECT_THAT(ns.status().message(), HasSubstr("default, users"));
  Waiter<std::vector<ReadResult>> w;
  service_.BatchGet("", std::vector<std::string>(1001, "k"), Consistency::kCached,
                    absl::InfiniteFuture(), w.Callback());
  EXPECT_THAT(w.Wait().status().message(), HasSubstr("max_batch_keys"));
}

TEST_F(CacheServiceTest, NamespacesAreSeparate) {
  ASSERT_TRUE(Put("k", "in-users", {}, "users").ok());
  EXPECT_FALSE(Get("k")->found);
  EXPECT_EQ(Get("k", "users")->value, "in-users");
}

TEST_F(CacheServiceTest, PassedDeadlineIsDeadlineExceeded) {
  Waiter<ReadResult> w;
  service_.Get("", "k", Consistency::kCached, absl::Now() - absl::Seconds(1), w.Callback());
  EXPECT_EQ(w.Wait().status().code(), absl::StatusCode::kDeadlineExceeded);
}

TEST_F(CacheServiceTest, FullWorkerQueueIsUnavailable) {
  // Declared before the pool, so they outlive its thread (the pool's
  // destructor joins it, and the task still reads `release` after Notify).
  Notification started, release;
  WorkerPool tiny(1, 1);
  CacheService service(Limits::FromConfig(config_), namespaces_, store_, tiny);
  ASSERT_TRUE(tiny.TrySubmit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();
  ASSERT_TRUE(tiny.TrySubmit([] {}));  // the queue's one slot
  Waiter<uint64_t> w;
  service.Put("", "k", "v", {}, absl::InfiniteFuture(), w.Callback());
  EXPECT_EQ(w.Wait().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(w.result.status().message(), HasSubstr("worker_queue"));
  release.Notify();
}

}  // namespace
}  // namespace cachecar::service
