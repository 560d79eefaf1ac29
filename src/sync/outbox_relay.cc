// See outbox_relay.h.
#include "sync/outbox_relay.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace cachecar::sync {
namespace {

constexpr size_t kMaxCandidates = 64;
// Between tries for a lease: from the first to the most (with jitter).
constexpr absl::Duration kFirstTry = absl::Milliseconds(250);
constexpr absl::Duration kMostBetweenTries = absl::Seconds(10);
// A holder that could not publish a watermark this long gives the lease
// up for this long, so a replica that can reach the broker takes over.
constexpr int kGiveUpAfterTtls = 3;
constexpr absl::Duration kStayOutAfterGivingUp = absl::Seconds(10);
// Rechecking a due watermark's candidate: first wait, longest wait.
constexpr absl::Duration kRecheckFirst = absl::Milliseconds(5);
constexpr absl::Duration kRecheckMost = absl::Milliseconds(80);

// Counts acknowledgements of one batch (or one watermark round).
struct BatchWait {
  Mutex mu;
  CondVar done;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  absl::Status first_error ABSL_GUARDED_BY(mu);

  // Until every acknowledgement came, `bound` has passed (real time: it
  // bounds a wait for the broker), or `stopping`; in slices, so Stop() need
  // not wait out a broker that does not answer.
  absl::Status Wait(const std::atomic<bool>& stopping, size_t of, absl::Duration bound) {
    const absl::Time deadline = absl::Now() + bound;
    MutexLock lock(&mu);
    while (pending > 0 && absl::Now() < deadline && !stopping.load()) {
      const absl::Time slice = std::min(deadline, absl::Now() + absl::Milliseconds(100));
      done.WaitUntil(&mu, absl::ToChronoTime(slice));
    }
    if (pending > 0) {
      return absl::DeadlineExceededError(
          absl::StrCat(pending, " of ", of, " unacknowledged after ", absl::FormatDuration(bound)));
    }
    return first_error;
  }
  void Done(const absl::Status& status) {
    MutexLock lock(&mu);
    if (!status.ok() && first_error.ok()) first_error = status;
    if (--pending == 0) done.SignalAll();
  }
};

}  // namespace

Event EventFromOutbox(const store::OutboxEntry& entry, const std::string& origin) {
  Event e;
  e.ns = entry.ns;
  e.key = entry.key;
  e.version = entry.version;
  e.op = entry.op;  // both are ChangeOp
  if (e.op == Op::kUpsert) e.value = entry.value;
  e.origin = origin;
  e.committed = entry.created;
  return e;
}

OutboxRelay::OutboxRelay(store::Outbox& outbox, Sync& sync, RelayOptions options,
                         const Clock& clock)
    : outbox_(outbox),
      sync_(sync),
      options_(std::move(options)),
      clock_(clock),
      backoff_(kFirstTry),
      rng_(std::random_device{}()) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  stopping_.store(true);
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
  if (holding_.exchange(false)) {
    if (absl::Status s = outbox_.ReleaseLease(options_.holder); !s.ok()) {
      spdlog::debug("outbox relay: could not give the lease up: {}", std::string(s.message()));
    } else {
      spdlog::info("outbox relay: lease given up");
    }
  }
}

absl::Status OutboxRelay::PublishAll(const std::vector<store::OutboxEntry>& entries) {
  auto wait = std::make_shared<BatchWait>();
  {
    MutexLock lock(&wait->mu);
    wait->pending = entries.size();
  }
  for (const store::OutboxEntry& entry : entries) {
    sync_.Publish(EventFromOutbox(entry, options_.origin),
                  [wait](const absl::Status& status) { wait->Done(status); });
  }
  return wait->Wait(stopping_, entries.size(), options_.publish_wait);
}

bool OutboxRelay::WatermarkDue() const {
  return clock_.Now() - last_watermark_ >= options_.watermark_interval;
}

absl::StatusOr<size_t> OutboxRelay::RunOnce() {
  absl::StatusOr<store::OutboxSnapshot> snapshot = outbox_.Snapshot(options_.batch);
  if (!snapshot.ok()) return snapshot.status();
  std::set<int64_t> present;
  int64_t last_listed = 0;
  std::vector<int64_t> due;
  for (const store::OutboxEntry& e : snapshot->entries) {
    present.insert(e.id);
    last_listed = std::max(last_listed, e.id);
    // Nobody else will publish it, or its writer had its chance.
    if (!e.announced || snapshot->as_of - e.created >= options_.min_age) due.push_back(e.id);
  }
  // Entries a candidate waited for are gone unless listed (beyond the
  // listed range, an incomplete snapshot says nothing).
  for (Candidate& c : candidates_) {
    for (auto it = c.waiting.begin(); it != c.waiting.end();) {
      const bool decided = snapshot->complete || *it <= last_listed;
      it = decided && present.count(*it) == 0 ? c.waiting.erase(it) : std::next(it);
    }
  }
  size_t relayed = 0;
  if (!due.empty()) {
    absl::StatusOr<std::vector<int64_t>> done = outbox_.Relay(
        due,
        [this](const std::vector<store::OutboxEntry>& entries) { return PublishAll(entries); });
    if (!done.ok()) {
      if (failing_since_ == absl::InfinitePast()) failing_since_ = clock_.Now();
      return done.status();
    }
    failing_since_ = absl::InfinitePast();
    relayed = done->size();
    relayed_.fetch_add(relayed);
    for (int64_t id : *done) {
      present.erase(id);
      for (Candidate& c : candidates_) c.waiting.erase(id);
    }
  }
  if (snapshot->complete) {
    candidates_.push_back(Candidate{snapshot->as_of, std::move(present)});
    if (candidates_.size() > kMaxCandidates) candidates_.pop_front();
  }
  MaybePublishWatermark();
  return relayed;
}

void OutboxRelay::MaybePublishWatermark() {
  if (!WatermarkDue()) return;
  int newest = -1;
  for (size_t i = 0; i < candidates_.size(); ++i) {
    if (candidates_[i].waiting.empty()) newest = static_cast<int>(i);
  }
  if (newest < 0) return;
  Watermark w;
  w.relay = options_.holder;
  w.as_of = candidates_[newest].as_of;
  candidates_.erase(candidates_.begin(), candidates_.begin() + newest + 1);
  auto wait = std::make_shared<BatchWait>();
  {
    MutexLock lock(&wait->mu);
    wait->pending = 1;
  }
  last_watermark_ = clock_.Now();
  sync_.PublishWatermark(w, [wait](const absl::Status& status) { wait->Done(status); });
  const absl::Status s = wait->Wait(stopping_, 1, options_.publish_wait);
  if (!s.ok()) {
    spdlog::debug("outbox relay: watermark not published: {}", std::string(s.message()));
    if (failing_since_ == absl::InfinitePast()) failing_since_ = clock_.Now();
    return;
  }
  watermarks_.fetch_add(1);
  failing_since_ = absl::InfinitePast();
}

bool OutboxRelay::MaintainLease() {
  const absl::Time now = clock_.Now();
  return holding_.load() ? KeepLease(now) : TryTakeLease(now);
}

bool OutboxRelay::KeepLease(absl::Time now) {
  if (now >= renew_at_) {
    absl::StatusOr<bool> held =
        outbox_.HoldLease(options_.holder, options_.leases, options_.lease_ttl);
    if (held.ok() && *held) {
      // The store set the expiry after we asked: ours ends before it.
      lease_valid_until_ = now + options_.lease_ttl - options_.lease_ttl / 10;
      renew_at_ = now + options_.lease_ttl / 4;
    } else if (held.ok()) {
      holding_.store(false);
      spdlog::warn(
          "outbox relay: the lease expired before it was renewed (was this replica paused or "
          "cut off from PostgreSQL?); another replica may relay now");
    } else {
      renew_at_ = now + absl::Milliseconds(100);
    }
  }
  if (holding_.load() && now >= lease_valid_until_) {
    holding_.store(false);
    spdlog::warn("outbox relay: could not renew the lease in time; stopped relaying");
  }
  // Publishing keeps failing here (not: nothing to publish, or a
  // watermark waiting for writers): let a replica that reaches Kafka try.
  const absl::Duration give_up = options_.lease_ttl * kGiveUpAfterTtls;
  if (holding_.load() && failing_since_ != absl::InfinitePast() &&
      now - std::max(held_since_, failing_since_) > give_up) {
    holding_.store(false);
    failing_since_ = absl::InfinitePast();
    outbox_.ReleaseLease(options_.holder).IgnoreError();
    next_try_ = now + kStayOutAfterGivingUp;
    spdlog::warn(
        "outbox relay: publishing to Kafka has failed for {}; lease given up so that a "
        "replica that can reach Kafka relays instead",
        absl::FormatDuration(give_up));
  }
  if (!holding_.load()) candidates_.clear();
  return holding_.load();
}

bool OutboxRelay::TryTakeLease(absl::Time now) {
  if (!options_.relays_seen || now < next_try_) return false;
  auto jittered = [this](absl::Duration d) {
    return d * std::uniform_real_distribution<double>(0.5, 1.5)(rng_);
  };
  if (options_.relays_seen(now - options_.takeover_after) >= options_.leases) {
    backoff_ = kFirstTry;
    next_try_ = now + jittered(kFirstTry);
    return false;
  }
  // Relays are missing. Ask cheaply first; a crowd of replicas spreads its
  // tries out with the jittered backoff.
  absl::StatusOr<bool> available = outbox_.LeaseAvailable(options_.leases);
  if (available.ok() && *available) {
    absl::StatusOr<bool> held =
        outbox_.HoldLease(options_.holder, options_.leases, options_.lease_ttl);
    if (held.ok() && *held) {
      holding_.store(true);
      held_since_ = now;
      lease_valid_until_ = now + options_.lease_ttl - options_.lease_ttl / 10;
      renew_at_ = now + options_.lease_ttl / 4;
      last_watermark_ = absl::InfinitePast();
      backoff_ = kFirstTry;
      spdlog::info("outbox relay: took a relay lease ({} of them); relaying as {}", options_.leases,
                   options_.holder);
      return true;
    }
  } else if (!available.ok()) {
    spdlog::debug("outbox relay: cannot ask for a lease: {}",
                  std::string(available.status().message()));
  }
  next_try_ = now + jittered(backoff_);
  backoff_ = std::min(backoff_ * 2, kMostBetweenTries);
  return false;
}

void OutboxRelay::Loop() {
  absl::Duration recheck = kRecheckFirst;
  while (!stop_.HasBeenNotified()) {
    if (!MaintainLease()) {
      const absl::Duration wait =
          std::clamp(next_try_ - clock_.Now(), absl::Milliseconds(10), absl::Milliseconds(250));
      stop_.WaitForNotificationWithTimeout(wait);
      continue;
    }
    absl::StatusOr<size_t> n = RunOnce();
    if (!n.ok()) {
      spdlog::debug("outbox relay: {}", std::string(n.status().message()));
      stop_.WaitForNotificationWithTimeout(absl::Milliseconds(100));
      continue;
    }
    if (*n > 0) spdlog::debug("outbox relay: published {} outbox entries", *n);
    if (*n == options_.batch) continue;  // more are waiting
    if (WatermarkDue() && !candidates_.empty()) {
      // Writers are about to retire what the candidate waits for.
      stop_.WaitForNotificationWithTimeout(recheck);
      recheck = std::min(recheck * 2, kRecheckMost);
      continue;
    }
    recheck = kRecheckFirst;
    const absl::Time now = clock_.Now();
    const absl::Duration wait = std::clamp(
        std::min(last_watermark_ + options_.watermark_interval, renew_at_) - now,
        absl::Milliseconds(1), std::max(absl::Milliseconds(1), options_.watermark_interval));
    outbox_.WaitForNew(wait);
  }
}

}  // namespace cachecar::sync
