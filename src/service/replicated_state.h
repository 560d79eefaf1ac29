// ReplicatedState: what a replica knows about a replicated namespace
// (`replicated: true`: it holds the whole table) — whether its cache is
// complete, so that a miss means "absent" and needs no store read.
//
// Complete means: the whole table was loaded (service/replicated.h) in the
// engine's current flush epoch (a flush: positioning, lost events, a
// TRUNCATE, Invalidate all, calls for a new load), nothing was evicted or
// expired since the load began, and the key was not dropped without its
// new value since (an upsert whose event carried no value, an
// invalidation: such keys are "unknown" until reloaded). Whether the
// replica is within max_staleness is the caller's question (CacheTrusted).
//
// Thread-safety: all methods from any thread.
#ifndef CACHECAR_SERVICE_REPLICATED_STATE_H_
#define CACHECAR_SERVICE_REPLICATED_STATE_H_

#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "cache/engine.h"
#include "common/mutex.h"

namespace cachecar::service {

class ReplicatedState {
 public:
  static constexpr uint64_t kNever = ~uint64_t{0};

  // The load that began at flush epoch `epoch`, with `evictions` and
  // `expirations` counted by then, has read the whole table.
  void MarkLoaded(uint64_t epoch, uint64_t evictions, uint64_t expirations) {
    evictions_.store(evictions, std::memory_order_relaxed);
    expirations_.store(expirations, std::memory_order_relaxed);
    epoch_.store(epoch, std::memory_order_release);
    loads_.fetch_add(1, std::memory_order_relaxed);
  }
  // The epoch the last complete load began in (kNever before one).
  uint64_t loaded_epoch() const { return epoch_.load(std::memory_order_acquire); }
  uint64_t loads() const { return loads_.load(std::memory_order_relaxed); }

  // The cache holds the whole table now, but maybe for unknown keys.
  bool Complete(const cache::Engine& engine) const {
    if (loaded_epoch() != engine.epoch()) return false;
    const cache::EngineStats s = engine.Stats();
    return s.evictions == evictions_.load(std::memory_order_relaxed) &&
           s.expirations == expirations_.load(std::memory_order_relaxed);
  }
  // An engine miss for `key` means the key is absent.
  bool Authoritative(const cache::Engine& engine, std::string_view key) const {
    if (loaded_epoch() != engine.epoch()) return false;  // cheap first
    if (unknown_count_.load(std::memory_order_acquire) > 0) {
      MutexLock lock(&mu_);
      if (unknown_.contains(absl::string_view(key.data(), key.size()))) return false;
    }
    return Complete(engine);
  }

  // `key` was dropped without its new value: a miss must read the store
  // until it is reloaded (ReplicatedLoader does).
  void MarkUnknown(std::string_view key) {
    MutexLock lock(&mu_);
    ++unknown_[std::string(key)];
    unknown_count_.store(unknown_.size(), std::memory_order_release);
  }
  // Up to `n` unknown keys, each with its mark count, to reload.
  std::vector<std::pair<std::string, uint64_t>> Unknown(size_t n) const {
    MutexLock lock(&mu_);
    std::vector<std::pair<std::string, uint64_t>> out;
    for (const auto& [key, marks] : unknown_) {
      if (out.size() == n) break;
      out.emplace_back(key, marks);
    }
    return out;
  }
  // `key` was reloaded; known again unless it was marked again since.
  void Known(const std::string& key, uint64_t marks) {
    MutexLock lock(&mu_);
    auto it = unknown_.find(key);
    if (it != unknown_.end() && it->second == marks) unknown_.erase(it);
    unknown_count_.store(unknown_.size(), std::memory_order_release);
  }
  // Absent keys answered from the cache (metrics).
  void CountAbsentAnswer() { absent_answers_.fetch_add(1, std::memory_order_relaxed); }
  uint64_t absent_answers() const { return absent_answers_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> epoch_{kNever};
  std::atomic<uint64_t> evictions_{0}, expirations_{0}, loads_{0}, absent_answers_{0};
  mutable Mutex mu_;
  absl::flat_hash_map<std::string, uint64_t> unknown_ ABSL_GUARDED_BY(mu_);
  std::atomic<size_t> unknown_count_{0};
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_REPLICATED_STATE_H_
