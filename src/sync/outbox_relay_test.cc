// The writer's fast path (Announcer) and the OutboxRelay against a fake
// Sync and a fake Outbox: entries leave the outbox only once the broker
// acknowledged them.
#include "sync/outbox_relay.h"

#include <map>

#include "gtest/gtest.h"

namespace cachecar::sync {
namespace {

enum class Ack { kOk, kFail, kNever };

class FakeSync final : public Sync {
 public:
  Ack ack = Ack::kOk;
  std::vector<Event> published;
  std::vector<Delivered> held;  // for Ack::kNever

  void Start(EventSink&) override {}
  void Stop(absl::Duration) override {}
  void Publish(const Event& event, Delivered delivered) override {
    published.push_back(event);
    if (ack == Ack::kNever) {
      held.push_back(std::move(delivered));
      return;
    }
    if (delivered) {
      delivered(ack == Ack::kOk ? absl::OkStatus() : absl::UnavailableError("broker down"));
    }
  }
  bool positioned() const override { return true; }
  absl::Time fresh_as_of() const override { return absl::Now(); }
  SyncStats Stats() const override { return {}; }
  absl::string_view replica_id() const override { return "fake"; }
};

class FakeOutbox final : public store::Outbox {
 public:
  std::map<uint64_t, store::OutboxEntry> entries;  // by version
  Mutex mu;
  CondVar retired_cv;
  std::vector<uint64_t> retired ABSL_GUARDED_BY(mu);

  void Add(uint64_t version, store::OutboxEntry::Op op, std::optional<std::string> value) {
    store::OutboxEntry e;
    e.ns = "ns";
    e.key = "k" + std::to_string(version);
    e.version = version;
    e.op = op;
    e.value = std::move(value);
    e.created = absl::FromUnixSeconds(1);
    entries[version] = e;
  }
  absl::StatusOr<size_t> Relay(absl::Duration, size_t limit, const Publish& publish) override {
    std::vector<store::OutboxEntry> claimed;
    for (const auto& [v, e] : entries) {
      if (claimed.size() == limit) break;
      claimed.push_back(e);
    }
    if (claimed.empty()) return size_t{0};
    if (absl::Status s = publish(claimed); !s.ok()) return s;
    for (const auto& e : claimed) entries.erase(e.version);
    return claimed.size();
  }
  absl::Status Retire(const std::vector<uint64_t>& versions) override {
    MutexLock lock(&mu);
    for (uint64_t v : versions) retired.push_back(v);
    retired_cv.SignalAll();
    return absl::OkStatus();
  }
  void WaitForNew(absl::Duration) override {}
  std::vector<uint64_t> WaitForRetired(size_t n) {
    MutexLock lock(&mu);
    const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(10);
    while (retired.size() < n && std::chrono::system_clock::now() < deadline) {
      retired_cv.WaitUntil(&mu, deadline);
    }
    return retired;
  }
};

RelayOptions Options() {
  RelayOptions o;
  o.origin = "relay/test";
  o.publish_wait = absl::Milliseconds(200);
  o.batch = 2;
  return o;
}

TEST(OutboxRelayTest, PublishesThenDeletes) {
  FakeSync sync;
  FakeOutbox outbox;
  outbox.Add(7, store::OutboxEntry::Op::kUpsert, "small");
  outbox.Add(8, store::OutboxEntry::Op::kDelete, std::nullopt);
  outbox.Add(9, store::OutboxEntry::Op::kFlush, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);  // one batch
  ASSERT_EQ(sync.published.size(), 2u);
  EXPECT_EQ(sync.published[0].version, 7u);
  EXPECT_EQ(sync.published[0].op, Op::kUpsert);
  EXPECT_EQ(sync.published[0].value, "small");
  EXPECT_EQ(sync.published[0].origin, "relay/test");
  EXPECT_EQ(sync.published[1].op, Op::kDelete);
  EXPECT_EQ(outbox.entries.size(), 1u);
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.published.back().op, Op::kFlush);
  EXPECT_TRUE(outbox.entries.empty());
  EXPECT_EQ(relay.relayed(), 3u);
}

TEST(OutboxRelayTest, FailedPublishKeepsTheEntries) {
  FakeSync sync;
  sync.ack = Ack::kFail;
  FakeOutbox outbox;
  outbox.Add(7, store::OutboxEntry::Op::kUpsert, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(outbox.entries.size(), 1u);
}

TEST(OutboxRelayTest, UnacknowledgedPublishKeepsTheEntries) {
  FakeSync sync;
  sync.ack = Ack::kNever;
  FakeOutbox outbox;
  outbox.Add(7, store::OutboxEntry::Op::kUpsert, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(outbox.entries.size(), 1u);
  // A late acknowledgement after the relay gave up is harmless.
  for (auto& d : sync.held) d(absl::OkStatus());
}

TEST(AnnouncerTest, RetiresAcknowledgedWrites) {
  FakeSync sync;
  FakeOutbox outbox;
  Announcer announcer(sync, &outbox);
  announcer.Announce(Event{"ns", "a", 11, Op::kUpsert, "v", "r", absl::Now()}, true);
  announcer.Announce(Event{"ns", "b", 12, Op::kDelete, std::nullopt, "r", absl::Now()}, true);
  EXPECT_EQ(outbox.WaitForRetired(2), (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(sync.published.size(), 2u);
}

TEST(AnnouncerTest, FailedPublishIsLeftForTheRelay) {
  FakeSync sync;
  sync.ack = Ack::kFail;
  FakeOutbox outbox;
  {
    Announcer announcer(sync, &outbox);
    announcer.Announce(Event{"ns", "a", 11, Op::kUpsert, "v", "r", absl::Now()}, true);
  }  // the destructor drains the retire queue
  MutexLock lock(&outbox.mu);
  EXPECT_TRUE(outbox.retired.empty());
}

TEST(AnnouncerTest, BroadcastsAreNotRetired) {
  FakeSync sync;
  FakeOutbox outbox;
  {
    Announcer announcer(sync, &outbox);
    announcer.Announce(Event{"ns", "a", 0, Op::kInvalidate, std::nullopt, "r", absl::Now()}, false);
  }
  EXPECT_EQ(sync.published.size(), 1u);
  MutexLock lock(&outbox.mu);
  EXPECT_TRUE(outbox.retired.empty());
}

}  // namespace
}  // namespace cachecar::sync
