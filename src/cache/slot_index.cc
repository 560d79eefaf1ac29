// See slot_index.h.
#include "cache/slot_index.h"

#include <sys/mman.h>
#include <unistd.h>

#include <vector>

namespace cachecar::cache::internal {
namespace {

// Gives whole pages inside [begin, begin + bytes) back to the system; they
// read as zero afterwards. MADV_REMOVE frees a shared file's pages (tmpfs);
// private anonymous memory needs MADV_DONTNEED.
void ReleasePages(void* begin, size_t bytes) {
  const uintptr_t page = static_cast<uintptr_t>(sysconf(_SC_PAGESIZE));
  const uintptr_t from = (reinterpret_cast<uintptr_t>(begin) + page - 1) & ~(page - 1);
  const uintptr_t to = (reinterpret_cast<uintptr_t>(begin) + bytes) & ~(page - 1);
  if (to <= from) return;
  void* p = static_cast<char*>(begin) + (from - reinterpret_cast<uintptr_t>(begin));
  if (madvise(p, to - from, MADV_REMOVE) != 0) madvise(p, to - from, MADV_DONTNEED);
}

}  // namespace

SlotIndex::SlotIndex(std::atomic<uint64_t>* slots, uint32_t max_slots, std::atomic<uint32_t>* mask)
    : slots_(slots), max_slots_(max_slots), published_mask_(mask) {
  Clear();
}

void SlotIndex::Clear() {
  const uint32_t keep = std::min(kMinSlots, max_slots_);
  const uint32_t used = mask_ + 1;
  for (uint32_t i = 0; i < keep; ++i) Store(i, 0);
  if (used > keep) ReleasePages(&slots_[keep], sizeof(uint64_t) * (used - keep));
  mask_ = keep - 1;
  count_ = 0;
  published_mask_->store(mask_, std::memory_order_relaxed);
}

void SlotIndex::Place(uint64_t slot) {
  uint32_t pos = localread::SlotTag(slot) & mask_;
  while (Load(pos) != 0) pos = (pos + 1) & mask_;
  Store(pos, slot);
}

void SlotIndex::Insert(uint64_t hash, uint32_t ref) {
  const uint32_t slots = mask_ + 1;
  if (uint64_t{count_ + 1} * 4 > uint64_t{slots} * 3 && slots < max_slots_) Resize(slots * 2);
  // The engine sizes max_slots for the most entries its byte budget allows,
  // so the table cannot fill up; a last empty slot ends every probe run.
  Place(localread::MakeSlot(hash, ref));
  ++count_;
}

void SlotIndex::EraseAt(uint32_t pos) {
  // Backward shift: move later members of the run into the hole when their
  // home is not between the hole and them.
  uint32_t hole = pos;
  for (uint32_t next = (hole + 1) & mask_;; next = (next + 1) & mask_) {
    const uint64_t slot = Load(next);
    if (slot == 0) break;
    const uint32_t home = localread::SlotTag(slot) & mask_;
    // Stays if its home lies cyclically in (hole, next].
    const bool stays = hole <= next ? (home > hole && home <= next) : (home > hole || home <= next);
    if (stays) continue;
    Store(hole, slot);
    hole = next;
  }
  Store(hole, 0);
  --count_;
  MaybeShrink();
}

void SlotIndex::MaybeShrink() {
  uint32_t slots = mask_ + 1;
  uint32_t target = slots;
  while (target > 1024 && uint64_t{count_} * 32 < uint64_t{target} * 7) target /= 2;
  if (target != slots) Resize(target);
}

void SlotIndex::Resize(uint32_t slots) {
  const uint32_t old = mask_ + 1;
  std::vector<uint64_t> live;
  live.reserve(count_);
  for (uint32_t i = 0; i < old; ++i) {
    if (const uint64_t slot = Load(i); slot != 0) live.push_back(slot);
  }
  for (uint32_t i = 0; i < std::max(old, slots); ++i) Store(i, 0);
  if (old > slots) ReleasePages(&slots_[slots], sizeof(uint64_t) * (old - slots));
  mask_ = slots - 1;
  published_mask_->store(mask_, std::memory_order_relaxed);
  for (uint64_t slot : live) Place(slot);
}

}  // namespace cachecar::cache::internal
