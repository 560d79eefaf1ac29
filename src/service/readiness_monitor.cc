// See readiness_monitor.h.
#include "service/readiness_monitor.h"

namespace cachecar::service {

ReadinessMonitor::ReadinessMonitor(store::Store& store, absl::Duration interval,
                                   OnChange on_change)
    : store_(store), interval_(interval), on_change_(std::move(on_change)) {
  CheckOnce();
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

void ReadinessMonitor::CheckOnce() {
  store::CallOptions options;
  // A check slower than the interval counts as a failure.
  options.deadline = absl::Now() + std::max(interval_, absl::Milliseconds(100));
  const absl::Status status = store_.CheckHealth(options);
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
  while (!stop_.WaitForNotificationWithTimeout(interval_)) CheckOnce();
}

}  // namespace cachecar::service
