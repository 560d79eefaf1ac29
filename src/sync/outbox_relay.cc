// See outbox_relay.h.
#include "sync/outbox_relay.h"

#include <memory>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"

namespace cachecar::sync {
namespace {

constexpr size_t kRetireBatch = 1000;

Op OpOf(store::OutboxEntry::Op op) {
  switch (op) {
    case store::OutboxEntry::Op::kUpsert:
      return Op::kUpsert;
    case store::OutboxEntry::Op::kDelete:
      return Op::kDelete;
    case store::OutboxEntry::Op::kInvalidate:
      return Op::kInvalidate;
    case store::OutboxEntry::Op::kFlush:
      return Op::kFlush;
  }
  return Op::kInvalidate;
}

// Counts acknowledgements of one relay batch.
struct BatchWait {
  Mutex mu;
  CondVar done;
  size_t pending ABSL_GUARDED_BY(mu) = 0;
  absl::Status first_error ABSL_GUARDED_BY(mu);
};

}  // namespace

Event EventFromOutbox(const store::OutboxEntry& entry, const std::string& origin) {
  Event e;
  e.ns = entry.ns;
  e.key = entry.key;
  e.version = entry.version;
  e.op = OpOf(entry.op);
  if (e.op == Op::kUpsert) e.value = entry.value;
  e.origin = origin;
  e.committed = entry.created;
  return e;
}

Announcer::Announcer(Sync& sync, store::Outbox* outbox) : sync_(sync), outbox_(outbox) {
  if (outbox_ != nullptr) thread_ = std::thread([this] { RetireLoop(); });
}

Announcer::~Announcer() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
  }
  wake_.SignalAll();
  if (thread_.joinable()) thread_.join();
}

void Announcer::Announce(const Event& event, bool retire) {
  if (!retire || outbox_ == nullptr) {
    sync_.Publish(event, nullptr);
    return;
  }
  const uint64_t version = event.version;
  sync_.Publish(event, [this, version](absl::Status status) {
    if (!status.ok()) return;  // the relay publishes it instead
    {
      MutexLock lock(&mu_);
      to_retire_.push_back(version);
    }
    wake_.Signal();
  });
}

void Announcer::RetireLoop() {
  for (;;) {
    std::vector<uint64_t> batch;
    {
      MutexLock lock(&mu_);
      while (to_retire_.empty() && !stopping_) wake_.Wait(&mu_);
      if (to_retire_.empty()) return;  // stopping, nothing left
      const size_t n = std::min(kRetireBatch, to_retire_.size());
      batch.assign(to_retire_.begin(), to_retire_.begin() + n);
      to_retire_.erase(to_retire_.begin(), to_retire_.begin() + n);
    }
    if (absl::Status s = outbox_->Retire(batch); !s.ok()) {
      // Left for the relays; publishing them again is harmless.
      spdlog::debug("outbox: could not retire {} entries: {}", batch.size(),
                    std::string(s.message()));
    } else {
      retired_.fetch_add(batch.size());
    }
  }
}

OutboxRelay::OutboxRelay(store::Outbox& outbox, Sync& sync, RelayOptions options)
    : outbox_(outbox), sync_(sync), options_(std::move(options)) {}

OutboxRelay::~OutboxRelay() { Stop(); }

void OutboxRelay::Start() {
  thread_ = std::thread([this] { Loop(); });
}

void OutboxRelay::Stop() {
  stopping_.store(true);
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

absl::StatusOr<size_t> OutboxRelay::RunOnce() {
  auto publish = [this](const std::vector<store::OutboxEntry>& entries) -> absl::Status {
    auto wait = std::make_shared<BatchWait>();
    {
      MutexLock lock(&wait->mu);
      wait->pending = entries.size();
    }
    for (const store::OutboxEntry& entry : entries) {
      sync_.Publish(EventFromOutbox(entry, options_.origin), [wait](absl::Status status) {
        MutexLock lock(&wait->mu);
        if (!status.ok() && wait->first_error.ok()) wait->first_error = status;
        if (--wait->pending == 0) wait->done.SignalAll();
      });
    }
    const absl::Time deadline = absl::Now() + options_.publish_wait;
    MutexLock lock(&wait->mu);
    // In slices, so Stop() need not wait out a broker that does not answer.
    while (wait->pending > 0 && absl::Now() < deadline && !stopping_.load()) {
      const absl::Time slice = std::min(deadline, absl::Now() + absl::Milliseconds(100));
      wait->done.WaitUntil(&wait->mu, absl::ToChronoTime(slice));
    }
    if (wait->pending > 0) {
      return absl::DeadlineExceededError(absl::StrCat(wait->pending, " of ", entries.size(),
                                                      " outbox events unacknowledged after ",
                                                      absl::FormatDuration(options_.publish_wait)));
    }
    return wait->first_error;
  };
  absl::StatusOr<size_t> n = outbox_.Relay(options_.min_age, options_.batch, publish);
  if (n.ok()) relayed_.fetch_add(*n);
  return n;
}

void OutboxRelay::Loop() {
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<size_t> n = RunOnce();
    if (!n.ok()) {
      spdlog::debug("outbox relay: {}", std::string(n.status().message()));
    } else if (*n > 0) {
      spdlog::debug("outbox relay: published {} outbox entries nobody had announced", *n);
      if (*n == options_.batch) continue;  // more are waiting
    }
    outbox_.WaitForNew(options_.poll);
    // Give writers min_age to retire their own entries.
    stop_.WaitForNotificationWithTimeout(options_.min_age);
  }
}

}  // namespace cachecar::sync
