// Internal to cache/: the cached record (header + key bytes + value bytes in
// one allocation), the intrusive FIFO/LRU list it lives on, the key hash, and
// the per-entry overhead the byte bound charges.
//
// Thread-safety: none. An Entry belongs to one shard and is touched only
// under that shard's mutex.
#ifndef CACHECAR_CACHE_ENTRY_H_
#define CACHECAR_CACHE_ENTRY_H_

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <new>
#include <string_view>

namespace cachecar::cache::internal {

struct Entry {
  // Creates an entry whose key and value bytes follow the header.
  static Entry* Create(std::string_view key, uint64_t hash, uint64_t version, bool negative,
                       std::string_view value, int64_t expires_ns, uint32_t epoch) {
    void* mem = ::operator new(sizeof(Entry) + key.size() + value.size());
    Entry* e = new (mem) Entry;
    e->hash = hash;
    e->key_size = static_cast<uint32_t>(key.size());
    std::memcpy(e->data(), key.data(), key.size());
    e->Assign(version, negative, value, expires_ns, epoch);
    return e;
  }
  static void Destroy(Entry* e) {
    e->~Entry();
    ::operator delete(e);
  }

  // Overwrites the version and value in place; value.size() must equal
  // value_size unless called from Create.
  void Assign(uint64_t v, bool neg, std::string_view value, int64_t expiry, uint32_t flush_epoch) {
    version = v;
    negative = neg;
    expires_ns = expiry;
    epoch = flush_epoch;
    value_size = static_cast<uint32_t>(value.size());
    if (!value.empty()) {
      std::memcpy(data() + key_size, value.data(), value.size());
    }
  }

  std::string_view key() const { return {data(), key_size}; }
  std::string_view value() const { return {data() + key_size, value_size}; }
  size_t charge() const;  // key + value + kEntryOverhead

  Entry* prev = nullptr;  // intrusive list links (owned by the policy)
  Entry* next = nullptr;
  uint64_t hash = 0;
  uint64_t version = 0;
  int64_t expires_ns = 0;  // unix nanos; 0 = never expires
  uint32_t key_size = 0;
  uint32_t value_size = 0;
  uint8_t queue = 0;  // which of the policy's lists holds it
  uint8_t freq = 0;   // S3-FIFO access counter, capped at 3
  bool negative = false;
  // The engine's flush epoch when this was written, low 32 bits (it sits in
  // what would be tail padding). Compared for equality only: an entry is
  // never ahead of the engine, and one behind it is dropped by the sweep of
  // the Flush that moved the epoch on, so it cannot lag by 2^32 unless that
  // many Flush calls are in progress at once.
  uint32_t epoch = 0;

 private:
  char* data() { return reinterpret_cast<char*>(this + 1); }
  const char* data() const { return reinterpret_cast<const char*>(this + 1); }
};

// Bytes charged per entry beyond its key and value. Every term is an upper
// bound on what one entry costs in steady state (x86-64, glibc malloc):
//   header     sizeof(Entry): links, hash, version, expiry, sizes, flags,
//              flush epoch (4 bytes in what was tail padding: still 56).
//   malloc     8-byte chunk header + up to 15 bytes of rounding to 16.
//   index      absl::flat_hash_set<Entry*> slot (8) + control byte (1), at
//              the lowest load right after a growth (7/16): 9 * 16 / 7.
//   ghost      S3-FIFO's ghost table keeps one to three 4-byte fingerprint
//              slots per main-queue entry (GhostTable in s3fifo_policy.h).
//              LRU has no ghost; the constant is policy-independent.
// Key and value share the entry's allocation, so there is no string capacity
// or SSO slack to add. Not counted: fixed per-shard costs (mutex, policy,
// 8 KiB version sketch) and open fill tickets, which are transient.
inline constexpr size_t kEntryHeaderBytes = sizeof(Entry);
inline constexpr size_t kMallocSlackBytes = 8 + 15;
inline constexpr size_t kIndexSlotBytes = ((sizeof(Entry*) + 1) * 16 + 6) / 7;
inline constexpr size_t kGhostBytes = 3 * sizeof(uint32_t);
inline constexpr size_t kEntryOverhead =
    kEntryHeaderBytes + kMallocSlackBytes + kIndexSlotBytes + kGhostBytes;
static_assert(sizeof(Entry) == 56, "update the EntryOverhead derivation");

inline size_t Entry::charge() const { return key_size + value_size + kEntryOverhead; }

// Doubly linked list through Entry::prev/next; front = newest.
class EntryList {
 public:
  bool empty() const { return head_ == nullptr; }
  size_t size() const { return size_; }
  Entry* back() const { return tail_; }

  void PushFront(Entry* e) {
    e->prev = nullptr;
    e->next = head_;
    if (head_ != nullptr) head_->prev = e;
    head_ = e;
    if (tail_ == nullptr) tail_ = e;
    ++size_;
  }
  void Remove(Entry* e) {
    (e->prev != nullptr ? e->prev->next : head_) = e->next;
    (e->next != nullptr ? e->next->prev : tail_) = e->prev;
    e->prev = e->next = nullptr;
    --size_;
  }
  void MoveToFront(Entry* e) {
    if (e == head_) return;
    Remove(e);
    PushFront(e);
  }
  // `fresh` takes `old`'s place in the list.
  void Replace(Entry* old, Entry* fresh) {
    fresh->prev = old->prev;
    fresh->next = old->next;
    (old->prev != nullptr ? old->prev->next : head_) = fresh;
    (old->next != nullptr ? old->next->prev : tail_) = fresh;
    old->prev = old->next = nullptr;
  }
  // Forgets every entry without touching them (the caller frees them).
  void Reset() {
    head_ = tail_ = nullptr;
    size_ = 0;
  }

 private:
  Entry* head_ = nullptr;
  Entry* tail_ = nullptr;
  size_t size_ = 0;
};

// A fast 64-bit key hash that, unlike absl::Hash, is the same in every
// process: shard choice and eviction order are reproducible (tests, benches).
// wyhash-style 128-bit multiply mixing.
inline uint64_t Mix(uint64_t a, uint64_t b) {
  const __uint128_t r = static_cast<__uint128_t>(a) * b;
  return static_cast<uint64_t>(r) ^ static_cast<uint64_t>(r >> 64);
}
inline uint64_t Read64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, 8);
  return v;
}
inline uint64_t Read32(const char* p) {
  uint32_t v;
  std::memcpy(&v, p, 4);
  return v;
}
inline uint64_t HashKey(std::string_view key) {
  constexpr uint64_t kP0 = 0xa0761d6478bd642full;
  constexpr uint64_t kP1 = 0xe7037ed1a0b428dbull;
  constexpr uint64_t kP2 = 0x8ebc6af09c88c6e3ull;
  const char* p = key.data();
  size_t n = key.size();
  uint64_t seed = kP0 ^ Mix(n ^ kP0, kP1);
  for (; n > 16; p += 16, n -= 16) {
    seed = Mix(Read64(p) ^ kP1, Read64(p + 8) ^ seed);
  }
  uint64_t a = 0;
  uint64_t b = 0;
  if (n >= 8) {
    a = Read64(p);
    b = Read64(p + n - 8);
  } else if (n >= 4) {
    a = Read32(p);
    b = Read32(p + n - 4);
  } else if (n > 0) {
    a = (uint64_t{static_cast<uint8_t>(p[0])} << 16) |
        (uint64_t{static_cast<uint8_t>(p[n >> 1])} << 8) | uint64_t{static_cast<uint8_t>(p[n - 1])};
  }
  return Mix(Mix(a ^ kP1, b ^ seed) ^ kP2, key.size() ^ kP1);
}

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
