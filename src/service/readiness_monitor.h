// ReadinessMonitor: ready = the store can be reached (asked once at start,
// then every `interval`) and, with a sync topic, the extra check passes (the
// consumer is positioned and within max_staleness; asked every
// `extra_interval`, it must be cheap). Reports each change (and the first
// answer) to a callback.
//
// Thread-safety: the callback runs on the monitor's own thread.
#ifndef CACHECAR_SERVICE_READINESS_MONITOR_H_
#define CACHECAR_SERVICE_READINESS_MONITOR_H_

#include <functional>
#include <thread>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "store/store.h"

namespace cachecar::service {

class ReadinessMonitor {
 public:
  // `on_change(ready, why)`: why is the store's error when not ready.
  using OnChange = std::function<void(bool ready, const absl::Status& why)>;

  // Checks once before returning (so the first state is known at start),
  // then every `interval` on a thread of its own.
  ReadinessMonitor(store::Store& store, absl::Duration interval, OnChange on_change,
                   std::function<absl::Status()> extra_check = nullptr,
                   absl::Duration extra_interval = absl::Milliseconds(200));
  ~ReadinessMonitor();  // stops the thread
  ReadinessMonitor(const ReadinessMonitor&) = delete;
  ReadinessMonitor& operator=(const ReadinessMonitor&) = delete;

  bool ready() const;

 private:
  void CheckOnce(bool ask_store);
  void Loop();

  store::Store& store_;
  const absl::Duration interval_;
  const OnChange on_change_;
  const std::function<absl::Status()> extra_check_;
  const absl::Duration extra_interval_;
  absl::Status store_status_;  // the monitor thread's (and the constructor's)
  Notification stop_;
  mutable Mutex mu_;
  bool known_ ABSL_GUARDED_BY(mu_) = false;
  bool ready_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_READINESS_MONITOR_H_
