// WorkerPool: runs what it accepts, refuses past its bound, drains on shutdown.
#include "service/worker_pool.h"

#include <atomic>

#include "common/mutex.h"
#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

TEST(WorkerPoolTest, RunsEveryAcceptedTaskBeforeShutdownReturns) {
  std::atomic<int> ran{0};
  WorkerPool pool(2, 1000);
  for (int i = 0; i < 500; ++i) ASSERT_TRUE(pool.TrySubmit([&] { ran.fetch_add(1); }));
  pool.Shutdown();
  EXPECT_EQ(ran.load(), 500);
}

TEST(WorkerPoolTest, RefusesWhenQueueIsFull) {
  Notification started, release;
  WorkerPool pool(1, 2);
  ASSERT_TRUE(pool.TrySubmit([&] {
    started.Notify();
    release.WaitForNotification();
  }));
  started.WaitForNotification();  // the only thread is now busy
  EXPECT_TRUE(pool.TrySubmit([] {}));
  EXPECT_TRUE(pool.TrySubmit([] {}));
  EXPECT_FALSE(pool.TrySubmit([] {}));
  release.Notify();
}

TEST(WorkerPoolTest, RefusesAfterShutdown) {
  WorkerPool pool(1, 10);
  pool.Shutdown();
  EXPECT_FALSE(pool.TrySubmit([] {}));
}

}  // namespace
}  // namespace cachecar::service
