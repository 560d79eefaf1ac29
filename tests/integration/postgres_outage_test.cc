// cachecar's read and write paths over a real PostgreSQL that fails under
// them: backends killed mid-traffic (pg_terminate_backend), then the server
// stopped and started again. Cache hits keep being served, misses and Puts
// fail with UNAVAILABLE while it is down, and the same store object recovers
// by itself once the server is back.
#include <atomic>
#include <cstdio>
#include <map>
#include <thread>

#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "config/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/cache_service.h"
#include "service/namespaces.h"
#include "service/worker_pool.h"
#include "store/postgres/postgres_store.h"
#include "tests/integration/pg_harness.h"

namespace cachecar {
namespace {

using ::cachecar::testing::PgHarness;
using service::Consistency;
using service::ReadResult;

constexpr char kDb[] = "outage_test";

template <typename T>
absl::StatusOr<T> Call(std::function<void(std::function<void(absl::StatusOr<T>)>)> start) {
  Notification done;
  absl::StatusOr<T> result = absl::UnknownError("not delivered");
  start([&](absl::StatusOr<T> r) {
    result = std::move(r);
    done.Notify();
  });
  done.WaitForNotification();
  return result;
}

class PostgresOutageTest : public ::testing::Test {
 protected:
  PostgresOutageTest() : namespaces_(Config()), pool_(4, 1000) {}

  static config::Config Config() {
    config::Config c;
    c.max_bytes = 8 << 20;
    c.namespaces = {{"default"}};
    return c;
  }

  void SetUp() override {
    const PgHarness& pg = PgHarness::Get();
    pg.CreateDatabase(kDb);
    store::PostgresOptions options;
    options.dsn = pg.Dsn(kDb);
    options.pool_size = 4;
    auto opened = store::PostgresStore::Open(options, /*migrate=*/true);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = std::move(*opened);
    service_ = std::make_unique<service::CacheService>(service::Limits::FromConfig(Config()),
                                                       namespaces_, *store_, pool_);
  }
  void TearDown() override {
    pool_.Shutdown();
    service_.reset();
    store_.reset();
  }

  absl::StatusOr<ReadResult> Get(const std::string& key, Consistency c = Consistency::kCached) {
    return Call<ReadResult>(
        [&](auto done) { service_->Get("", key, c, absl::Now() + absl::Seconds(10), done); });
  }
  absl::StatusOr<uint64_t> Put(const std::string& key, const std::string& value) {
    return Call<uint64_t>([&](auto done) {
      service_->Put("", key, value, {}, absl::Now() + absl::Seconds(10), done);
    });
  }
  std::string PgValue(const std::string& key) {
    return PgHarness::Get().Psql(
        kDb, absl::StrCat("SELECT convert_from(value, 'UTF8') FROM cachecar_entries WHERE "
                          "namespace = 'default' AND key = '",
                          key, "'"));
  }

  service::NamespaceSet namespaces_;
  service::WorkerPool pool_;
  std::unique_ptr<store::PostgresStore> store_;
  std::unique_ptr<service::CacheService> service_;
};

TEST_F(PostgresOutageTest, KilledBackendsMidTrafficCostAtMostUnavailableAndNothingDiverges) {
  constexpr int kKeys = 10;
  constexpr int kOps = 400;
  std::atomic<int> done_ops{0};
  Mutex mu;
  std::map<absl::StatusCode, int> codes;
  std::thread traffic([&] {
    for (int i = 0; i < kOps; ++i) {
      const std::string key = absl::StrCat("k", i % kKeys);
      auto put = Put(key, absl::StrCat("v", i));
      auto get = Get(absl::StrCat("k", (i + 3) % kKeys), Consistency::kStrong);
      MutexLock lock(&mu);
      codes[put.status().code()]++;
      codes[get.status().code()]++;
      done_ops++;
    }
  });
  // Kill every cachecar backend a few times while the traffic runs.
  for (int round = 0; round < 3; ++round) {
    const int target = (round + 1) * kOps / 5;
    while (done_ops.load() < target) std::this_thread::yield();
    PgHarness::Get().Psql("postgres",
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                          "WHERE application_name = 'cachecar' AND datname = 'outage_test'");
  }
  traffic.join();
  {
    MutexLock lock(&mu);
    for (const auto& [code, n] : codes) {
      std::printf("calls answered %s: %d\n", absl::StatusCodeToString(code).c_str(), n);
      EXPECT_TRUE(code == absl::StatusCode::kOk || code == absl::StatusCode::kUnavailable)
          << absl::StatusCodeToString(code) << " x" << n;
    }
    EXPECT_GT(codes[absl::StatusCode::kOk], 2 * kOps * 9 / 10) << "it kept working";
  }
  // Whatever failed in between, every cached answer now equals PostgreSQL.
  for (int k = 0; k < kKeys; ++k) {
    const std::string key = absl::StrCat("k", k);
    auto cached = Get(key);
    ASSERT_TRUE(cached.ok()) << cached.status();
    EXPECT_EQ(cached->value, PgValue(key)) << key;
  }
}

TEST_F(PostgresOutageTest, ServesHitsWhileDownFailsMissesAndPutsAndRecoversByItself) {
  auto v = Put("hot", "cached before the outage");
  ASSERT_TRUE(v.ok()) << v.status();
  auto warm = Get("hot");
  ASSERT_TRUE(warm.ok());
  ASSERT_EQ(warm->source, ReadResult::Source::kCache);

  PgHarness::Get().StopServer();
  auto hit = Get("hot");
  ASSERT_TRUE(hit.ok()) << hit.status();
  EXPECT_EQ(hit->value, "cached before the outage");
  EXPECT_EQ(hit->source, ReadResult::Source::kCache);
  for (int i = 0; i < 3; ++i) {
    auto miss = Get(absl::StrCat("cold", i));
    EXPECT_EQ(miss.status().code(), absl::StatusCode::kUnavailable) << miss.status();
    auto put = Put("hot", "written while down");
    EXPECT_EQ(put.status().code(), absl::StatusCode::kUnavailable) << put.status();
  }
  auto still = Get("hot");
  ASSERT_TRUE(still.ok()) << still.status();
  EXPECT_EQ(still->value, "cached before the outage") << "a failed Put changes no cache";

  PgHarness::Get().StartServer();
  // Reconnects back off up to 5 s; give it a bounded number of tries.
  absl::StatusOr<ReadResult> back = absl::UnknownError("not tried");
  const absl::Time give_up = absl::Now() + absl::Seconds(30);
  while (absl::Now() < give_up) {
    back = Get("cold0", Consistency::kStrong);
    if (back.ok()) break;
    ASSERT_EQ(back.status().code(), absl::StatusCode::kUnavailable) << back.status();
    absl::SleepFor(absl::Milliseconds(100));  // polling for recovery, not a race fix
  }
  ASSERT_TRUE(back.ok()) << "did not recover within 30 s: " << back.status();
  EXPECT_FALSE(back->found);
  auto put = Put("hot", "after the outage");
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_GT(*put, *v);
  auto after = Get("hot");
  ASSERT_TRUE(after.ok());
  EXPECT_EQ(after->value, "after the outage");
}

}  // namespace
}  // namespace cachecar
