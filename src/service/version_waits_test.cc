// VersionWaits: a wait ends once, with true for an event at or above its
// version (or a recheck that already sees it), with false when its time
// runs out, on a flush, or at shutdown.
#include "service/version_waits.h"

#include <atomic>

#include "common/mutex.h"
#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

// Records one wait's outcome.
struct Outcome {
  Notification done;
  std::atomic<int> calls{0};
  std::atomic<bool> reached{false};
  VersionWaits::Done Sink() {
    return [this](bool r) {
      reached = r;
      calls++;
      done.Notify();
    };
  }
};

const absl::Time kLater = absl::InfiniteFuture();

TEST(VersionWaitsTest, AnEventAtOrAboveTheVersionEndsTheWait) {
  VersionWaits waits;
  Outcome a, b;
  waits.Wait("ns", "k", 5, kLater, nullptr, a.Sink());
  waits.Wait("ns", "k", 9, kLater, nullptr, b.Sink());
  waits.Notify("ns", "k", 4);      // older: nothing
  waits.Notify("other", "k", 10);  // another namespace: nothing
  waits.Notify("ns", "j", 10);     // another key: nothing
  EXPECT_EQ(a.calls.load(), 0);
  waits.Notify("ns", "k", 5);
  ASSERT_EQ(a.calls.load(), 1);
  EXPECT_TRUE(a.reached.load());
  EXPECT_EQ(b.calls.load(), 0);
  EXPECT_EQ(waits.waiting(), 1u);
  waits.Notify("ns", "k", 12);
  EXPECT_TRUE(b.reached.load());
  waits.Notify("ns", "k", 13);  // nobody left: no second call
  EXPECT_EQ(a.calls.load() + b.calls.load(), 2);
}

TEST(VersionWaitsTest, ARecheckThatSeesTheVersionEndsItAtOnce) {
  VersionWaits waits;
  Outcome o;
  waits.Wait(
      "ns", "k", 5, kLater, [] { return true; }, o.Sink());
  EXPECT_EQ(o.calls.load(), 1);
  EXPECT_TRUE(o.reached.load());
  EXPECT_EQ(waits.waiting(), 0u);
}

TEST(VersionWaitsTest, TimeOutFlushAndShutdownEndItWithFalse) {
  VersionWaits waits;
  Outcome timed, flushed, other, at_shutdown;
  waits.Wait("ns", "k", 5, absl::Now() + absl::Milliseconds(20), nullptr, timed.Sink());
  waits.Wait("ns", "f", 5, kLater, nullptr, flushed.Sink());
  waits.Wait("keep", "f", 5, kLater, nullptr, other.Sink());
  ASSERT_TRUE(timed.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(timed.reached.load());
  waits.NotifyFlush("ns");
  EXPECT_EQ(flushed.calls.load(), 1);
  EXPECT_FALSE(flushed.reached.load());
  EXPECT_EQ(other.calls.load(), 0);
  waits.Shutdown();
  EXPECT_EQ(other.calls.load(), 1);
  EXPECT_FALSE(other.reached.load());
  waits.Wait("ns", "k", 1, kLater, nullptr, at_shutdown.Sink());  // after: at once
  EXPECT_EQ(at_shutdown.calls.load(), 1);
  EXPECT_EQ(timed.calls.load() + flushed.calls.load(), 2) << "each wait ends once";
}

}  // namespace
}  // namespace cachecar::service
