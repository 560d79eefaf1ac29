// Reader::Mapping: one published file as the reader maps it, its tables
// found and bounds-checked at open (Build, mapping.cc), and the index probe
// Lookup runs on them (inline here: it is the hit path). Internal to
// src/localread (reader.cc, mapping.cc); C++17 only, like reader.h.
//
// Thread-safety: a Mapping is built by the one opening thread, then only
// read (any number of Gets at once); Find may race the writer and returns
// whatever a torn read gives, never reading out of bounds.
#ifndef CACHECAR_LOCALREAD_MAPPING_H_
#define CACHECAR_LOCALREAD_MAPPING_H_

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "localread/layout.h"
#include "localread/reader.h"

namespace cachecar::localread {

// off + len <= total, without overflow.
inline bool InBounds(uint64_t off, uint64_t len, uint64_t total) {
  return off <= total && len <= total - off;
}
inline bool PowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }

// a[0, n) == b[0, n): short keys and names (the common case) by a few word
// compares inline, instead of a call to memcmp.
inline bool SameBytes(const char* a, const char* b, size_t n) {
  if (n > 32) return std::memcmp(a, b, n) == 0;
  if (n >= 8) {
    for (size_t i = 0; i + 8 < n; i += 8) {
      if (Read64(a + i) != Read64(b + i)) return false;
    }
    return Read64(a + n - 8) == Read64(b + n - 8);
  }
  if (n >= 4) return Read32(a) == Read32(b) && Read32(a + n - 4) == Read32(b + n - 4);
  for (size_t i = 0; i < n; ++i) {
    if (a[i] != b[i]) return false;
  }
  return true;
}

// What one pass over a shard's index found.
enum class Probe { kFound, kNotFound, kBroken };

// One mapped file, checked at open; immutable afterwards and never freed
// before the Reader (a Get on another thread may still hold it).
struct Reader::Mapping {
  struct Shard {
    const ShardHeader* header;
    const std::atomic<uint64_t>* slots;
    uint64_t max_slots;
    const char* arena;
    uint64_t arena_bytes;

    // One pass over the index for `key` (Lookup's, between its reads of the
    // shard's seq): kFound copies the entry's header to *entry and its value
    // to sink. Every offset is bounds-checked; a torn read may find anything.
    template <typename Sink>
    Probe Find(std::string_view key, uint32_t tag, EntryHeader* entry, Sink& sink) const {
      const uint64_t mask = header->index_mask.load(std::memory_order_relaxed);
      if (mask + 1 > max_slots || !PowerOfTwo(mask + 1)) return Probe::kBroken;
      const uint64_t probes = std::min<uint64_t>(mask + 1, kMaxProbes);
      uint64_t pos = tag & mask;
      for (uint64_t p = 0; p < probes; ++p, pos = (pos + 1) & mask) {
        const uint64_t slot = slots[pos].load(std::memory_order_relaxed);
        if (slot == 0) break;
        if (SlotTag(slot) != tag) continue;
        const uint64_t at = uint64_t{SlotRef(slot)} * 8;
        if (!InBounds(at, kEntryHeaderBytes, arena_bytes)) return Probe::kBroken;
        std::memcpy(entry, arena + at, sizeof(*entry));
        const uint64_t body = uint64_t{entry->key_size} + entry->value_size;
        if (!InBounds(at + kEntryHeaderBytes, body, arena_bytes)) return Probe::kBroken;
        const char* bytes = arena + at + kEntryHeaderBytes;
        if (entry->key_size == key.size() && SameBytes(bytes, key.data(), key.size())) {
          sink.Copy(bytes + entry->key_size, entry->value_size);
          return Probe::kFound;
        }
      }
      return Probe::kNotFound;
    }
  };
  struct Namespace {
    std::string name;
    const NamespaceHeader* header;
    uint32_t index;
    uint32_t shard_count;
    std::vector<Shard> shards;
  };
  const FileHeader* header = nullptr;
  uint64_t file_bytes = 0;
  uint64_t instance_id = 0;
  uint32_t max_key_bytes = 0;
  std::vector<Namespace> namespaces;
  const Namespace* by_default = nullptr;
  // Set by the first Get that finds this file retired or replaced: that one
  // reopens at once, later ones at the reopen interval.
  mutable std::atomic<bool> gone_noticed{false};

  const Namespace* Find(std::string_view name) const {
    if (name.empty()) return by_default;
    for (const Namespace& ns : namespaces) {
      if (ns.name.size() == name.size() && SameBytes(ns.name.data(), name.data(), name.size())) {
        return &ns;
      }
    }
    return nullptr;
  }

  // Fills this in from the file mapped at `base` (`mapped` bytes), checking
  // that every table and arena lies inside it.
  Result Build(const char* base, uint64_t mapped);
};

}  // namespace cachecar::localread

#endif  // CACHECAR_LOCALREAD_MAPPING_H_
