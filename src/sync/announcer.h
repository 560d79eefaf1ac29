// Announcer: the writer's fast path (docs/DESIGN.md "Put", C6). After a
// write commits, the writer publishes its event at once and, when the broker
// acknowledges it, retires the write's outbox entry (in batches, on a thread
// of its own). A failed publish leaves the entry for the outbox relay
// (sync/outbox_relay.h). The retire linger is measured on the injected
// Clock (under a ManualClock, a batch lingers until the clock is advanced,
// it fills, or the Announcer stops).
//
// Thread-safety: Announce may be called from any thread.
#ifndef CACHECAR_SYNC_ANNOUNCER_H_
#define CACHECAR_SYNC_ANNOUNCER_H_

#include <atomic>
#include <cstdint>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "common/mutex.h"
#include "store/store.h"
#include "sync/sync.h"

namespace cachecar::sync {

class Announcer {
 public:
  // `outbox` may be null (nothing to retire). All must outlive this.
  Announcer(Sync& sync, store::Outbox* outbox, const Clock& clock = Clock::Real());
  ~Announcer();  // retires what was acknowledged so far, then stops

  // Publishes `event`; with `retire`, its outbox entry (by version) is
  // deleted once the broker has it.
  void Announce(const Event& event, bool retire);

  uint64_t retired() const { return retired_.load(); }

 private:
  void RetireLoop();

  Sync& sync_;
  store::Outbox* const outbox_;
  const Clock& clock_;
  Mutex mu_;
  CondVar wake_;
  std::vector<uint64_t> to_retire_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> retired_{0};
  std::thread thread_;
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_ANNOUNCER_H_
