// See watermarks.h.
#include "sync/watermarks.h"

#include <algorithm>

namespace cachecar::sync {

void WatermarkTracker::SetPartitions(const std::vector<int32_t>& partitions,
                                     const std::vector<int32_t>& restarted) {
  MutexLock lock(&mu_);
  partitions_ = std::set<int32_t>(partitions.begin(), partitions.end());
  for (auto& [id, relay] : relays_) {
    for (int32_t p : restarted) relay.newest.erase(p);
  }
  Publish();
}

void WatermarkTracker::OnWatermark(int32_t partition, const Watermark& w, absl::Time now) {
  MutexLock lock(&mu_);
  Relay& relay = relays_[w.relay];
  absl::Time& newest = relay.newest[partition];
  newest = std::max(newest, w.as_of);
  relay.partitions = std::max(relay.partitions, w.partitions);
  relay.last_seen = std::max(relay.last_seen, now);
  for (auto it = relays_.begin(); it != relays_.end();) {
    it = it->second.last_seen < now - kForgetAfter ? relays_.erase(it) : std::next(it);
  }
  Publish();
}

absl::Time WatermarkTracker::CoveredAsOf(const Relay& relay) const {
  if (partitions_.empty()) return absl::InfinitePast();
  absl::Time oldest = absl::InfiniteFuture();
  auto at = [&relay](int32_t p) {
    auto it = relay.newest.find(p);
    return it == relay.newest.end() ? absl::InfinitePast() : it->second;
  };
  for (int32_t p : partitions_) oldest = std::min(oldest, at(p));
  // Partitions the relay published to that this replica does not read yet.
  for (int32_t p = 0; p < relay.partitions; ++p) {
    if (partitions_.count(p) == 0) return absl::InfinitePast();
  }
  return oldest;
}

void WatermarkTracker::Publish() {
  absl::Time best = absl::InfinitePast();
  for (const auto& [id, relay] : relays_) best = std::max(best, CoveredAsOf(relay));
  const int64_t us = best == absl::InfinitePast() || best == absl::InfiniteFuture()
                         ? INT64_MIN
                         : absl::ToUnixMicros(best);
  applied_as_of_us_.store(us, std::memory_order_release);
}

absl::Time WatermarkTracker::applied_as_of() const {
  const int64_t us = applied_as_of_us_.load(std::memory_order_acquire);
  return us == INT64_MIN ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

std::vector<WatermarkTracker::RelayView> WatermarkTracker::Relays() const {
  MutexLock lock(&mu_);
  std::vector<RelayView> out;
  for (const auto& [id, relay] : relays_) out.push_back({id, CoveredAsOf(relay), relay.last_seen});
  return out;
}

int WatermarkTracker::RelaysSeenSince(absl::Time since, const std::string& except) const {
  MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [id, relay] : relays_) {
    if (id != except && relay.last_seen >= since) ++n;
  }
  return n;
}

int32_t WatermarkTracker::announced_partitions() const {
  MutexLock lock(&mu_);
  int32_t most = 0;
  for (const auto& [id, relay] : relays_) most = std::max(most, relay.partitions);
  return most;
}

}  // namespace cachecar::sync
