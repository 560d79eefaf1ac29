// Internal to cache/: the cached record (header + key bytes + value bytes in
// one arena block), the intrusive FIFO/LRU list it lives on, the key hash,
// and the per-entry overhead the byte bound charges.
//
// An entry's header is the published format's (localread::EntryHeader,
// docs/LOCAL_READS.md): local readers read version, expiry, sizes, epoch and
// flags; the eviction links and counters share the header but only the
// engine reads them. Links are refs (8-byte units into the shard's arena),
// not pointers, so the header leaks no address and costs 8 bytes less.
//
// Thread-safety: none. An Entry belongs to one shard and is touched only
// under that shard's mutex (and, for what readers see, inside the shard's
// sequence-lock window).
#ifndef CACHECAR_CACHE_ENTRY_H_
#define CACHECAR_CACHE_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

#include "cache/arena.h"
#include "localread/layout.h"

namespace cachecar::cache::internal {

struct Entry : localread::EntryHeader {
  // Allocates an entry in `arena` and fills it in; nullptr when the arena
  // has no block large enough (the caller evicts and retries).
  static Entry* Create(Arena& arena, std::string_view key, uint64_t hash, uint64_t version,
                       bool negative, std::string_view value, int64_t expires_ns, uint32_t epoch) {
    const uint32_t ref = arena.Allocate(BlockPayload(key.size(), value.size()));
    if (ref == 0) return nullptr;
    Entry* e = reinterpret_cast<Entry*>(arena.At(ref));
    e->hash = hash;
    e->key_size = static_cast<uint32_t>(key.size());
    e->queue = 0;
    e->freq = 0;
    e->unused = 0;
    e->prev = e->next = 0;
    std::memcpy(e->data(), key.data(), key.size());
    e->Assign(version, negative, value, expires_ns, epoch);
    return e;
  }
  static void Destroy(Arena& arena, Entry* e) { arena.Free(arena.RefOf(e)); }
  static size_t BlockPayload(size_t key_size, size_t value_size) {
    return localread::kEntryHeaderBytes + key_size + value_size;
  }

  // Overwrites the version and value in place; value.size() must equal
  // value_size unless called from Create.
  void Assign(uint64_t v, bool neg, std::string_view value, int64_t expiry, uint32_t flush_epoch) {
    version = v;
    flags = neg ? localread::kEntryAbsent : 0;
    expires_ns = expiry;
    epoch = flush_epoch;
    value_size = static_cast<uint32_t>(value.size());
    if (!value.empty()) {
      std::memcpy(data() + key_size, value.data(), value.size());
    }
  }

  bool negative() const { return (flags & localread::kEntryAbsent) != 0; }
  std::string_view key() const { return {data(), key_size}; }
  std::string_view value() const { return {data() + key_size, value_size}; }
  size_t charge() const;  // key + value + kEntryOverhead

 private:
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};
static_assert(sizeof(Entry) == localread::kEntryHeaderBytes, "Entry is the published header");

// Bytes charged per entry beyond its key and value. Every term is an upper
// bound on what one entry costs in steady state:
//   header     the published entry header (48): version, expiry, sizes,
//              epoch, flags, eviction counters, hash, 32-bit list links.
//   block      the arena's 8-byte block header + up to 7 bytes of
//              rounding the block to 8 bytes.
//   index      one 8-byte slot at the lowest load the table keeps after it
//              grows (3/8): 8 * 8 / 3, rounded up.
//   ghost      S3-FIFO's ghost table keeps one to three 4-byte fingerprint
//              slots per main-queue entry (GhostTable in s3fifo_policy.h).
//              LRU has no ghost; the constant is policy-independent.
// Not counted: fixed per-shard costs (mutex, policy, 8 KiB version sketch,
// the index's smallest table) and open fill tickets, which are transient.
inline constexpr size_t kEntryHeaderBytes = localread::kEntryHeaderBytes;
inline constexpr size_t kBlockSlackBytes = Arena::kBlockHeaderBytes + 7;
inline constexpr size_t kIndexSlotBytes = (8 * 8 + 2) / 3;
inline constexpr size_t kGhostBytes = 3 * sizeof(uint32_t);
inline constexpr size_t kEntryOverhead =
    kEntryHeaderBytes + kBlockSlackBytes + kIndexSlotBytes + kGhostBytes;
static_assert(kEntryOverhead == 97, "update the EntryOverhead derivation");

inline size_t Entry::charge() const { return key_size + value_size + kEntryOverhead; }

// Doubly linked list through Entry::prev/next (refs into one arena); front
// = newest.
class EntryList {
 public:
  explicit EntryList(const Arena& arena) : arena_(arena) {}
  bool empty() const { return head_ == 0; }
  size_t size() const { return size_; }
  Entry* back() const { return At(tail_); }

  void PushFront(Entry* e) {
    const uint32_t ref = RefOf(e);
    e->prev = 0;
    e->next = head_;
    if (head_ != 0) At(head_)->prev = ref;
    head_ = ref;
    if (tail_ == 0) tail_ = ref;
    ++size_;
  }
  void Remove(Entry* e) {
    (e->prev != 0 ? At(e->prev)->next : head_) = e->next;
    (e->next != 0 ? At(e->next)->prev : tail_) = e->prev;
    e->prev = e->next = 0;
    --size_;
  }
  void MoveToFront(Entry* e) {
    if (RefOf(e) == head_) return;
    Remove(e);
    PushFront(e);
  }
  // `fresh` takes `old`'s place in the list.
  void Replace(Entry* old, Entry* fresh) {
    const uint32_t ref = RefOf(fresh);
    fresh->prev = old->prev;
    fresh->next = old->next;
    (old->prev != 0 ? At(old->prev)->next : head_) = ref;
    (old->next != 0 ? At(old->next)->prev : tail_) = ref;
    old->prev = old->next = 0;
  }
  // Forgets every entry without touching them (the caller frees them).
  void Reset() {
    head_ = tail_ = 0;
    size_ = 0;
  }

 private:
  Entry* At(uint32_t ref) const {
    return ref == 0 ? nullptr : reinterpret_cast<Entry*>(arena_.At(ref));
  }
  uint32_t RefOf(const Entry* e) const { return arena_.RefOf(e); }

  const Arena& arena_;
  uint32_t head_ = 0;
  uint32_t tail_ = 0;
  size_t size_ = 0;
};

// A fast 64-bit key hash that, unlike absl::Hash, is the same in every
// process: shard choice and eviction order are reproducible (tests,
// benches), and local readers compute it too (docs/LOCAL_READS.md).
using localread::HashKey;

// Open-addressing tables never shrink on erase; give memory back once a table
// is mostly empty (after the cache lost many entries, e.g. small values were
// replaced by big ones) so its size keeps tracking the entry count.
template <typename Table>
void ShrinkIfSparse(Table& table) {
  if (table.capacity() > 1024 && table.size() * 32 < table.capacity() * 7) {
    table.rehash(0);
  }
}

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_ENTRY_H_
