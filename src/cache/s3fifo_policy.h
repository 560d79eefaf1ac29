// Internal to cache/: S3-FIFO ordering (Yang et al., "FIFO queues are all you
// need for cache eviction", SOSP'23). New keys enter a small FIFO (~10% of
// the bytes); keys read while there move to the main FIFO, the rest leave and
// are remembered in a ghost FIFO of key fingerprints, so a quick return goes
// straight to main. Main is a FIFO with reinsertion: a 2-bit access counter
// buys extra rounds. One-hit wonders (scans) never reach main.
//
// Thread-safety: none (shard-locked).
#ifndef CACHECAR_CACHE_S3FIFO_POLICY_H_
#define CACHECAR_CACHE_S3FIFO_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <deque>

#include "absl/container/flat_hash_map.h"
#include "cache/eviction_policy.h"

namespace cachecar::cache::internal {

// A bounded FIFO of 32-bit key fingerprints with O(1) membership.
class GhostQueue {
 public:
  bool Contains(uint32_t fp) const { return index_.contains(fp); }
  // Forgets `fp` (a ghost hit); its FIFO slot goes stale and ages out.
  void Erase(uint32_t fp) { index_.erase(fp); }
  void Add(uint32_t fp);
  // Drops the oldest fingerprints until at most `n` slots remain.
  void TrimTo(size_t n);
  void Clear();
  size_t size() const { return fifo_.size(); }

 private:
  std::deque<uint32_t> fifo_;
  // fingerprint -> sequence number of its newest FIFO slot; a slot leaving
  // the FIFO erases the fingerprint only if it is still the newest one.
  absl::flat_hash_map<uint32_t, uint32_t> index_;
  uint32_t head_seq_ = 0;  // sequence number of fifo_.front()
  uint32_t next_seq_ = 0;  // sequence number the next Add takes
};

class S3FifoPolicy final : public ReplacementPolicy {
 public:
  explicit S3FifoPolicy(size_t capacity_bytes)
      : small_target_(capacity_bytes / 10) {}

  void Insert(Entry* e) override;
  void Touch(Entry* e) override {
    if (e->freq < kMaxFreq) ++e->freq;
  }
  void Replace(Entry* old, Entry* fresh) override;
  void Remove(Entry* e) override;
  Entry* Evict() override;
  void Clear() override;

 private:
  enum Queue : uint8_t { kSmall = 0, kMain = 1 };
  static constexpr uint8_t kMaxFreq = 3;
  // Reads needed in the small queue to be promoted to main.
  static constexpr uint8_t kPromoteFreq = 1;

  static uint32_t Fingerprint(uint64_t hash) {
    return static_cast<uint32_t>(hash);
  }
  Entry* EvictFromSmall();  // nullptr if promotions emptied the small queue
  Entry* EvictFromMain();

  const size_t small_target_;
  EntryList small_;
  EntryList main_;
  size_t small_bytes_ = 0;
  GhostQueue ghost_;  // at most main_.size() fingerprints
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_S3FIFO_POLICY_H_
