// See readiness_monitor.h.
#include "service/readiness_monitor.h"

namespace cachecar::service {

ReadinessMonitor::ReadinessMonitor(store::Store& store, absl::Duration interval, OnChange on_change,
                                   std::function<absl::Status()> extra_check,
                                   absl::Duration extra_interval)
    : store_(store),
      interval_(interval),
      on_change_(std::move(on_change)),
      extra_check_(std::move(extra_check)),
      extra_interval_(extra_interval) {
  CheckOnce(true);
  thread_ = std::thread([this] { Loop(); });
}

ReadinessMonitor::~ReadinessMonitor() {
  stop_.Notify();
  thread_.join();
}

bool ReadinessMonitor::ready() const {
  MutexLock lock(&mu_);
  return ready_;
}

void ReadinessMonitor::CheckOnce(bool ask_store) {
  if (ask_store) {
    store::CallOptions options;
    // A check slower than the interval counts as a failure.
    options.deadline = absl::Now() + std::max(interval_, absl::Milliseconds(100));
    store_status_ = store_.CheckHealth(options);
  }
  absl::Status status = store_status_;
  if (status.ok() && extra_check_) status = extra_check_();
  bool changed = false;
  {
    MutexLock lock(&mu_);
    changed = !known_ || ready_ != status.ok();
    known_ = true;
    ready_ = status.ok();
  }
  if (changed) on_change_(status.ok(), status);
}

void ReadinessMonitor::Loop() {
  const absl::Duration tick = extra_check_ ? std::min(interval_, extra_interval_) : interval_;
  absl::Time store_due = absl::Now() + interval_;
  while (!stop_.WaitForNotificationWithTimeout(tick)) {
    const bool ask_store = absl::Now() >= store_due;
    if (ask_store) store_due = absl::Now() + interval_;
    CheckOnce(ask_store);
  }
}

}  // namespace cachecar::service
