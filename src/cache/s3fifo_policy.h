// Internal to cache/: S3-FIFO ordering (Yang et al., "FIFO queues are all you
// need for cache eviction", SOSP'23). New keys enter a small FIFO (~10% of
// the bytes); keys read while there move to the main FIFO, the rest leave and
// are remembered in a ghost of key fingerprints, so a quick return goes
// straight to main. Main is a FIFO with reinsertion: a 2-bit access counter
// buys extra rounds. One-hit wonders (scans) never reach main.
//
// Thread-safety: none (shard-locked).
#ifndef CACHECAR_CACHE_S3FIFO_POLICY_H_
#define CACHECAR_CACHE_S3FIFO_POLICY_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "cache/eviction_policy.h"

namespace cachecar::cache::internal {

// The ghost: 32-bit key fingerprints in a table of 4-byte slots, one to
// three per main-queue entry. A fingerprint goes to the slot its value picks
// and overwrites whatever was there, so old fingerprints age out as new ones
// arrive (after about as many arrivals as there are slots), where a FIFO of
// the same length would drop them in exact order. It costs 4-12 bytes per
// main entry; the FIFO plus hash index it replaced cost 26, for hit ratios
// within 0.25 points of it (docs/BENCHMARKS.md, "Profiling round").
class GhostTable {
 public:
  bool Contains(uint32_t fp) const {
    return !slots_.empty() && slots_[Slot(Stored(fp))] == Stored(fp);
  }
  // Forgets `fp` (a ghost hit).
  void Erase(uint32_t fp) {
    if (Contains(fp)) slots_[Slot(Stored(fp))] = 0;
  }
  void Add(uint32_t fp) {
    if (!slots_.empty()) slots_[Slot(Stored(fp))] = Stored(fp);
  }
  // Keeps the table at one to three slots per main-queue entry (at least
  // kMinSlots): rebuilt at 1.5 per entry when it leaves that range.
  void Fit(size_t main_entries);
  void Clear() { slots_ = {}; }

 private:
  static constexpr size_t kMinSlots = 64;
  // 0 marks an empty slot, so fingerprint 0 is stored as 1.
  static uint32_t Stored(uint32_t fp) { return fp == 0 ? 1 : fp; }
  size_t Slot(uint32_t stored) const {
    return static_cast<size_t>((uint64_t{stored} * slots_.size()) >> 32);
  }
  std::vector<uint32_t> slots_;
};

class S3FifoPolicy final : public ReplacementPolicy {
 public:
  S3FifoPolicy(size_t capacity_bytes, const Arena& arena)
      : small_target_(capacity_bytes / 10), small_(arena), main_(arena) {}

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

  static uint32_t Fingerprint(uint64_t hash) { return static_cast<uint32_t>(hash); }
  Entry* EvictFromSmall();  // nullptr if promotions emptied the small queue
  Entry* EvictFromMain();

  const size_t small_target_;
  EntryList small_;
  EntryList main_;
  size_t small_bytes_ = 0;
  GhostTable ghost_;  // sized to main_.size()
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_S3FIFO_POLICY_H_
