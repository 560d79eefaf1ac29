// Replicated namespaces (replicated: true): the loader reads the whole
// table through fill tickets and marks the namespace complete; update mode
// adds keys this replica never read; an event without a value makes its
// key unknown until reloaded; a flush calls for a new load; a table that
// does not fit is never complete; a key deleted before the load is cached
// at its delete version; and a complete namespace answers an absent key
// from the cache, with no store read.
#include "service/replicated.h"

#include <unistd.h>

#include <atomic>
#include <optional>
#include <string>

#include "gtest/gtest.h"
#include "service/cache_service.h"
#include "service/namespaces.h"
#include "service/sync_replication.h"
#include "service/worker_pool.h"
#include "store/memory/memory_store.h"
#include "sync/outbox_relay.h"

namespace cachecar::service {
namespace {

class FakeSync final : public sync::Sync {
 public:
  void Start(sync::EventSink&) override {}
  void Stop(absl::Duration) override {}
  void Publish(const sync::Event&, Delivered d) override {
    if (d) d(absl::OkStatus());
  }
  void PublishWatermark(sync::Watermark, Delivered d) override { d(absl::OkStatus()); }
  bool positioned() const override { return true; }
  absl::Time topic_fresh_as_of() const override { return absl::Now(); }
  sync::SyncStats Stats() const override { return {}; }
  absl::string_view replica_id() const override { return "me"; }
};

config::Config MakeConfig(uint64_t max_bytes = 16 << 20) {
  config::Config c;
  c.max_bytes = max_bytes;
  c.max_value_bytes = 1024;
  c.shards = 1;
  config::NamespaceConfig ref;
  ref.name = "ref";
  ref.replicated = true;
  ref.max_bytes_share = 0.5;
  config::NamespaceConfig plain;
  plain.name = "plain";
  c.namespaces = {ref, plain};
  return c;
}

sync::Event Upsert(std::string key, uint64_t v, std::optional<std::string> value) {
  return sync::Event{"ref",   std::move(key), v, sync::Op::kUpsert, std::move(value),
                     "other", absl::Now()};
}

class ReplicatedTest : public ::testing::Test {
 protected:
  explicit ReplicatedTest(uint64_t max_bytes = 16 << 20)
      : namespaces_(MakeConfig(max_bytes)),
        announcer_(sync_, nullptr),
        replication_(namespaces_, sync_, announcer_, nullptr, SyncReplicationOptions{}),
        loader_(namespaces_, store_, Options()) {}
  static ReplicatedLoaderOptions Options() {
    ReplicatedLoaderOptions o;
    o.page_keys = 100;
    return o;
  }
  void Rows(int n) {
    for (int i = 0; i < n; ++i) {
      ASSERT_TRUE(store_.Put("ref", "k" + std::to_string(i), "v" + std::to_string(i), {}, {}).ok());
    }
  }
  Namespace& Ref() { return **namespaces_.Find("ref"); }

  store::MemoryStore store_;
  NamespaceSet namespaces_;
  FakeSync sync_;
  sync::Announcer announcer_;
  SyncReplication replication_;
  ReplicatedLoader loader_;
};

TEST_F(ReplicatedTest, LoadsTheWholeTableAndThenKnowsWhatIsAbsent) {
  Rows(250);
  ASSERT_TRUE(store_.Put("plain", "p", "x", {}, {}).ok());
  EXPECT_FALSE(loader_.InitialLoadDone());
  EXPECT_FALSE(Ref().replicated->Authoritative(*Ref().engine, "nope")) << "before any load";
  ASSERT_TRUE(loader_.RunOnce().ok());
  EXPECT_TRUE(loader_.InitialLoadDone());
  EXPECT_EQ(loader_.keys_loaded(), 250u);
  EXPECT_EQ(Ref().engine->Peek("k249").value, "v249");
  EXPECT_TRUE(Ref().replicated->Complete(*Ref().engine));
  EXPECT_TRUE(Ref().replicated->Authoritative(*Ref().engine, "nope"));
  EXPECT_EQ((*namespaces_.Find("plain"))->engine->Peek("p").kind, cache::Lookup::Kind::kMiss)
      << "only replicated namespaces are loaded";
  EXPECT_EQ(Ref().loads.load(), 3u) << "one fill read per page of 100";
}

TEST_F(ReplicatedTest, UpdateModeAddsKeysItNeverReadAndValuelessEventsMakeThemUnknown) {
  ASSERT_TRUE(loader_.RunOnce().ok());
  const uint64_t v = *store_.Put("ref", "new", "fresh", {}, {});
  replication_.OnEvent(Upsert("new", v, "fresh"));  // e.g. an INSERT by psql, relayed
  EXPECT_EQ(Ref().engine->Peek("new").value, "fresh");
  const uint64_t v2 = *store_.Put("ref", "big", "too big for the event", {}, {});
  replication_.OnEvent(Upsert("big", v2, std::nullopt));
  EXPECT_FALSE(Ref().replicated->Authoritative(*Ref().engine, "big"))
      << "its value was not on the event: a miss must read the store";
  EXPECT_TRUE(Ref().replicated->Authoritative(*Ref().engine, "other"));
  ASSERT_TRUE(loader_.RunOnce().ok());  // reloads the unknown key
  EXPECT_EQ(Ref().engine->Peek("big").value, "too big for the event");
  EXPECT_TRUE(Ref().replicated->Authoritative(*Ref().engine, "still-absent"));
  replication_.OnEvent(
      sync::Event{"ref", "new", v2 + 1, sync::Op::kDelete, std::nullopt, "other", absl::Now()});
  EXPECT_EQ(Ref().engine->Peek("new").kind, cache::Lookup::Kind::kNegative);
}

TEST_F(ReplicatedTest, AFlushCallsForANewLoad) {
  Rows(10);
  ASSERT_TRUE(loader_.RunOnce().ok());
  replication_.OnEventsLost("test");
  EXPECT_FALSE(Ref().replicated->Authoritative(*Ref().engine, "nope"));
  ASSERT_TRUE(loader_.RunOnce().ok());
  EXPECT_TRUE(Ref().replicated->Authoritative(*Ref().engine, "nope"));
  EXPECT_EQ(Ref().engine->Peek("k3").value, "v3");
  EXPECT_EQ(Ref().replicated->loads(), 2u);
}

TEST_F(ReplicatedTest, AKeyDeletedBeforeTheLoadIsCachedAtItsDeleteVersion) {
  Rows(3);
  const absl::StatusOr<store::DeleteResult> deleted = store_.Delete("ref", "k1", std::nullopt, {});
  ASSERT_TRUE(deleted.ok());
  ASSERT_TRUE(loader_.RunOnce().ok());
  const cache::Lookup k1 = Ref().engine->Peek("k1");
  EXPECT_EQ(k1.kind, cache::Lookup::Kind::kNegative)
      << "the tombstone is loaded, so the cache says what a store read says";
  EXPECT_EQ(k1.version, deleted->version);
  WorkerPool pool(2, 100);
  CacheService service(Limits{}, namespaces_, store_, pool);
  std::optional<absl::StatusOr<ReadResult>> got;
  service.Get("ref", "k1", Consistency::kCached, absl::Now() + absl::Seconds(5),
              [&got](absl::StatusOr<ReadResult> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value() && got->ok());
  EXPECT_FALSE((*got)->found);
  EXPECT_EQ((*got)->version, deleted->version) << "not absent at version 0";
  EXPECT_EQ((*got)->source, ReadResult::Source::kCache);
}

class TinyReplicatedTest : public ReplicatedTest {
 protected:
  TinyReplicatedTest() : ReplicatedTest(64 << 10) {}
};

TEST_F(TinyReplicatedTest, ATableThatDoesNotFitIsNeverComplete) {
  Rows(2000);  // ~2000 * (key + value + overhead) > 32 KiB
  ASSERT_TRUE(loader_.RunOnce().ok());
  EXPECT_TRUE(loader_.InitialLoadDone()) << "readiness does not wait forever";
  EXPECT_GT(Ref().engine->Stats().evictions, 0u);
  EXPECT_FALSE(Ref().replicated->Authoritative(*Ref().engine, "nope"));
}

TEST_F(ReplicatedTest, GetAnswersAnAbsentKeyFromTheCacheWithoutAStoreRead) {
  Rows(5);
  ASSERT_TRUE(loader_.RunOnce().ok());
  WorkerPool pool(2, 100);
  CacheService service(Limits{}, namespaces_, store_, pool);
  const uint64_t loads = Ref().loads.load();
  std::optional<absl::StatusOr<ReadResult>> got;
  service.Get("ref", "nope", Consistency::kCached, absl::Now() + absl::Seconds(5),
              [&got](absl::StatusOr<ReadResult> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value()) << "answered inline, like a hit";
  ASSERT_TRUE(got->ok());
  EXPECT_FALSE((*got)->found);
  EXPECT_EQ((*got)->source, ReadResult::Source::kCache);
  EXPECT_EQ(Ref().loads.load(), loads);
  std::optional<absl::StatusOr<std::vector<ReadResult>>> batch;
  service.BatchGet("ref", {"k1", "nope2"}, Consistency::kCached, absl::Now() + absl::Seconds(5),
                   [&batch](absl::StatusOr<std::vector<ReadResult>> r) { batch = std::move(r); });
  ASSERT_TRUE(batch.has_value() && batch->ok());
  EXPECT_EQ((**batch)[0].value, "v1");
  EXPECT_FALSE((**batch)[1].found);
  EXPECT_EQ((**batch)[1].source, ReadResult::Source::kCache);
  EXPECT_EQ(Ref().loads.load(), loads);
  EXPECT_EQ(Ref().replicated->absent_answers(), 2u);
  // A local Invalidate makes the key unknown: the next Get reads the store.
  service.Invalidate("ref", {"k2"}, false, [](absl::StatusOr<uint64_t>) {});
  EXPECT_FALSE(Ref().replicated->Authoritative(*Ref().engine, "k2"));
}

}  // namespace
}  // namespace cachecar::service
