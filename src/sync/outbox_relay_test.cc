// The writer's fast path (Announcer) and the OutboxRelay against a fake
// Sync and a fake Outbox: entries leave the outbox only once the broker
// acknowledged them; other programs' writes are published at once, a
// cachecar writer's only after min_age; a watermark is published only once
// every entry its snapshot listed is gone, and carries that snapshot's
// time; the lease is taken only while relays are missing and given up on
// Stop. The relay's own time is a ManualClock where a test depends on it.
#include "sync/outbox_relay.h"

#include <atomic>
#include <functional>
#include <map>
#include <set>

#include "common/clock.h"
#include "gtest/gtest.h"
#include "sync/announcer.h"

namespace cachecar::sync {
namespace {

enum class Ack { kOk, kFail, kNever };

class FakeSync final : public Sync {
 public:
  Mutex mu;
  Ack ack ABSL_GUARDED_BY(mu) = Ack::kOk;
  std::vector<Event> published ABSL_GUARDED_BY(mu);
  std::vector<Watermark> watermarks ABSL_GUARDED_BY(mu);
  std::vector<Delivered> held ABSL_GUARDED_BY(mu);  // for Ack::kNever

  void Start(EventSink&) override {}
  void Stop(absl::Duration) override {}
  void Publish(const Event& event, Delivered delivered) override {
    Ack how;
    {
      MutexLock lock(&mu);
      published.push_back(event);
      how = ack;
      if (how == Ack::kNever) {
        held.push_back(std::move(delivered));
        return;
      }
    }
    if (delivered) {
      delivered(how == Ack::kOk ? absl::OkStatus() : absl::UnavailableError("broker down"));
    }
  }
  void PublishWatermark(Watermark w, Delivered delivered) override {
    Ack how;
    {
      MutexLock lock(&mu);
      how = ack;
      w.partitions = 3;
      if (how == Ack::kOk) watermarks.push_back(w);
    }
    if (how == Ack::kNever) return;
    delivered(how == Ack::kOk ? absl::OkStatus() : absl::UnavailableError("broker down"));
  }
  bool positioned() const override { return true; }
  absl::Time topic_fresh_as_of() const override { return absl::Now(); }
  SyncStats Stats() const override { return {}; }
  absl::string_view replica_id() const override { return "fake"; }
  void SetAck(Ack a) {
    MutexLock lock(&mu);
    ack = a;
  }
  std::vector<Event> Published() {
    MutexLock lock(&mu);
    return published;
  }
  std::vector<Watermark> Watermarks() {
    MutexLock lock(&mu);
    return watermarks;
  }
};

// The outbox: entries by id, a clock of its own (`now`), ids another relay
// holds locked, and lease slots.
class FakeOutbox final : public store::Outbox {
 public:
  Mutex mu;
  CondVar retired_cv;
  std::map<int64_t, store::OutboxEntry> entries ABSL_GUARDED_BY(mu);
  std::set<int64_t> locked ABSL_GUARDED_BY(mu);
  absl::Time now ABSL_GUARDED_BY(mu) = absl::FromUnixSeconds(1000);
  std::vector<uint64_t> retired ABSL_GUARDED_BY(mu);
  std::map<int, std::string> lease_holder ABSL_GUARDED_BY(mu);  // slot -> holder
  int lease_queries ABSL_GUARDED_BY(mu) = 0;
  int64_t next_id ABSL_GUARDED_BY(mu) = 1;

  // A change written `age` ago on the store's clock; its id.
  int64_t Add(uint64_t version, store::OutboxEntry::Op op, std::optional<std::string> value,
              bool announced = false, absl::Duration age = absl::ZeroDuration()) {
    MutexLock lock(&mu);
    store::OutboxEntry e;
    e.id = next_id++;
    e.ns = "ns";
    e.key = "k" + std::to_string(version);
    e.version = version;
    e.op = op;
    e.value = std::move(value);
    e.created = now - age;
    e.announced = announced;
    entries[e.id] = e;
    return e.id;
  }
  void Advance(absl::Duration d) {
    MutexLock lock(&mu);
    now += d;
  }
  void Remove(int64_t id) {  // the writer retired it
    MutexLock lock(&mu);
    entries.erase(id);
  }
  size_t size() {
    MutexLock lock(&mu);
    return entries.size();
  }
  absl::Time Now() {
    MutexLock lock(&mu);
    return now;
  }

  absl::StatusOr<store::OutboxSnapshot> Snapshot(size_t limit) override {
    MutexLock lock(&mu);
    store::OutboxSnapshot s;
    s.as_of = now;
    for (const auto& [id, e] : entries) {
      if (s.entries.size() == limit) {
        s.complete = false;
        break;
      }
      s.entries.push_back(e);
    }
    now += absl::Milliseconds(1);  // the store's clock moves on
    return s;
  }
  absl::StatusOr<std::vector<int64_t>> Relay(const std::vector<int64_t>& ids,
                                             const Publish& publish) override {
    std::vector<store::OutboxEntry> claimed;
    {
      MutexLock lock(&mu);
      for (int64_t id : ids) {
        auto it = entries.find(id);
        if (it != entries.end() && locked.count(id) == 0) claimed.push_back(it->second);
      }
    }
    std::vector<int64_t> out;
    if (claimed.empty()) return out;
    if (absl::Status s = publish(claimed); !s.ok()) return s;
    MutexLock lock(&mu);
    for (const auto& e : claimed) {
      entries.erase(e.id);
      out.push_back(e.id);
    }
    return out;
  }
  absl::StatusOr<std::vector<int64_t>> Present(const std::vector<int64_t>& ids) override {
    MutexLock lock(&mu);
    std::vector<int64_t> out;
    for (int64_t id : ids) {
      if (entries.count(id) > 0) out.push_back(id);
    }
    return out;
  }
  absl::Status Retire(const std::vector<uint64_t>& versions) override {
    MutexLock lock(&mu);
    for (uint64_t v : versions) retired.push_back(v);
    retired_cv.SignalAll();
    return absl::OkStatus();
  }
  void WaitForNew(absl::Duration timeout) override {
    absl::SleepFor(std::min(timeout, absl::Milliseconds(5)));
  }
  absl::StatusOr<bool> HoldLease(const std::string& holder, int slots, absl::Duration) override {
    MutexLock lock(&mu);
    ++lease_queries;
    for (int i = 0; i < slots; ++i) {
      if (lease_holder[i] == holder) return true;
    }
    for (int i = 0; i < slots; ++i) {
      if (lease_holder[i].empty()) {
        lease_holder[i] = holder;
        return true;
      }
    }
    return false;
  }
  absl::StatusOr<bool> LeaseAvailable(int slots) override {
    MutexLock lock(&mu);
    ++lease_queries;
    for (int i = 0; i < slots; ++i) {
      if (lease_holder[i].empty()) return true;
    }
    return false;
  }
  absl::Status ReleaseLease(const std::string& holder) override {
    MutexLock lock(&mu);
    for (auto& [slot, h] : lease_holder) {
      if (h == holder) h.clear();
    }
    return absl::OkStatus();
  }
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
  o.holder = "test/1";
  o.publish_wait = absl::Milliseconds(200);
  o.batch = 2;
  o.min_age = absl::Milliseconds(500);
  o.watermark_interval = absl::ZeroDuration();  // a watermark whenever one can be
  return o;
}

using Op_ = store::OutboxEntry::Op;

TEST(OutboxRelayTest, PublishesOtherProgramsWritesAtOnceThenDeletes) {
  FakeSync sync;
  FakeOutbox outbox;
  outbox.Add(7, Op_::kUpsert, "small");
  outbox.Add(8, Op_::kDelete, std::nullopt);
  outbox.Add(9, Op_::kFlush, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 2u);  // one batch
  std::vector<Event> published = sync.Published();
  ASSERT_EQ(published.size(), 2u);
  EXPECT_EQ(published[0].version, 7u);
  EXPECT_EQ(published[0].op, Op::kUpsert);
  EXPECT_EQ(published[0].value, "small");
  EXPECT_EQ(published[0].origin, "relay/test");
  EXPECT_EQ(published[1].op, Op::kDelete);
  EXPECT_EQ(outbox.size(), 1u);
  EXPECT_TRUE(sync.Watermarks().empty()) << "an incomplete snapshot promises nothing";
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.Published().back().op, Op::kFlush);
  EXPECT_EQ(outbox.size(), 0u);
  EXPECT_EQ(relay.relayed(), 3u);
  ASSERT_EQ(sync.Watermarks().size(), 1u) << "the outbox is empty: every write is on the topic";
}

TEST(OutboxRelayTest, ACachecarWritersEntryWaitsForItsWriterUntilMinAge) {
  FakeSync sync;
  FakeOutbox outbox;
  outbox.Add(7, Op_::kUpsert, "v", /*announced=*/true);
  OutboxRelay relay(outbox, sync, Options());
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_TRUE(sync.Published().empty()) << "its writer publishes it";
  outbox.Advance(absl::Milliseconds(600));  // the writer crashed after its commit
  ASSERT_TRUE(relay.RunOnce().ok());
  ASSERT_EQ(sync.Published().size(), 1u);
  EXPECT_EQ(sync.Published()[0].version, 7u);
  EXPECT_EQ(outbox.size(), 0u);
}

TEST(OutboxRelayTest, AWatermarkWaitsUntilEveryEntryOfItsSnapshotIsGoneAndCarriesItsTime) {
  FakeSync sync;
  FakeOutbox outbox;
  const int64_t in_flight = outbox.Add(7, Op_::kUpsert, "v", /*announced=*/true);
  OutboxRelay relay(outbox, sync, Options());
  const absl::Time first_snapshot = outbox.Now();
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_TRUE(sync.Watermarks().empty())
      << "write 7 committed before the snapshot and is not on the topic yet";
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_TRUE(sync.Watermarks().empty());
  outbox.Remove(in_flight);  // its writer's publish was acknowledged
  ASSERT_TRUE(relay.RunOnce().ok());
  std::vector<Watermark> w = sync.Watermarks();
  ASSERT_EQ(w.size(), 1u);
  EXPECT_EQ(w[0].as_of, outbox.Now() - absl::Milliseconds(1))
      << "the newest snapshot whose entries are all gone: the last one (empty)";
  EXPECT_GT(w[0].as_of, first_snapshot);
  EXPECT_EQ(w[0].relay, "test/1");
  EXPECT_TRUE(sync.Published().empty()) << "the relay did not publish the writer's event";
}

TEST(OutboxRelayTest, NoWatermarkWhileAnotherRelayHoldsAnEntry) {
  FakeSync sync;
  FakeOutbox outbox;
  const int64_t id = outbox.Add(7, Op_::kUpsert, "v");
  {
    MutexLock lock(&outbox.mu);
    outbox.locked.insert(id);  // another relay is publishing it
  }
  OutboxRelay relay(outbox, sync, Options());
  ASSERT_TRUE(relay.RunOnce().ok());
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_TRUE(sync.Published().empty());
  EXPECT_TRUE(sync.Watermarks().empty());
  outbox.Remove(id);  // it published and deleted it
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.Watermarks().size(), 1u);
}

TEST(OutboxRelayTest, WatermarksComeAtMostEveryInterval) {
  FakeSync sync;
  FakeOutbox outbox;
  ManualClock clock;
  RelayOptions o = Options();
  o.watermark_interval = absl::Hours(1);
  OutboxRelay relay(outbox, sync, o, clock);
  for (int i = 0; i < 5; ++i) ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.Watermarks().size(), 1u);
  clock.Advance(absl::Hours(1) - absl::Nanoseconds(1));
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.Watermarks().size(), 1u) << "the interval has not passed";
  clock.Advance(absl::Nanoseconds(1));
  ASSERT_TRUE(relay.RunOnce().ok());
  EXPECT_EQ(sync.Watermarks().size(), 2u) << "an hour after the first";
}

TEST(OutboxRelayTest, FailedPublishKeepsTheEntries) {
  FakeSync sync;
  sync.SetAck(Ack::kFail);
  FakeOutbox outbox;
  outbox.Add(7, Op_::kUpsert, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(outbox.size(), 1u);
  EXPECT_TRUE(sync.Watermarks().empty());
}

TEST(OutboxRelayTest, UnacknowledgedPublishKeepsTheEntries) {
  FakeSync sync;
  sync.SetAck(Ack::kNever);
  FakeOutbox outbox;
  outbox.Add(7, Op_::kUpsert, std::nullopt);
  OutboxRelay relay(outbox, sync, Options());
  absl::StatusOr<size_t> n = relay.RunOnce();
  EXPECT_EQ(n.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(outbox.size(), 1u);
  // A late acknowledgement after the relay gave up is harmless.
  std::vector<Sync::Delivered> held;
  {
    MutexLock lock(&sync.mu);
    held = std::move(sync.held);
  }
  for (auto& d : held) d(absl::OkStatus());
}

// Bounded polls of a running relay.
bool Eventually(const std::function<bool()>& done) {
  for (int i = 0; i < 500; ++i) {
    if (done()) return true;
    absl::SleepFor(absl::Milliseconds(10));
  }
  return done();
}

// The relay's clock stands still unless a test moves it: a relay that has
// looked at the relays once looks again only after its next try is due.
TEST(OutboxRelayLeaseTest, TakesALeaseOnlyWhileRelaysAreMissingAndGivesItUpOnStop) {
  FakeSync sync;
  FakeOutbox outbox;
  ManualClock clock;
  std::atomic<int> others{1};
  std::atomic<int> looked{0};
  RelayOptions o = Options();
  o.leases = 1;
  o.relays_seen = [&others, &looked](absl::Time) {
    ++looked;
    return others.load();
  };
  {
    OutboxRelay relay(outbox, sync, o, clock);
    relay.Start();
    ASSERT_TRUE(Eventually([&] { return looked.load() > 0; }));
    EXPECT_FALSE(relay.holds_lease()) << "another relay's watermarks arrive";
    {
      MutexLock lock(&outbox.mu);
      EXPECT_EQ(outbox.lease_queries, 0) << "nothing asks the store while relays are there";
    }
    others = 0;  // that relay died
    EXPECT_EQ(looked.load(), 1) << "the next try is not due on the relay's clock";
    clock.Advance(absl::Seconds(1));  // past it (at most 1.5 x 250 ms)
    ASSERT_TRUE(Eventually([&] { return relay.holds_lease(); }));
    ASSERT_TRUE(Eventually([&] { return !sync.Watermarks().empty(); }))
        << "a holder publishes watermarks";
    relay.Stop();
  }
  MutexLock lock(&outbox.mu);
  EXPECT_TRUE(outbox.lease_holder[0].empty()) << "Stop gives the lease up";
}

TEST(OutboxRelayLeaseTest, ACandidateThatFindsNoFreeLeaseDoesNotRelay) {
  FakeSync sync;
  FakeOutbox outbox;
  {
    MutexLock lock(&outbox.mu);
    outbox.lease_holder[0] = "someone else";
  }
  outbox.Add(7, Op_::kUpsert, "v");
  ManualClock clock;
  RelayOptions o = Options();
  o.leases = 1;
  o.relays_seen = [](absl::Time) { return 0; };  // e.g. Kafka is down for everyone
  OutboxRelay relay(outbox, sync, o, clock);
  relay.Start();
  ASSERT_TRUE(Eventually([&] {
    MutexLock lock(&outbox.mu);
    return outbox.lease_queries > 0;
  })) << "it asks for a lease";
  EXPECT_FALSE(relay.holds_lease());
  EXPECT_TRUE(sync.Published().empty());
  relay.Stop();
  MutexLock lock(&outbox.mu);
  EXPECT_EQ(outbox.lease_holder[0], "someone else");
}

TEST(AnnouncerTest, RetiresAcknowledgedWrites) {
  FakeSync sync;
  FakeOutbox outbox;
  Announcer announcer(sync, &outbox);
  announcer.Announce(Event{"ns", "a", 11, Op::kUpsert, "v", "r", absl::Now()}, true);
  announcer.Announce(Event{"ns", "b", 12, Op::kDelete, std::nullopt, "r", absl::Now()}, true);
  EXPECT_EQ(outbox.WaitForRetired(2), (std::vector<uint64_t>{11, 12}));
  EXPECT_EQ(sync.Published().size(), 2u);
}

TEST(AnnouncerTest, FailedPublishIsLeftForTheRelay) {
  FakeSync sync;
  sync.SetAck(Ack::kFail);
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
  EXPECT_EQ(sync.Published().size(), 1u);
  MutexLock lock(&outbox.mu);
  EXPECT_TRUE(outbox.retired.empty());
}

}  // namespace
}  // namespace cachecar::sync
