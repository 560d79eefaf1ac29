// See freshness.h.
#include "sync/freshness.h"

#include <algorithm>

namespace cachecar::sync {

void FreshnessTracker::AddPartition(int32_t partition, int64_t position,
                                    absl::Time caught_up_as_of) {
  MutexLock lock(&mu_);
  Partition& p = partitions_[partition];
  p = Partition{};
  p.position = position;
  p.caught_up_as_of = caught_up_as_of;
  Publish();
}

void FreshnessTracker::OnProbe(int32_t partition, int64_t high_watermark, absl::Time sent_at) {
  MutexLock lock(&mu_);
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  Partition& p = it->second;
  p.high_watermark = std::max(p.high_watermark, high_watermark);
  if (high_watermark <= p.position) {
    p.caught_up_as_of = std::max(p.caught_up_as_of, sent_at);
    p.pending.clear();
  } else {
    p.pending.push_back({high_watermark, sent_at});
    if (p.pending.size() > kMaxPendingProbes) p.pending.pop_front();
  }
  Publish();
}

void FreshnessTracker::OnPosition(int32_t partition, int64_t position) {
  MutexLock lock(&mu_);
  auto it = partitions_.find(partition);
  if (it == partitions_.end()) return;
  Partition& p = it->second;
  p.position = position;
  bool moved = false;
  while (!p.pending.empty() && p.pending.front().high_watermark <= position) {
    p.caught_up_as_of = std::max(p.caught_up_as_of, p.pending.front().sent_at);
    p.pending.pop_front();
    moved = true;
  }
  if (moved) Publish();
}

void FreshnessTracker::Publish() {
  absl::Time oldest = absl::InfiniteFuture();
  for (const auto& [id, p] : partitions_) oldest = std::min(oldest, p.caught_up_as_of);
  const int64_t us = partitions_.empty() || oldest == absl::InfinitePast()
                         ? INT64_MIN
                         : absl::ToUnixMicros(oldest);
  fresh_as_of_us_.store(us, std::memory_order_release);
}

absl::Time FreshnessTracker::fresh_as_of() const {
  const int64_t us = fresh_as_of_us_.load(std::memory_order_acquire);
  return us == INT64_MIN ? absl::InfinitePast() : absl::FromUnixMicros(us);
}

std::vector<PartitionState> FreshnessTracker::Partitions() const {
  MutexLock lock(&mu_);
  std::vector<PartitionState> out;
  for (const auto& [id, p] : partitions_) {
    out.push_back({id, p.position, p.high_watermark});
  }
  return out;
}

std::vector<int32_t> FreshnessTracker::PartitionIds() const {
  MutexLock lock(&mu_);
  std::vector<int32_t> out;
  for (const auto& [id, p] : partitions_) out.push_back(id);
  return out;
}

}  // namespace cachecar::sync
