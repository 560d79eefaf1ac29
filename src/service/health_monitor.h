// HealthMonitor: what the health names say (docs/DESIGN.md "Availability
// rules"), each checked on a timer and reported to a callback on the first
// answer and on every change:
//   process  this replica can answer calls correctly, from its cache or by
//            bypass: the `process` check (a wedged worker pool, see
//            ProgressWatch) says nothing is stuck. Readiness follows it and
//            nothing else: a shared dependency being down must not take
//            every pod of every app out of its Service at once.
//   store    the store answers its health check (PostgreSQL: SELECT 1), on
//            a thread of its own since the check may block (bounded).
//   sync     the sync check passes (positioned, and the relays' watermarks
//            show this replica within max_staleness); null without a sync
//            topic.
//
// Thread-safety: callbacks run on the monitor's threads; the store callback
// on its own thread, the others on another.
#ifndef CACHECAR_SERVICE_HEALTH_MONITOR_H_
#define CACHECAR_SERVICE_HEALTH_MONITOR_H_

#include <cstdint>
#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace cachecar::service {

// Tells a wedged worker pool from a busy one: wedged = work has been
// queued and no task has finished for `stuck_after`.
class ProgressWatch {
 public:
  explicit ProgressWatch(absl::Duration stuck_after) : stuck_after_(stuck_after) {}
  // `completed` tasks so far, `queued` waiting now, at local time `now`.
  // One caller thread.
  absl::Status Check(uint64_t completed, size_t queued, absl::Time now);

 private:
  const absl::Duration stuck_after_;
  uint64_t last_completed_ = 0;
  absl::Time progress_at_ = absl::InfinitePast();  // last completion, or idle
};

class HealthMonitor {
 public:
  using Check = std::function<absl::Status()>;
  using OnChange = std::function<void(bool ok, const absl::Status& why)>;
  struct Checks {
    Check process;  // cheap
    Check store;    // may block, bounded by its own deadline
    Check sync;     // cheap; null: no sync topic
  };
  struct Reports {
    OnChange process, store, sync;
  };

  // Checks each once before returning (so the first states are known at
  // start), then `store` every `store_interval` and the others every
  // `interval`.
  HealthMonitor(Checks checks, Reports reports, absl::Duration store_interval = absl::Seconds(1),
                absl::Duration interval = absl::Milliseconds(200));
  ~HealthMonitor();  // stops the threads
  HealthMonitor(const HealthMonitor&) = delete;
  HealthMonitor& operator=(const HealthMonitor&) = delete;

 private:
  // The last answer of one check; reports changes.
  struct State {
    bool known = false;
    bool ok = false;
    void Update(const absl::Status& status, const OnChange& report);
  };
  void CheckStore();
  void CheckFast();

  const Checks checks_;
  const Reports reports_;
  const absl::Duration store_interval_, interval_;
  State store_, process_, sync_;  // each touched by one thread
  Notification stop_;
  std::thread store_thread_, fast_thread_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_HEALTH_MONITOR_H_
