// Internal to cache/: a shard's index, key hash -> entry ref, as an
// open-addressing table with linear probing in the engine's storage mapping
// (docs/LOCAL_READS.md, "Index slots"): local readers probe the very table
// the engine uses, so it costs nothing twice. A slot is (tag << 32) | ref
// with tag = hash >> 32, and a key's home slot is tag & mask, so the table
// can be rebuilt from its slots alone.
//
// The table grows in place (doubling, up to the slots reserved for it) when
// it would pass 3/4 full and halves when it falls below 7/32, giving the
// pages it no longer uses back; deletion shifts the run back (no
// tombstones), so probe runs stay short.
//
// Thread-safety: none; the owning shard calls it under its mutex and inside
// its sequence-lock window (readers retry whatever they saw meanwhile).
#ifndef CACHECAR_CACHE_SLOT_INDEX_H_
#define CACHECAR_CACHE_SLOT_INDEX_H_

#include <atomic>
#include <cstdint>

#include "localread/layout.h"

namespace cachecar::cache::internal {

class SlotIndex {
 public:
  static constexpr uint32_t kNone = UINT32_MAX;
  static constexpr uint32_t kMinSlots = 64;

  // `slots` holds `max_slots` (a power of two) slots; `mask` is where the
  // table publishes its size. Formats the table empty.
  SlotIndex(std::atomic<uint64_t>* slots, uint32_t max_slots, std::atomic<uint32_t>* mask);
  SlotIndex(const SlotIndex&) = delete;
  SlotIndex& operator=(const SlotIndex&) = delete;

  // The position of the slot whose ref `match` accepts among those with the
  // key's tag, or kNone.
  template <typename Match>
  uint32_t Find(uint64_t hash, Match&& match) const {
    const uint32_t tag = static_cast<uint32_t>(hash >> 32);
    for (uint32_t pos = tag & mask_;; pos = (pos + 1) & mask_) {
      const uint64_t slot = Load(pos);
      if (slot == 0) return kNone;
      if (localread::SlotTag(slot) == tag && match(localread::SlotRef(slot))) return pos;
    }
  }

  // The ref at a position (0: empty); positions run from 0 to slots() - 1.
  uint32_t RefAt(uint32_t pos) const { return localread::SlotRef(Load(pos)); }
  // Points an occupied slot at another entry of the same key.
  void SetRef(uint32_t pos, uint32_t ref) { Store(pos, (Load(pos) & 0xffffffff00000000ull) | ref); }
  // Adds a key that is not in the table (growing it if needed).
  void Insert(uint64_t hash, uint32_t ref);
  // Empties a slot (and may shrink the table): positions change.
  void EraseAt(uint32_t pos);
  // Empties the table and shrinks it to its smallest size.
  void Clear();

  uint32_t size() const { return count_; }
  uint32_t slots() const { return mask_ + 1; }
  uint32_t max_slots() const { return max_slots_; }

 private:
  uint64_t Load(uint32_t pos) const { return slots_[pos].load(std::memory_order_relaxed); }
  void Store(uint32_t pos, uint64_t v) { slots_[pos].store(v, std::memory_order_relaxed); }
  void Place(uint64_t slot);  // at the first empty slot of its run
  void Resize(uint32_t slots);
  void MaybeShrink();

  std::atomic<uint64_t>* const slots_;
  const uint32_t max_slots_;
  std::atomic<uint32_t>* const published_mask_;
  uint32_t mask_ = 0;
  uint32_t count_ = 0;
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_SLOT_INDEX_H_
