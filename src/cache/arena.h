// Internal to cache/: the allocator for one shard's entries. It carves
// blocks out of a fixed region of the engine's storage mapping (the
// published cache file, or private memory), addressed by 32-bit refs in
// 8-byte units, so entries can live where local readers see them and link
// to each other without pointers.
//
// Why not malloc or a library: the region is fixed (it is the shard's share
// of max_bytes, and with local reads a file other processes map), refs must
// be 32-bit offsets, and a failed allocation must come back to the caller
// (which evicts and retries) instead of growing anything. Boost.Interprocess'
// rbtree_best_fit would do the first but costs 16 bytes per block and
// O(log n); this is a two-level segregated fit (as TLSF) with boundary tags:
// O(1) allocate and free, an 8-byte header per block, adjacent free blocks
// always merged.
//
// Block layout, in 8-byte units: a header word {u32 size | free bit 31,
// u32 size of the previous block}, then the payload. A free block keeps its
// free-list links in the first payload word. Units 0 and N-1 are one-unit
// sentinels that are never free, so every real block has neighbours.
//
// Thread-safety: none; the owning shard calls it under its mutex. The
// region's bytes are shared with readers, who never look at free blocks or
// headers (docs/LOCAL_READS.md).
#ifndef CACHECAR_CACHE_ARENA_H_
#define CACHECAR_CACHE_ARENA_H_

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace cachecar::cache::internal {

class Arena {
 public:
  // The largest region: block sizes are 31-bit counts of 8-byte units.
  static constexpr uint64_t kMaxBytes = uint64_t{1} << 34;
  // Header bytes an allocation costs beyond its payload (plus rounding of
  // the payload to a multiple of 8).
  static constexpr size_t kBlockHeaderBytes = 8;

  // Formats [base, base + bytes) as one free block. `base` is 8-aligned;
  // `bytes` is a multiple of 8 from 32 to kMaxBytes.
  Arena(char* base, uint64_t bytes);
  Arena(const Arena&) = delete;
  Arena& operator=(const Arena&) = delete;

  // A block with at least `payload` bytes; returns its ref (the payload is
  // at At(ref), 8-aligned), or 0 when no free block is large enough.
  uint32_t Allocate(size_t payload);
  // Returns a block from Allocate.
  void Free(uint32_t ref);
  // Frees every block at once.
  void Reset();

  char* At(uint32_t ref) const { return base_ + uint64_t{ref} * 8; }
  uint32_t RefOf(const void* payload) const {
    return static_cast<uint32_t>((static_cast<const char*>(payload) - base_) / 8);
  }
  // Bytes of allocated blocks, headers included.
  uint64_t used_bytes() const { return used_units_ * 8; }
  uint64_t region_bytes() const { return uint64_t{units_} * 8; }

  // Walks every block and free list; false (and why) on a broken invariant.
  // For tests: O(blocks).
  bool Check(std::string* why) const;

 private:
  static constexpr uint32_t kFreeBit = 1u << 31;
  static constexpr uint32_t kExactClasses = 64;  // sizes 0..63 units: one class each
  static constexpr uint32_t kSubClasses = 8;     // per power of two above
  static constexpr uint32_t kClasses = kExactClasses + 25 * kSubClasses;
  static constexpr uint32_t kMinFree = 2;  // header + links

  struct Header {
    uint32_t size_and_free;
    uint32_t prev_size;
  };
  struct Links {
    uint32_t next;  // header units; 0 = none
    uint32_t prev;
  };

  Header* HeaderAt(uint32_t unit) const {
    return reinterpret_cast<Header*>(base_ + uint64_t{unit} * 8);
  }
  Links* LinksAt(uint32_t unit) const {
    return reinterpret_cast<Links*>(base_ + uint64_t{unit} * 8 + 8);
  }
  uint32_t SizeAt(uint32_t unit) const { return HeaderAt(unit)->size_and_free & ~kFreeBit; }
  bool FreeAt(uint32_t unit) const { return (HeaderAt(unit)->size_and_free & kFreeBit) != 0; }

  static uint32_t ClassOf(uint32_t units);
  // The smallest class whose every block holds `units`.
  static uint32_t FitClassOf(uint32_t units);
  // A free block at `unit` of `size` units: headers, next block's
  // prev_size, free list.
  void MakeFree(uint32_t unit, uint32_t size);
  void Link(uint32_t unit, uint32_t size);
  void Unlink(uint32_t unit, uint32_t size);
  // First non-empty class >= `from`, or kClasses.
  uint32_t FindClass(uint32_t from) const;

  char* const base_;
  const uint32_t units_;
  uint64_t used_units_ = 0;
  std::array<uint32_t, kClasses> heads_{};
  std::array<uint64_t, (kClasses + 63) / 64> nonempty_{};
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_ARENA_H_
