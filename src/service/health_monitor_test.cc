// HealthMonitor and ProgressWatch: the first answers are known when the
// constructor returns; each check's changes reach its own callback only
// (a store going away flips the store report, never the process one); a
// busy pool is not wedged, a pool that stops finishing queued work is.
#include "service/health_monitor.h"

#include <atomic>
#include <vector>

#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

struct Changes {
  Mutex mu;
  CondVar cv;
  std::vector<bool> seen ABSL_GUARDED_BY(mu);
  std::string last_reason ABSL_GUARDED_BY(mu);
  void Add(bool ok, const absl::Status& why) {
    MutexLock lock(&mu);
    seen.push_back(ok);
    if (!ok) last_reason = std::string(why.message());
    cv.SignalAll();
  }
  // Waits until `n` changes were reported; returns the last.
  bool WaitFor(size_t n) {
    MutexLock lock(&mu);
    while (seen.size() < n) cv.Wait(&mu);
    return seen.back();
  }
  size_t count() {
    MutexLock lock(&mu);
    return seen.size();
  }
};

TEST(HealthMonitorTest, EachCheckReportsItsFirstAnswerAndEveryChangeToItsOwnCallback) {
  std::atomic<bool> store_up{true}, sync_up{false};
  Changes process, store, sync;
  HealthMonitor::Checks checks;
  checks.process = [] { return absl::OkStatus(); };
  checks.store = [&] {
    return store_up ? absl::OkStatus() : absl::UnavailableError("database is down");
  };
  checks.sync = [&] { return sync_up ? absl::OkStatus() : absl::UnavailableError("no broker"); };
  HealthMonitor::Reports reports;
  reports.process = [&](bool ok, const absl::Status& why) { process.Add(ok, why); };
  reports.store = [&](bool ok, const absl::Status& why) { store.Add(ok, why); };
  reports.sync = [&](bool ok, const absl::Status& why) { sync.Add(ok, why); };
  HealthMonitor monitor(std::move(checks), std::move(reports), absl::Milliseconds(5),
                        absl::Milliseconds(5));
  EXPECT_EQ(process.count(), 1u) << "known before the constructor returns";
  EXPECT_EQ(store.count(), 1u);
  EXPECT_EQ(sync.count(), 1u);
  EXPECT_TRUE(process.WaitFor(1));
  EXPECT_TRUE(store.WaitFor(1));
  EXPECT_FALSE(sync.WaitFor(1));

  store_up = false;
  EXPECT_FALSE(store.WaitFor(2));
  sync_up = true;
  EXPECT_TRUE(sync.WaitFor(2));
  store_up = true;
  EXPECT_TRUE(store.WaitFor(3));
  EXPECT_EQ(process.count(), 1u) << "the store and sync never touch the process's readiness";
  MutexLock lock(&store.mu);
  EXPECT_EQ(store.seen.size(), 3u) << "only changes are reported";
  EXPECT_EQ(store.last_reason, "database is down");
}

TEST(ProgressWatchTest, BusyIsNotWedgedButNoFinishedTaskWhileWorkWaitsIs) {
  ProgressWatch watch(absl::Seconds(30));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  EXPECT_TRUE(watch.Check(0, 0, t0).ok());
  // Work queued, tasks finishing: fine however long it lasts.
  for (int i = 1; i <= 10; ++i) {
    EXPECT_TRUE(watch.Check(i, 5, t0 + absl::Seconds(10 * i)).ok()) << i;
  }
  // Idle (nothing queued) for long: fine.
  EXPECT_TRUE(watch.Check(10, 0, t0 + absl::Seconds(500)).ok());
  // Queued work and no task finished: fine for a while, then wedged.
  EXPECT_TRUE(watch.Check(10, 3, t0 + absl::Seconds(510)).ok());
  EXPECT_TRUE(watch.Check(10, 3, t0 + absl::Seconds(529)).ok());
  const absl::Status wedged = watch.Check(10, 3, t0 + absl::Seconds(531));
  EXPECT_EQ(wedged.code(), absl::StatusCode::kUnavailable);
  EXPECT_NE(wedged.message().find("wedged: 3 store calls are queued"), absl::string_view::npos)
      << wedged;
  // A task finishes: ready again.
  EXPECT_TRUE(watch.Check(11, 3, t0 + absl::Seconds(532)).ok());
}

}  // namespace
}  // namespace cachecar::service
