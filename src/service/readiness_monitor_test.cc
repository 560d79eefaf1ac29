// ReadinessMonitor: the first answer is known when the constructor returns,
// and a store that goes away and comes back flips readiness both ways.
#include "service/readiness_monitor.h"

#include <atomic>

#include "gtest/gtest.h"
#include "store/memory/memory_store.h"
#include "store/testing/forwarding_store.h"

namespace cachecar::service {
namespace {

class SwitchableStore : public store::testing::ForwardingStore {
 public:
  SwitchableStore() : ForwardingStore(&inner_) {}
  absl::Status CheckHealth(const store::CallOptions&) override {
    return up ? absl::OkStatus() : absl::UnavailableError("database is down");
  }
  std::atomic<bool> up{true};

 private:
  store::MemoryStore inner_;
};

struct Changes {
  Mutex mu;
  CondVar cv;
  std::vector<bool> seen ABSL_GUARDED_BY(mu);
  void Add(bool ready) {
    MutexLock lock(&mu);
    seen.push_back(ready);
    cv.SignalAll();
  }
  // Waits until `n` changes were reported; returns the last.
  bool WaitFor(size_t n) {
    MutexLock lock(&mu);
    while (seen.size() < n) cv.Wait(&mu);
    return seen.back();
  }
};

TEST(ReadinessMonitorTest, ReportsTheFirstAnswerAndEveryChange) {
  SwitchableStore store;
  Changes changes;
  std::string last_reason;
  ReadinessMonitor monitor(store, absl::Milliseconds(10), [&](bool ready, const absl::Status& why) {
    if (!ready) last_reason = std::string(why.message());
    changes.Add(ready);
  });
  EXPECT_TRUE(monitor.ready()) << "known before the constructor returns";
  EXPECT_TRUE(changes.WaitFor(1));
  store.up = false;
  EXPECT_FALSE(changes.WaitFor(2));
  EXPECT_FALSE(monitor.ready());
  store.up = true;
  EXPECT_TRUE(changes.WaitFor(3));
  MutexLock lock(&changes.mu);
  EXPECT_EQ(changes.seen.size(), 3u) << "only changes are reported";
  EXPECT_EQ(last_reason, "database is down");
}

}  // namespace
}  // namespace cachecar::service
