// See clock_bound.h.
#include "sync/clock_bound.h"

#include <cmath>

#include "spdlog/spdlog.h"

namespace cachecar::sync {
namespace {

// How much a sample's bound on the offset has loosened by local time `now`.
int64_t DriftUs(int64_t sent_us, int64_t now_us) {
  const int64_t elapsed = std::max<int64_t>(0, now_us - sent_us);
  return static_cast<int64_t>(std::ceil(static_cast<double>(elapsed) * ClockBound::kMaxDriftRate));
}

}  // namespace

void ClockBound::OnSample(absl::Time sent, absl::Time store, absl::Time received) {
  if (received < sent) return;  // the local clock stepped back: useless
  // Whole microseconds of each clock, as a Sample keeps them.
  const int64_t sent_us = absl::ToUnixMicros(sent);
  samples_.push_back(
      {absl::ToUnixMicros(store) - sent_us, sent_us, absl::ToUnixMicros(received) - sent_us});
  if (samples_.size() > kSamples) samples_.pop_front();
  // The tightest bound now; drift grows alike for all from here on, so
  // this one stays the tightest until the next sample.
  const int64_t now_us = absl::ToUnixMicros(received);
  const Sample* best = nullptr;
  for (const Sample& s : samples_) {
    if (best == nullptr || s.offset_hi_us + DriftUs(s.sent_us, now_us) <
                               best->offset_hi_us + DriftUs(best->sent_us, now_us)) {
      best = &s;
    }
  }
  const uint64_t seq = seq_.load(std::memory_order_relaxed);
  seq_.store(seq + 1, std::memory_order_relaxed);  // odd: writing
  std::atomic_thread_fence(std::memory_order_release);
  offset_hi_us_.store(best->offset_hi_us, std::memory_order_relaxed);
  sent_us_.store(best->sent_us, std::memory_order_relaxed);
  rtt_us_.store(best->rtt_us, std::memory_order_relaxed);
  seq_.store(seq + 2, std::memory_order_release);
}

ClockBound::Sample ClockBound::Read() const {
  for (;;) {
    const uint64_t before = seq_.load(std::memory_order_acquire);
    if (before % 2 == 1) continue;
    Sample s{offset_hi_us_.load(std::memory_order_relaxed),
             sent_us_.load(std::memory_order_relaxed), rtt_us_.load(std::memory_order_relaxed)};
    std::atomic_thread_fence(std::memory_order_acquire);
    if (seq_.load(std::memory_order_relaxed) == before) return s;
  }
}

absl::Time ClockBound::EarliestLocal(absl::Time store_time, absl::Time now) const {
  if (!calibrated() || store_time == absl::InfinitePast()) return absl::InfinitePast();
  const Sample s = Read();
  const int64_t offset_hi = s.offset_hi_us + DriftUs(s.sent_us, absl::ToUnixMicros(now));
  return absl::FromUnixMicros(absl::ToUnixMicros(store_time) - offset_hi);
}

absl::Duration ClockBound::Uncertainty(absl::Time now) const {
  if (!calibrated()) return absl::InfiniteDuration();
  const Sample s = Read();
  return absl::Microseconds(s.rtt_us + DriftUs(s.sent_us, absl::ToUnixMicros(now)));
}

ClockSampler::ClockSampler(ReadClock read, ClockBound& bound, absl::Duration interval)
    : read_(std::move(read)), bound_(bound), interval_(interval) {
  thread_ = std::thread([this] { Loop(); });
}

ClockSampler::~ClockSampler() {
  stop_.Notify();
  thread_.join();
}

bool ClockSampler::SampleOnce() {
  const absl::Time sent = absl::Now();
  absl::StatusOr<absl::Time> store = read_();
  const absl::Time received = absl::Now();
  if (!store.ok()) {
    spdlog::debug("clock: cannot read the store's clock: {}",
                  std::string(store.status().message()));
    return false;
  }
  bound_.OnSample(sent, *store, received);
  return true;
}

void ClockSampler::Loop() {
  int burst = 0;  // quick samples still to take after a (re)connection
  bool answered = false;
  while (!stop_.HasBeenNotified()) {
    const bool ok = SampleOnce();
    if (ok && !answered) burst = 4;
    answered = ok;
    absl::Duration wait = interval_;
    if (!ok) {
      wait = absl::Seconds(1);
    } else if (burst > 0) {
      --burst;
      wait = absl::Milliseconds(50);
    }
    stop_.WaitForNotificationWithTimeout(wait);
  }
}

}  // namespace cachecar::sync
