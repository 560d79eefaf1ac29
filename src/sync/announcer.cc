// See announcer.h.
#include "sync/announcer.h"

#include <algorithm>
#include <string>

#include "spdlog/spdlog.h"

namespace cachecar::sync {
namespace {

constexpr size_t kRetireBatch = 1000;
// Acknowledged writes wait this long for others to share their retiring
// DELETE: at one write in flight, one DELETE per ~10 writes instead of one
// each. (A relay's watermark waits for the retirement, so this is also how
// much later it can be published.)
constexpr absl::Duration kRetireLinger = absl::Milliseconds(5);

}  // namespace

Announcer::Announcer(Sync& sync, store::Outbox* outbox, const Clock& clock)
    : sync_(sync), outbox_(outbox), clock_(clock) {
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
  sync_.Publish(event, [this, version](const absl::Status& status) {
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
      const absl::Time until = clock_.Now() + kRetireLinger;
      for (absl::Time now = clock_.Now();
           to_retire_.size() < kRetireBatch && !stopping_ && now < until; now = clock_.Now()) {
        // The CondVar waits in real time, for what is left on clock_.
        wake_.WaitUntil(&mu_, absl::ToChronoTime(absl::Now() + (until - now)));
      }
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

}  // namespace cachecar::sync
