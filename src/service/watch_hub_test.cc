// WatchHub: who receives which change, overflow and shutdown close a watcher
// with a status instead of blocking or dropping, wake runs when it should and
// never after Unsubscribe, and concurrent publishers deliver every change
// once, in each publisher's order (run under TSan: label threads).
#include "service/watch_hub.h"

#include <atomic>
#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

using ::testing::HasSubstr;

Change Upsert(std::string ns, std::string key, uint64_t version) {
  Change c;
  c.ns = std::move(ns);
  c.key = std::move(key);
  c.version = version;
  c.op = ChangeOp::kUpsert;
  return c;
}

Change Flush(std::string ns, uint64_t version) {
  Change c;
  c.ns = std::move(ns);
  c.version = version;
  c.op = ChangeOp::kFlush;
  return c;
}

std::vector<std::string> Keys(const std::vector<Change>& changes) {
  std::vector<std::string> keys;
  for (const Change& c : changes) keys.push_back(c.key);
  return keys;
}

class WatchHubTest : public ::testing::Test {
 protected:
  WatchHubTest() {
    config_.namespaces = {{"default", absl::ZeroDuration(), 0}, {"users", absl::ZeroDuration(), 0}};
    namespaces_ = std::make_unique<NamespaceSet>(config_);
  }

  std::shared_ptr<WatchHub::Watcher> MustSubscribe(WatchHub& hub, absl::string_view ns,
                                                   std::string prefix,
                                                   std::function<void()> wake = nullptr) {
    auto w = hub.Subscribe(ns, std::move(prefix), std::move(wake));
    EXPECT_TRUE(w.ok()) << w.status();
    return w.ok() ? *w : nullptr;
  }

  config::Config config_;
  std::unique_ptr<NamespaceSet> namespaces_;
};

TEST_F(WatchHubTest, PrefixFiltersKeys) {
  WatchHub hub(*namespaces_);
  auto users = MustSubscribe(hub, "default", "user:");
  auto all = MustSubscribe(hub, "default", "");
  hub.Publish(Upsert("default", "user:1", 1));
  hub.Publish(Upsert("default", "order:1", 2));
  hub.Publish(Upsert("default", "user:2", 3));
  EXPECT_THAT(Keys(users->TakeAll()), ::testing::ElementsAre("user:1", "user:2"));
  EXPECT_THAT(Keys(all->TakeAll()), ::testing::ElementsAre("user:1", "order:1", "user:2"));
}

TEST_F(WatchHubTest, NamespaceFiltersAndEmptyMeansDefault) {
  WatchHub hub(*namespaces_);
  auto def = MustSubscribe(hub, "", "");
  EXPECT_EQ(def->ns(), "default");
  auto users = MustSubscribe(hub, "users", "");
  hub.Publish(Upsert("users", "a", 1));
  hub.Publish(Upsert("default", "b", 2));
  hub.Publish(Upsert("", "c", 3));  // "" is "default" on the publishing side too
  EXPECT_THAT(Keys(def->TakeAll()), ::testing::ElementsAre("b", "c"));
  EXPECT_THAT(Keys(users->TakeAll()), ::testing::ElementsAre("a"));
}

TEST_F(WatchHubTest, UnknownNamespaceIsInvalidArgument) {
  WatchHub hub(*namespaces_);
  auto w = hub.Subscribe("nope", "", nullptr);
  ASSERT_FALSE(w.ok());
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(w.status().message(), HasSubstr("unknown namespace 'nope'"));
  EXPECT_EQ(hub.watcher_count(), 0u);
}

TEST_F(WatchHubTest, FlushReachesPrefixWatchersOfItsNamespaceOnly) {
  WatchHub hub(*namespaces_);
  auto users = MustSubscribe(hub, "default", "user:");
  auto other = MustSubscribe(hub, "users", "user:");
  hub.Publish(Flush("default", 7));
  Change c;
  ASSERT_TRUE(users->Next(&c));
  EXPECT_EQ(c.op, ChangeOp::kFlush);
  EXPECT_EQ(c.key, "");
  EXPECT_EQ(c.version, 7u);
  EXPECT_FALSE(users->Next(&c));
  EXPECT_FALSE(other->Next(&c));
}

TEST_F(WatchHubTest, NextReturnsChangesInOrderWithEveryField) {
  WatchHub hub(*namespaces_);
  auto w = MustSubscribe(hub, "default", "");
  Change del;
  del.ns = "default";
  del.key = "k";
  del.version = 9;
  del.op = ChangeOp::kDelete;
  del.local = true;
  hub.Publish(Upsert("default", "k", 8));
  hub.Publish(del);
  Change c;
  ASSERT_TRUE(w->Next(&c));
  EXPECT_EQ(c.version, 8u);
  ASSERT_TRUE(w->Next(&c));
  EXPECT_EQ(c.ns, "default");
  EXPECT_EQ(c.key, "k");
  EXPECT_EQ(c.version, 9u);
  EXPECT_EQ(c.op, ChangeOp::kDelete);
  EXPECT_TRUE(c.local);
  EXPECT_FALSE(w->Next(&c));
  EXPECT_TRUE(w->status().ok());
}

TEST_F(WatchHubTest, WakeRunsWhenTheQueueBecomesNonEmpty) {
  int wakes = 0;  // before the hub: its destructor wakes the watcher
  WatchHub hub(*namespaces_);
  auto w = MustSubscribe(hub, "default", "", [&wakes] { ++wakes; });
  hub.Publish(Upsert("default", "a", 1));
  hub.Publish(Upsert("default", "b", 2));  // queued behind "a": no second wake
  EXPECT_EQ(wakes, 1);
  EXPECT_EQ(w->TakeAll().size(), 2u);
  hub.Publish(Upsert("default", "c", 3));
  EXPECT_EQ(wakes, 2);
  hub.Publish(Upsert("users", "x", 4));  // not this watcher's namespace
  EXPECT_EQ(wakes, 2);
}

TEST_F(WatchHubTest, OverflowClosesWithResourceExhaustedAndNeverBlocks) {
  WatchHubOptions options;
  options.max_queued_per_watcher = 3;
  int wakes = 0;
  WatchHub hub(*namespaces_, options);
  auto slow = MustSubscribe(hub, "default", "", [&wakes] { ++wakes; });
  auto fast = MustSubscribe(hub, "default", "");
  for (uint64_t v = 1; v <= 10; ++v) {
    hub.Publish(Upsert("default", "k", v));
    fast->TakeAll();
  }
  EXPECT_EQ(wakes, 2) << "once for the first change, once when closed";
  EXPECT_EQ(slow->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(slow->status().message(),
              HasSubstr("fell more than 3 changes or 1048576 bytes behind"));
  Change c;
  EXPECT_FALSE(slow->Next(&c)) << "a closed watcher delivers nothing more";
  EXPECT_TRUE(fast->status().ok());
  EXPECT_EQ(hub.watcher_count(), 1u) << "the closed watcher left the hub";
  hub.Unsubscribe(slow);  // still fine after the hub dropped it
  EXPECT_EQ(slow->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(hub.watcher_count(), 1u);
}

// Issue #17: the bound was a count of changes, so 300 watchers that never
// read, fed 4,000 Puts of 1,000-byte keys, held 1.34 GB.
TEST_F(WatchHubTest, QueuesAreBoundedInBytesAndWatchersInNumber) {
  WatchHubOptions options;
  options.max_queued_bytes_per_watcher = 64 << 10;
  options.max_watchers = 3;
  WatchHub hub(*namespaces_, options);
  std::vector<std::shared_ptr<WatchHub::Watcher>> idle;
  for (int i = 0; i < 3; ++i) idle.push_back(MustSubscribe(hub, "default", ""));
  auto more = hub.Subscribe("users", "", nullptr);
  EXPECT_EQ(more.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(more.status().message(), HasSubstr("already serves 3 Watch streams (max_watchers)"));
  // 1,000-byte keys: the 64 KiB bound is hit after ~60 changes, well before
  // the 4,096-change count.
  const std::string key(1000, 'k');
  size_t queued = 0;
  for (uint64_t v = 1; v <= 4000 && idle[0]->status().ok(); ++v) {
    hub.Publish(Upsert("default", key, v));
    if (idle[0]->status().ok()) queued = v;
  }
  EXPECT_EQ(idle[0]->status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(idle[0]->status().message(), HasSubstr("65536 bytes behind (watch_queue_bytes)"));
  EXPECT_EQ(queued, (64u << 10) / (1000 + 7 + kChangeOverheadBytes));
  // The closed watchers made room for new ones.
  EXPECT_EQ(hub.watcher_count(), 0u);
  EXPECT_TRUE(hub.Subscribe("users", "", nullptr).ok());
}

TEST_F(WatchHubTest, APrefixLongerThanAnyKeyIsInvalidArgument) {
  WatchHubOptions options;
  options.max_key_prefix_bytes = 1024;
  WatchHub hub(*namespaces_, options);
  EXPECT_TRUE(hub.Subscribe("", std::string(1024, 'p'), nullptr).ok());
  auto w = hub.Subscribe("", std::string(1025, 'p'), nullptr);
  EXPECT_EQ(w.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(w.status().message(), HasSubstr("key_prefix is 1025 bytes, over max_key_bytes"));
  EXPECT_FALSE(hub.Subscribe("", std::string(10 << 20, 'p'), nullptr).ok());
}

TEST_F(WatchHubTest, UnsubscribeStopsDeliveryAndWakes) {
  int wakes = 0;
  WatchHub hub(*namespaces_);
  auto w = MustSubscribe(hub, "default", "", [&wakes] { ++wakes; });
  EXPECT_EQ(hub.watcher_count(), 1u);
  hub.Unsubscribe(w);
  hub.Unsubscribe(w);  // idempotent
  hub.Unsubscribe(nullptr);
  EXPECT_EQ(hub.watcher_count(), 0u);
  hub.Publish(Upsert("default", "k", 1));
  Change c;
  EXPECT_FALSE(w->Next(&c));
  EXPECT_EQ(wakes, 0);
  EXPECT_EQ(w->status().code(), absl::StatusCode::kCancelled);
}

TEST_F(WatchHubTest, CloseAllEndsEveryWatcherAndRefusesNewOnes) {
  std::atomic<int> wakes{0};
  WatchHub hub(*namespaces_);
  auto a = MustSubscribe(hub, "default", "", [&wakes] { ++wakes; });
  auto b = MustSubscribe(hub, "users", "x", [&wakes] { ++wakes; });
  hub.Publish(Upsert("default", "k", 1));
  hub.CloseAll();
  EXPECT_EQ(wakes.load(), 3);
  EXPECT_EQ(hub.watcher_count(), 0u);
  for (const auto& w : {a, b}) {
    EXPECT_EQ(w->status().code(), absl::StatusCode::kUnavailable);
    EXPECT_THAT(w->status().message(), HasSubstr("cachecar is shutting down"));
    Change c;
    EXPECT_FALSE(w->Next(&c));
  }
  auto late = hub.Subscribe("default", "", nullptr);
  EXPECT_EQ(late.status().code(), absl::StatusCode::kUnavailable);
  hub.Unsubscribe(a);
}

// Several publishers, each with its own keys and rising versions, and a
// consumer that drains as it is woken: every change arrives exactly once and
// each publisher's changes in the order it published them.
TEST_F(WatchHubTest, ConcurrentPublishersDeliverEveryChangeOnceInOrder) {
  constexpr int kPublishers = 4;
  constexpr int kPerPublisher = 5000;
  WatchHubOptions options;
  options.max_queued_per_watcher = kPublishers * kPerPublisher;  // no overflow here
  options.max_queued_bytes_per_watcher = size_t{1} << 30;
  Mutex mu;
  CondVar cv;
  int woken = 0;
  WatchHub hub(*namespaces_, options);
  auto w = MustSubscribe(hub, "default", "p", [&] {
    MutexLock lock(&mu);
    ++woken;
    cv.Signal();
  });
  // A second watcher that unsubscribes midway, racing the publishers' wakes.
  auto quitter = MustSubscribe(hub, "default", "", [] {});

  std::vector<std::thread> publishers;
  for (int p = 0; p < kPublishers; ++p) {
    publishers.emplace_back([&hub, p] {
      for (int i = 1; i <= kPerPublisher; ++i) {
        hub.Publish(Upsert("default", "p" + std::to_string(p), static_cast<uint64_t>(i)));
      }
    });
  }
  std::thread unsubscriber([&hub, &quitter] { hub.Unsubscribe(quitter); });

  std::vector<uint64_t> last(kPublishers, 0);
  int received = 0;
  int out_of_order = 0;
  while (received < kPublishers * kPerPublisher) {
    {
      MutexLock lock(&mu);
      while (woken == 0) cv.Wait(&mu);
      woken = 0;
    }
    Change c;
    while (w->Next(&c)) {
      const int p = c.key[1] - '0';
      if (c.version != last[p] + 1) ++out_of_order;
      last[p] = c.version;
      ++received;
    }
  }
  for (std::thread& t : publishers) t.join();
  unsubscriber.join();
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(last, std::vector<uint64_t>(kPublishers, kPerPublisher));
  Change c;
  EXPECT_FALSE(w->Next(&c));
  EXPECT_TRUE(w->status().ok());
  EXPECT_EQ(hub.watcher_count(), 1u);
}

}  // namespace
}  // namespace cachecar::service
