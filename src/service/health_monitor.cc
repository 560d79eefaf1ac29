// See health_monitor.h.
#include "service/health_monitor.h"

#include "absl/strings/str_cat.h"

namespace cachecar::service {

absl::Status ProgressWatch::Check(uint64_t completed, size_t queued, absl::Time now) {
  if (completed != last_completed_ || queued == 0 || progress_at_ == absl::InfinitePast()) {
    last_completed_ = completed;
    progress_at_ = now;
    return absl::OkStatus();
  }
  if (now - progress_at_ < stuck_after_) return absl::OkStatus();
  return absl::UnavailableError(
      absl::StrCat("wedged: ", queued, " store calls are queued and no worker has finished one in ",
                   absl::FormatDuration(absl::Trunc(now - progress_at_, absl::Seconds(1)))));
}

void HealthMonitor::State::Update(const absl::Status& status, const OnChange& report) {
  const bool changed = !known || ok != status.ok();
  known = true;
  ok = status.ok();
  if (changed && report) report(status.ok(), status);
}

HealthMonitor::HealthMonitor(Checks checks, Reports reports, absl::Duration store_interval,
                             absl::Duration interval)
    : checks_(std::move(checks)),
      reports_(std::move(reports)),
      store_interval_(store_interval),
      interval_(interval) {
  CheckStore();
  CheckFast();
  store_thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(store_interval_)) CheckStore();
  });
  fast_thread_ = std::thread([this] {
    while (!stop_.WaitForNotificationWithTimeout(interval_)) CheckFast();
  });
}

HealthMonitor::~HealthMonitor() {
  stop_.Notify();
  store_thread_.join();
  fast_thread_.join();
}

void HealthMonitor::CheckStore() {
  if (checks_.store) store_.Update(checks_.store(), reports_.store);
}

void HealthMonitor::CheckFast() {
  process_.Update(checks_.process ? checks_.process() : absl::OkStatus(), reports_.process);
  if (checks_.sync) sync_.Update(checks_.sync(), reports_.sync);
}

}  // namespace cachecar::service
