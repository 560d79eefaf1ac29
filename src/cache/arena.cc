// See arena.h.
#include "cache/arena.h"

#include <algorithm>

namespace cachecar::cache::internal {
namespace {

int FloorLog2(uint32_t v) { return 31 - __builtin_clz(v); }

}  // namespace

Arena::Arena(char* base, uint64_t bytes) : base_(base), units_(static_cast<uint32_t>(bytes / 8)) {
  Reset();
}

void Arena::Reset() {
  heads_.fill(0);
  nonempty_.fill(0);
  used_units_ = 0;
  // Sentinels: unit 0 and the last unit, one-unit blocks never freed.
  *HeaderAt(0) = Header{1, 0};
  *HeaderAt(units_ - 1) = Header{1, 0};
  *HeaderAt(1) = Header{0, 1};
  MakeFree(1, units_ - 2);  // also sets the end sentinel's prev_size
}

uint32_t Arena::ClassOf(uint32_t units) {
  if (units < kExactClasses) return units;
  const int fl = FloorLog2(units);  // >= 6
  const uint32_t sl = (units >> (fl - 3)) & (kSubClasses - 1);
  return kExactClasses + static_cast<uint32_t>(fl - 6) * kSubClasses + sl;
}

uint32_t Arena::FitClassOf(uint32_t units) {
  const uint32_t c = ClassOf(units);
  if (units < kExactClasses) return c;
  // The class's smallest size; blocks in it may be smaller than `units`.
  const int fl = FloorLog2(units);
  const uint32_t low = (kSubClasses + ((units >> (fl - 3)) & (kSubClasses - 1))) << (fl - 3);
  return low == units ? c : c + 1;
}

uint32_t Arena::FindClass(uint32_t from) const {
  for (uint32_t word = from / 64; word < nonempty_.size(); ++word) {
    uint64_t bits = nonempty_[word];
    if (word == from / 64) bits &= ~uint64_t{0} << (from % 64);
    if (bits != 0) return word * 64 + static_cast<uint32_t>(__builtin_ctzll(bits));
  }
  return kClasses;
}

void Arena::Link(uint32_t unit, uint32_t size) {
  const uint32_t c = ClassOf(size);
  Links* links = LinksAt(unit);
  links->prev = 0;
  links->next = heads_[c];
  if (heads_[c] != 0) LinksAt(heads_[c])->prev = unit;
  heads_[c] = unit;
  nonempty_[c / 64] |= uint64_t{1} << (c % 64);
}

void Arena::Unlink(uint32_t unit, uint32_t size) {
  const uint32_t c = ClassOf(size);
  const Links links = *LinksAt(unit);
  if (links.prev != 0) {
    LinksAt(links.prev)->next = links.next;
  } else {
    heads_[c] = links.next;
    if (links.next == 0) nonempty_[c / 64] &= ~(uint64_t{1} << (c % 64));
  }
  if (links.next != 0) LinksAt(links.next)->prev = links.prev;
}

void Arena::MakeFree(uint32_t unit, uint32_t size) {
  HeaderAt(unit)->size_and_free = size | kFreeBit;
  HeaderAt(unit + size)->prev_size = size;
  Link(unit, size);
}

uint32_t Arena::Allocate(size_t payload) {
  const uint64_t want = 1 + (uint64_t{payload} + 7) / 8;
  if (want > units_) return 0;
  const uint32_t size = static_cast<uint32_t>(want);
  uint32_t unit = 0;
  if (const uint32_t c = FindClass(FitClassOf(size)); c != kClasses) {
    unit = heads_[c];
  } else {
    // Every larger class is empty; the request's own class may still hold a
    // block large enough (in an empty arena, the one block is there).
    uint32_t scanned = 0;
    for (uint32_t u = heads_[ClassOf(size)]; u != 0 && scanned < 16; u = LinksAt(u)->next) {
      if (SizeAt(u) >= size) {
        unit = u;
        break;
      }
      ++scanned;
    }
    if (unit == 0) return 0;
  }
  const uint32_t have = SizeAt(unit);
  Unlink(unit, have);
  uint32_t taken = have;
  if (have - size >= kMinFree) {  // split; the rest stays free
    taken = size;
    MakeFree(unit + size, have - size);
  }
  HeaderAt(unit)->size_and_free = taken;
  HeaderAt(unit + taken)->prev_size = taken;
  used_units_ += taken;
  return unit + 1;
}

void Arena::Free(uint32_t ref) {
  uint32_t unit = ref - 1;
  uint32_t size = SizeAt(unit);
  used_units_ -= size;
  const uint32_t next = unit + size;
  if (FreeAt(next)) {
    const uint32_t next_size = SizeAt(next);
    Unlink(next, next_size);
    size += next_size;
  }
  const uint32_t prev_size = HeaderAt(unit)->prev_size;
  if (FreeAt(unit - prev_size)) {
    unit -= prev_size;
    Unlink(unit, prev_size);
    size += prev_size;
  }
  MakeFree(unit, size);
}

bool Arena::Check(std::string* why) const {
  auto fail = [why](std::string text) {
    *why = std::move(text);
    return false;
  };
  if (SizeAt(0) != 1 || FreeAt(0)) return fail("start sentinel damaged");
  uint64_t used = 0;
  uint64_t free_blocks = 0;
  uint32_t prev = 0;
  bool prev_free = false;
  uint32_t unit = 1;
  while (unit < units_ - 1) {
    const uint32_t size = SizeAt(unit);
    if (size == 0 || uint64_t{unit} + size > units_ - 1) return fail("block overruns the region");
    if (HeaderAt(unit)->prev_size != unit - prev) return fail("prev_size does not match");
    const bool is_free = FreeAt(unit);
    if (is_free && prev_free) return fail("two adjacent free blocks");
    if (is_free) {
      if (size < kMinFree) return fail("free block too small");
      ++free_blocks;
    } else {
      used += size;
    }
    prev_free = is_free;
    prev = unit;
    unit += size;
  }
  if (unit != units_ - 1 || SizeAt(unit) != 1 || FreeAt(unit)) return fail("end sentinel damaged");
  if (HeaderAt(unit)->prev_size != unit - prev) return fail("end sentinel's prev_size is wrong");
  if (used != used_units_) return fail("used_bytes does not match the blocks");
  uint64_t listed = 0;
  for (uint32_t c = 0; c < kClasses; ++c) {
    const bool marked = (nonempty_[c / 64] >> (c % 64)) & 1;
    if (marked != (heads_[c] != 0)) return fail("class bitmap does not match the lists");
    uint32_t before = 0;
    for (uint32_t u = heads_[c]; u != 0; u = LinksAt(u)->next) {
      if (!FreeAt(u)) return fail("an allocated block is on a free list");
      if (ClassOf(SizeAt(u)) != c) return fail("a free block is on the wrong list");
      if (LinksAt(u)->prev != before) return fail("free list back link is wrong");
      before = u;
      if (++listed > free_blocks) return fail("free lists hold more blocks than exist");
    }
  }
  if (listed != free_blocks) return fail("a free block is on no list");
  return true;
}

}  // namespace cachecar::cache::internal
