// The sync pieces in one process against real PostgreSQL and real Kafka:
//   - C3, no stale fill: a load held (by a store hook) after it read v1,
//     while a newer write v2 commits on another replica and its event
//     arrives over Kafka, is not cached; the Get answers v2. Deterministic:
//     the hook holds the load until the event was applied.
//   - The outbox relay: a direct SQL write reaches a consumer, the row is
//     deleted only after the broker acknowledged it, a watermark follows it
//     in every partition, and two relays racing over the same rows publish
//     each exactly once (FOR UPDATE SKIP LOCKED).
//   - A cachecar writer's rows are marked announced (its relay waits for
//     it), other programs' are not.
//   - Without a broker, the relay keeps the rows.
//   - Retention passing the consumer's position (records deleted under it)
//     is lost events: the sink is told (the replica flushes), it is
//     counted, and the consumer carries on from the partition's end.
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <map>
#include <set>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "gtest/gtest.h"
#include "librdkafka/rdkafka.h"
#include "service/cache_service.h"
#include "service/namespaces.h"
#include "service/sync_replication.h"
#include "store/postgres/postgres_store.h"
#include "sync/announcer.h"
#include "sync/kafka/kafka_sync.h"
#include "sync/outbox_relay.h"
#include "tests/integration/pg_harness.h"

namespace cachecar {
namespace {

using service::Consistency;
using service::ReadResult;
using testing::PgHarness;
using testing::ReadEnvFile;

constexpr char kDb[] = "cachecar_sync_inprocess";

std::string Bootstrap() {
  const char* env = std::getenv("CACHECAR_TEST_KAFKA_ENV");
  if (env == nullptr) {
    ADD_FAILURE() << "CACHECAR_TEST_KAFKA_ENV is not set: run through ctest (fixture kafka)";
    return "";
  }
  return ReadEnvFile(env)["KAFKA_BOOTSTRAP"];
}

// A fresh topic per test, so no test sees another's events.
std::string CreateTopic(const std::string& name, int partitions) {
  const char* sh = std::getenv("CACHECAR_TEST_KAFKA_SH");
  const char* env = std::getenv("CACHECAR_TEST_KAFKA_ENV");
  const std::string dir = std::string(env).substr(0, std::string(env).rfind('/'));
  const std::string topic = absl::StrCat(name, "-", getpid());
  const std::string cmd =
      absl::StrCat("bash ", sh, " create-topic ", dir, " ", topic, " ", partitions, " >/dev/null");
  EXPECT_EQ(std::system(cmd.c_str()), 0) << cmd;
  return topic;
}

// Waits (bounded) for `done` to hold.
bool WaitFor(const std::function<bool()>& done, absl::Duration limit = absl::Seconds(20)) {
  const absl::Time until = absl::Now() + limit;
  while (!done()) {
    if (absl::Now() > until) return false;
    absl::SleepFor(absl::Milliseconds(5));
  }
  return true;
}

template <typename T>
absl::StatusOr<T> Call(const std::function<void(std::function<void(absl::StatusOr<T>)>)>& start) {
  Mutex mu;
  CondVar cv;
  std::optional<absl::StatusOr<T>> result;
  start([&](absl::StatusOr<T> r) {
    MutexLock lock(&mu);
    result = std::move(r);
    cv.SignalAll();
  });
  MutexLock lock(&mu);
  while (!result.has_value()) cv.Wait(&mu);
  return *std::move(result);
}

// A store whose next Load/LoadBatch of `key`, once armed, stops after
// reading (holding what it read) until Release().
class HoldingStore final : public store::Store {
 public:
  explicit HoldingStore(store::Store& inner) : inner_(inner) {}
  void Arm(std::string key) {
    MutexLock lock(&mu_);
    armed_ = std::move(key);
  }
  void WaitUntilHeld() {
    MutexLock lock(&mu_);
    while (!held_) cv_.Wait(&mu_);
  }
  void Release() {
    MutexLock lock(&mu_);
    released_ = true;
    cv_.SignalAll();
  }
  absl::StatusOr<store::Record> Load(absl::string_view ns, absl::string_view key,
                                     const store::CallOptions& o) override {
    auto r = inner_.Load(ns, key, o);
    MaybeHold({std::string(key)});
    return r;
  }
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& o) override {
    auto r = inner_.LoadBatch(ns, keys, o);
    MaybeHold(keys);
    return r;
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
  store::Outbox* outbox() override { return inner_.outbox(); }
  absl::string_view Name() const override { return "holding"; }

 private:
  void MaybeHold(const std::vector<std::string>& keys) {
    MutexLock lock(&mu_);
    if (armed_.empty() || std::find(keys.begin(), keys.end(), armed_) == keys.end()) return;
    armed_.clear();  // hold once
    held_ = true;
    cv_.SignalAll();
    while (!released_) cv_.Wait(&mu_);
  }

  store::Store& inner_;
  Mutex mu_;
  CondVar cv_;
  std::string armed_ ABSL_GUARDED_BY(mu_);
  bool held_ ABSL_GUARDED_BY(mu_) = false;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

std::unique_ptr<store::PostgresStore> OpenStore() {
  store::PostgresOptions options;
  options.dsn = PgHarness::Get().Dsn(kDb);
  options.pool_size = 4;
  auto opened = store::PostgresStore::Open(options, /*migrate=*/true);
  EXPECT_TRUE(opened.ok()) << opened.status();
  return opened.ok() ? *std::move(opened) : nullptr;
}

// One replica in this process: store, sync, replication, service.
struct Replica {
  Replica(const std::string& id, const std::string& topic, const std::string& sync_mode,
          store::Store* hook = nullptr)
      : namespaces(Config(sync_mode)), pool(4, 1000) {
    pg = OpenStore();
    store = hook != nullptr ? hook : pg.get();
    sync::KafkaOptions k;
    k.brokers = Bootstrap();
    k.topic = topic;
    k.replica_id = id;
    k.probe_interval = absl::Milliseconds(50);
    auto made = sync::KafkaSync::Create(k);
    EXPECT_TRUE(made.ok()) << made.status();
    kafka = *std::move(made);
    announcer = std::make_unique<sync::Announcer>(*kafka, store->outbox());
    // These tests are about the apply rules, not the staleness bound: the
    // cache is trusted (stale_reads: serve).
    service::SyncReplicationOptions options;
    options.serve_stale = true;
    replication = std::make_unique<service::SyncReplication>(namespaces, *kafka, *announcer,
                                                             nullptr, options);
    kafka->Start(*replication);
    service::ServiceHooks hooks;
    hooks.replication = replication.get();
    service = std::make_unique<service::CacheService>(
        service::Limits::FromConfig(Config(sync_mode)), namespaces, *store, pool, hooks);
  }
  ~Replica() {
    pool.Shutdown();
    service.reset();
    kafka->Stop(absl::Seconds(2));
  }
  static config::Config Config(const std::string& sync_mode) {
    config::Config c;
    c.max_bytes = 8 << 20;
    config::NamespaceConfig ns;
    ns.name = "default";
    ns.sync = sync_mode;
    c.namespaces = {ns};
    return c;
  }
  absl::StatusOr<ReadResult> Get(const std::string& key) {
    return Call<ReadResult>([&](auto done) {
      service->Get("", key, Consistency::kCached, absl::Now() + absl::Seconds(30), done);
    });
  }
  absl::StatusOr<uint64_t> Put(const std::string& key, const std::string& value) {
    return Call<uint64_t>([&](auto done) {
      service->Put("", key, value, {}, absl::Now() + absl::Seconds(10), done);
    });
  }
  cache::Engine& engine() { return *namespaces.All()[0]->engine; }

  service::NamespaceSet namespaces;
  service::WorkerPool pool;
  std::unique_ptr<store::PostgresStore> pg;
  store::Store* store = nullptr;
  std::unique_ptr<sync::KafkaSync> kafka;
  std::unique_ptr<sync::Announcer> announcer;
  std::unique_ptr<service::SyncReplication> replication;
  std::unique_ptr<service::CacheService> service;
};

class SyncInProcessTest : public ::testing::Test {
 protected:
  void SetUp() override { PgHarness::Get().CreateDatabase(kDb); }
};

// C3 in both namespace modes.
void StaleFillIsNotCached(const std::string& mode) {
  const std::string topic = CreateTopic("c3-" + mode, 2);
  auto pg_for_hook = OpenStore();
  ASSERT_NE(pg_for_hook, nullptr);
  HoldingStore holding(*pg_for_hook);
  Replica reader("reader", topic, mode, &holding);
  Replica writer("writer", topic, mode);
  ASSERT_TRUE(WaitFor([&] { return reader.kafka->positioned(); })) << "reader never positioned";

  // v1 goes straight to the store (no event), so the only event the reader
  // can apply below is v2's.
  absl::StatusOr<uint64_t> v1 =
      writer.pg->Put("default", "k", "old", store::Precondition::None(), {});
  ASSERT_TRUE(v1.ok()) << v1.status();
  // The reader misses and loads; the hook holds the load after it read v1.
  holding.Arm("k");
  std::optional<absl::StatusOr<ReadResult>> answer;
  Notification answered;
  reader.service->Get("", "k", Consistency::kCached, absl::Now() + absl::Seconds(60),
                      [&](absl::StatusOr<ReadResult> r) {
                        answer = std::move(r);
                        answered.Notify();
                      });
  holding.WaitUntilHeld();
  // Meanwhile v2 commits on the writer and its event reaches the reader.
  const uint64_t applied_before = reader.replication->apply_stats().applied;
  absl::StatusOr<uint64_t> v2 = writer.Put("k", "new");
  ASSERT_TRUE(v2.ok()) << v2.status();
  ASSERT_GT(*v2, *v1);
  ASSERT_TRUE(WaitFor([&] { return reader.replication->apply_stats().applied > applied_before; }))
      << "the event for v2 never reached the reader";
  // Now the held load completes with v1: it must not be cached.
  holding.Release();
  answered.WaitForNotification();
  ASSERT_TRUE(answer->ok()) << answer->status();
  EXPECT_EQ((*answer)->version, *v2) << "the Get answered the stale fill";
  EXPECT_EQ((*answer)->value, "new");
  EXPECT_EQ(reader.engine().Stats().fills_rejected, 1u);
  absl::StatusOr<ReadResult> again = reader.Get("k");
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->version, *v2);
  EXPECT_EQ(again->value, "new");
}

TEST_F(SyncInProcessTest, StaleFillIsNotCachedInUpdateMode) { StaleFillIsNotCached("update"); }
TEST_F(SyncInProcessTest, StaleFillIsNotCachedInInvalidateMode) {
  StaleFillIsNotCached("invalidate");
}

// Collects events and watermarks a replica's consumer reads, in order.
class Recorder final : public sync::EventSink {
 public:
  struct Seen {
    int32_t partition;
    bool watermark;
    std::string key;
    absl::Time as_of;
  };
  void OnEvent(const sync::Event& e) override {
    MutexLock lock(&mu_);
    events_.push_back(e);
    order_.push_back({-1, false, e.key, absl::InfinitePast()});
  }
  void OnWatermark(int32_t partition, const sync::Watermark& w) override {
    MutexLock lock(&mu_);
    order_.push_back({partition, true, w.relay, w.as_of});
    watermarks_.push_back(w);
  }
  void OnEventsLost(absl::string_view) override {}
  std::vector<Seen> order() {
    MutexLock lock(&mu_);
    return order_;
  }
  std::vector<sync::Watermark> watermarks() {
    MutexLock lock(&mu_);
    return watermarks_;
  }
  std::vector<sync::Event> events() {
    MutexLock lock(&mu_);
    return events_;
  }

 private:
  Mutex mu_;
  std::vector<sync::Event> events_ ABSL_GUARDED_BY(mu_);
  std::vector<sync::Watermark> watermarks_ ABSL_GUARDED_BY(mu_);
  std::vector<Seen> order_ ABSL_GUARDED_BY(mu_);
};

std::unique_ptr<sync::KafkaSync> StartConsumer(const std::string& topic, const std::string& id,
                                               Recorder& recorder) {
  sync::KafkaOptions k;
  k.brokers = Bootstrap();
  k.topic = topic;
  k.replica_id = id;
  auto made = sync::KafkaSync::Create(k);
  EXPECT_TRUE(made.ok()) << made.status();
  (*made)->Start(recorder);
  EXPECT_TRUE(WaitFor([&] { return (*made)->positioned(); }));
  return *std::move(made);
}

TEST_F(SyncInProcessTest, RelayPublishesDirectWritesThenDeletesThem) {
  const std::string topic = CreateTopic("relay", 3);
  Recorder recorder;
  auto consumer = StartConsumer(topic, "watcher", recorder);
  auto pg = OpenStore();
  PgHarness::Get().Psql(kDb,
                        "INSERT INTO cachecar_entries (namespace, key, value) "
                        "VALUES ('default', 'direct', 'from sql')");
  const std::string version =
      PgHarness::Get().Psql(kDb, "SELECT version FROM cachecar_entries WHERE key = 'direct'");
  EXPECT_EQ(PgHarness::Get().Psql(kDb, "SELECT announced FROM cachecar_outbox"), "f")
      << "psql's write is not a cachecar writer's";
  sync::RelayOptions options;
  options.origin = "relay/test";
  options.holder = "relay-test/1";
  options.watermark_interval = absl::ZeroDuration();
  auto producer = sync::KafkaSync::Create({Bootstrap(), topic, "relay-test"});
  ASSERT_TRUE(producer.ok());
  Recorder unused;
  (*producer)->Start(unused);  // its consumer is unused here
  sync::OutboxRelay relay(*pg->outbox(), **producer, options);
  const absl::Time before = absl::Now();
  absl::StatusOr<size_t> n = relay.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1u) << "published at once, not after outbox_relay_delay";
  EXPECT_EQ(PgHarness::Get().Psql(kDb, "SELECT count(*) FROM cachecar_outbox"), "0");
  EXPECT_EQ(relay.watermarks(), 1u);
  // A watermark in every partition. The row's event is ahead of the
  // watermark in its own partition, so it arrives before the last of them.
  ASSERT_TRUE(WaitFor([&] { return recorder.watermarks().size() == 3; }))
      << recorder.watermarks().size() << " watermarks";
  const std::vector<Recorder::Seen> order = recorder.order();
  std::set<int32_t> partitions;
  bool event_seen = false;
  for (const Recorder::Seen& seen : order) {
    if (!seen.watermark) {
      event_seen = event_seen || seen.key == "direct";
      continue;
    }
    partitions.insert(seen.partition);
    if (partitions.size() == 3) {
      EXPECT_TRUE(event_seen) << "every watermark arrived before the event they cover";
    }
    EXPECT_EQ(seen.key, "relay-test/1");
    EXPECT_GT(seen.as_of, before - absl::Seconds(60)) << "on PostgreSQL's clock (same host)";
  }
  EXPECT_EQ(partitions.size(), 3u);
  for (const sync::Watermark& w : recorder.watermarks()) EXPECT_EQ(w.partitions, 3);
  ASSERT_TRUE(WaitFor([&] {
    for (const sync::Event& e : recorder.events()) {
      if (e.key == "direct") return true;
    }
    return false;
  }));
  for (const sync::Event& e : recorder.events()) {
    if (e.key != "direct") continue;
    EXPECT_EQ(e.op, sync::Op::kUpsert);
    EXPECT_EQ(absl::StrCat(e.version), version);
    EXPECT_EQ(e.value, "from sql");
    EXPECT_EQ(e.origin, "relay/test");
  }
  (*producer)->Stop(absl::Seconds(2));
}

TEST_F(SyncInProcessTest, RacingRelaysPublishEachRowOnce) {
  const std::string topic = CreateTopic("race", 3);
  auto pg = OpenStore();
  PgHarness::Get().Psql(kDb,
                        "INSERT INTO cachecar_entries (namespace, key, value) "
                        "SELECT 'default', 'k' || g, 'v' FROM generate_series(1, 300) g");
  // A counting Sync in front of the real one.
  class Counting final : public sync::Sync {
   public:
    explicit Counting(sync::Sync& inner) : inner_(inner) {}
    void Start(sync::EventSink&) override {}
    void Stop(absl::Duration) override {}
    void Publish(const sync::Event& e, Delivered d) override {
      {
        MutexLock lock(&mu);
        counts[e.version]++;
      }
      inner_.Publish(e, std::move(d));
    }
    void PublishWatermark(sync::Watermark w, Delivered d) override {
      inner_.PublishWatermark(std::move(w), std::move(d));
    }
    bool positioned() const override { return true; }
    absl::Time topic_fresh_as_of() const override { return absl::Now(); }
    sync::SyncStats Stats() const override { return {}; }
    absl::string_view replica_id() const override { return "counting"; }
    Mutex mu;
    std::map<uint64_t, int> counts ABSL_GUARDED_BY(mu);

   private:
    sync::Sync& inner_;
  };
  auto real = sync::KafkaSync::Create({Bootstrap(), topic, "race"});
  ASSERT_TRUE(real.ok());
  Recorder unused;
  (*real)->Start(unused);  // delivery reports need its threads
  Counting counting(**real);
  sync::RelayOptions options;
  options.batch = 25;
  auto pg2 = OpenStore();
  sync::OutboxRelay a(*pg->outbox(), counting, options);
  sync::OutboxRelay b(*pg2->outbox(), counting, options);
  // Rounds until the outbox is empty (a round may find every row it listed
  // locked by the other relay and relay none).
  auto drain = [](sync::OutboxRelay& r) {
    for (int i = 0; i < 1000; ++i) {
      absl::StatusOr<size_t> n = r.RunOnce();
      ASSERT_TRUE(n.ok()) << n.status();
      if (PgHarness::Get().Psql(kDb, "SELECT count(*) FROM cachecar_outbox") == "0") return;
    }
  };
  std::thread ta([&] { drain(a); });
  std::thread tb([&] { drain(b); });
  ta.join();
  tb.join();
  EXPECT_EQ(PgHarness::Get().Psql(kDb, "SELECT count(*) FROM cachecar_outbox"), "0");
  MutexLock lock(&counting.mu);
  EXPECT_EQ(counting.counts.size(), 300u);
  for (const auto& [version, count] : counting.counts) {
    EXPECT_EQ(count, 1) << "version " << version << " published " << count << " times";
  }
  EXPECT_EQ(a.relayed() + b.relayed(), 300u);
  std::printf("relay a published %llu rows, relay b %llu\n",
              static_cast<unsigned long long>(a.relayed()),
              static_cast<unsigned long long>(b.relayed()));
}

TEST_F(SyncInProcessTest, WithoutABrokerTheRelayKeepsTheRows) {
  auto pg = OpenStore();
  PgHarness::Get().Psql(kDb,
                        "INSERT INTO cachecar_entries (namespace, key, value) "
                        "VALUES ('default', 'kept', 'v')");
  sync::KafkaOptions k;
  k.brokers = "127.0.0.1:1";  // nothing listens there
  k.topic = "nowhere";
  k.replica_id = "lonely";
  k.publish_timeout = absl::Seconds(1);
  auto dead = sync::KafkaSync::Create(k);
  ASSERT_TRUE(dead.ok());
  Recorder unused;
  (*dead)->Start(unused);
  sync::RelayOptions options;
  options.publish_wait = absl::Seconds(5);
  options.watermark_interval = absl::ZeroDuration();
  sync::OutboxRelay relay(*pg->outbox(), **dead, options);
  absl::StatusOr<size_t> n = relay.RunOnce();
  EXPECT_FALSE(n.ok());
  EXPECT_EQ(PgHarness::Get().Psql(kDb, "SELECT count(*) FROM cachecar_outbox"), "1");
  EXPECT_EQ(relay.watermarks(), 0u);
}

// A cachecar writer's rows are marked: the relay leaves them to it for
// outbox_relay_delay, then publishes them itself.
TEST_F(SyncInProcessTest, ACachecarWritersRowsAreMarkedAndRelayedOnlyAfterTheDelay) {
  const std::string topic = CreateTopic("marked", 1);
  auto pg = OpenStore();
  absl::StatusOr<uint64_t> put = pg->Put("default", "mine", "v", store::Precondition::None(), {});
  ASSERT_TRUE(put.ok()) << put.status();
  absl::StatusOr<store::DeleteResult> del = pg->Delete("default", "mine", std::nullopt, {});
  ASSERT_TRUE(del.ok()) << del.status();
  EXPECT_EQ(PgHarness::Get().Psql(
                kDb, "SELECT string_agg(announced::text, ',' ORDER BY id) FROM cachecar_outbox"),
            "true,true");
  auto producer = sync::KafkaSync::Create({Bootstrap(), topic, "marked-test"});
  ASSERT_TRUE(producer.ok());
  Recorder unused;
  (*producer)->Start(unused);
  sync::RelayOptions options;
  options.min_age = absl::Seconds(1);
  options.holder = "marked-test/1";
  sync::OutboxRelay relay(*pg->outbox(), **producer, options);
  absl::StatusOr<size_t> n = relay.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 0u) << "their writer was given outbox_relay_delay";
  EXPECT_EQ(relay.watermarks(), 0u) << "a watermark cannot cover writes nobody published yet";
  ASSERT_TRUE(WaitFor([&] {
    EXPECT_TRUE(relay.RunOnce().ok());
    return PgHarness::Get().Psql(kDb, "SELECT count(*) FROM cachecar_outbox") == "0";
  }));
  EXPECT_EQ(relay.relayed(), 2u);
  (*producer)->Stop(absl::Seconds(2));
}

// Blocks in its first OnEvent until Release(), so the consumer falls behind.
class BlockingSink final : public sync::EventSink {
 public:
  void OnEvent(const sync::Event&) override {
    MutexLock lock(&mu_);
    ++events_;
    cv_.SignalAll();
    while (!released_) cv_.Wait(&mu_);
  }
  void OnEventsLost(absl::string_view) override {
    MutexLock lock(&mu_);
    ++lost_;
  }
  void WaitForFirstEvent() {
    MutexLock lock(&mu_);
    while (events_ == 0) cv_.Wait(&mu_);
  }
  void Release() {
    MutexLock lock(&mu_);
    released_ = true;
    cv_.SignalAll();
  }
  int lost() {
    MutexLock lock(&mu_);
    return lost_;
  }
  int events() {
    MutexLock lock(&mu_);
    return events_;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  int events_ ABSL_GUARDED_BY(mu_) = 0;
  int lost_ ABSL_GUARDED_BY(mu_) = 0;
  bool released_ ABSL_GUARDED_BY(mu_) = false;
};

// Deletes the records of partition 0 of `topic` before `offset` (what
// retention does), with the Admin API.
void DeleteRecordsBefore(const std::string& topic, int64_t offset) {
  char err[512];
  rd_kafka_conf_t* conf = rd_kafka_conf_new();
  ASSERT_EQ(rd_kafka_conf_set(conf, "bootstrap.servers", Bootstrap().c_str(), err, sizeof(err)),
            RD_KAFKA_CONF_OK)
      << err;
  rd_kafka_t* admin = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof(err));
  ASSERT_NE(admin, nullptr) << err;
  rd_kafka_topic_partition_list_t* before = rd_kafka_topic_partition_list_new(1);
  rd_kafka_topic_partition_list_add(before, topic.c_str(), 0)->offset = offset;
  rd_kafka_DeleteRecords_t* del = rd_kafka_DeleteRecords_new(before);
  rd_kafka_topic_partition_list_destroy(before);
  rd_kafka_queue_t* queue = rd_kafka_queue_new(admin);
  rd_kafka_DeleteRecords(admin, &del, 1, nullptr, queue);
  rd_kafka_DeleteRecords_destroy(del);
  rd_kafka_event_t* result = rd_kafka_queue_poll(queue, 30000);
  ASSERT_NE(result, nullptr) << "DeleteRecords: no answer in 30 s";
  EXPECT_EQ(rd_kafka_event_error(result), RD_KAFKA_RESP_ERR_NO_ERROR)
      << rd_kafka_event_error_string(result);
  const rd_kafka_topic_partition_list_t* offsets =
      rd_kafka_DeleteRecords_result_offsets(rd_kafka_event_DeleteRecords_result(result));
  ASSERT_EQ(offsets->cnt, 1);
  EXPECT_EQ(offsets->elems[0].err, RD_KAFKA_RESP_ERR_NO_ERROR);
  EXPECT_EQ(offsets->elems[0].offset, offset);
  rd_kafka_event_destroy(result);
  rd_kafka_queue_destroy(queue);
  rd_kafka_destroy(admin);
}

TEST_F(SyncInProcessTest, RetentionPastThePositionIsLostEventsAndTheConsumerGoesOn) {
  const std::string topic = CreateTopic("reset", 1);
  // A consumer that prefetches as little as librdkafka allows, so records
  // deleted past its first message are records it has not fetched.
  sync::KafkaOptions k;
  k.brokers = Bootstrap();
  k.topic = topic;
  k.replica_id = "behind";
  k.properties = {{"queued.min.messages", "1"},
                  {"queued.max.messages.kbytes", "1"},
                  {"fetch.max.bytes", "1024"},
                  {"max.partition.fetch.bytes", "1024"},
                  {"message.max.bytes", "1000"}};
  auto consumer = sync::KafkaSync::Create(k);
  ASSERT_TRUE(consumer.ok()) << consumer.status();
  BlockingSink sink;
  (*consumer)->Start(sink);
  ASSERT_TRUE(WaitFor([&] { return (*consumer)->positioned(); }));

  auto publisher = sync::KafkaSync::Create({Bootstrap(), topic, "publisher"});
  ASSERT_TRUE(publisher.ok());
  Recorder unused;
  (*publisher)->Start(unused);
  // One acknowledged event at a time: each is a batch of its own.
  auto publish = [&](int i) {
    Notification acked;
    absl::Status status;
    (*publisher)
        ->Publish(sync::Event{"default", absl::StrCat("k", i), static_cast<uint64_t>(i + 1),
                              sync::Op::kUpsert, std::string(200, 'x'), "publisher", absl::Now()},
                  [&](absl::Status s) {
                    status = s;
                    acked.Notify();
                  });
    acked.WaitForNotification();
    ASSERT_TRUE(status.ok()) << status;
  };
  publish(0);
  sink.WaitForFirstEvent();  // the consumer is now stuck at offset 0
  for (int i = 1; i < 60; ++i) publish(i);
  DeleteRecordsBefore(topic, 50);
  sink.Release();
  ASSERT_TRUE(WaitFor([&] { return sink.lost() == 1; }))
      << "no OnEventsLost; events seen " << sink.events();
  EXPECT_EQ((*consumer)->Stats().offset_resets, 1u);
  // It goes on from the partition's end: the next event arrives, and the
  // deleted ones never do.
  const int seen = sink.events();
  publish(60);
  ASSERT_TRUE(WaitFor([&] { return sink.events() > seen; }));
  EXPECT_LT(sink.events(), 50) << "events under the deleted records were delivered";
  (*publisher)->Stop(absl::Seconds(2));
  (*consumer)->Stop(absl::Seconds(2));
}

}  // namespace
}  // namespace cachecar
