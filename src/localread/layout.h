// The published cache's file format, layout version 1: the one definition
// shared by cachecar (which writes the file) and the local readers (which
// map it read-only). docs/LOCAL_READS.md describes the same format in prose,
// for readers written in other languages; the two must agree (the offsets
// below are static_asserted).
//
// Everything is little-endian and naturally aligned. Offsets are bytes from
// the start of the file, except entry references ("refs"), which count
// 8-byte units from the start of their shard's arena.
//
// This header depends on nothing but the C++17 standard library, so the
// reader library can be built anywhere (clients/cpp takes it as is).
//
// Thread-safety: plain definitions. The fields that change while readers map
// the file are std::atomic (lock-free and address-free, so valid across
// processes); readers load them with acquire/relaxed order as the comments
// say, under the shard's sequence lock.
#ifndef CACHECAR_LOCALREAD_LAYOUT_H_
#define CACHECAR_LOCALREAD_LAYOUT_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string_view>

namespace cachecar::localread {

// "cachecar" in ASCII, read as a little-endian u64.
inline constexpr uint64_t kMagic = 0x7261636568636163ull;
inline constexpr uint32_t kLayoutVersion = 1;
inline constexpr uint32_t kHeaderBytes = 4096;
inline constexpr uint32_t kNamespaceBytes = 128;
inline constexpr uint32_t kShardBytes = 64;
inline constexpr uint32_t kEntryHeaderBytes = 48;
inline constexpr size_t kMaxNamespaceName = 64;

// FileHeader::state. The offsets of magic (0), layout_version (8) and state
// (32) are the same in every layout version, so any cachecar can retire a
// file written by any other.
enum State : uint64_t {
  kStarting = 1,  // being filled in; not yet answering (readers fall back)
  kServing = 2,   // live: answer from it
  kRetired = 3,   // its writer stopped or was replaced: reopen the path
};

// trusted_until_ns sentinels.
inline constexpr int64_t kTrustedAlways = INT64_MAX;  // no staleness bound applies
inline constexpr int64_t kTrustedNever = INT64_MIN;   // bypass: every read goes to gRPC

struct FileHeader {
  uint64_t magic;                         // 0   kMagic
  uint32_t layout_version;                // 8   kLayoutVersion
  uint32_t header_bytes;                  // 12  kHeaderBytes
  uint64_t file_bytes;                    // 16  the whole file; a shorter file is truncated
  uint64_t instance_id;                   // 24  random, nonzero, new with every file
  std::atomic<uint64_t> state;            // 32  State (acquire)
  std::atomic<int64_t> trusted_until_ns;  // 40  unix ns up to which cached reads may be served
  uint64_t namespaces_offset;             // 48  the NamespaceHeader array
  uint32_t namespace_count;               // 56
  uint32_t max_key_bytes;                 // 60  longer keys: ask gRPC (it says why)
  std::atomic<int64_t> published_ns;      // 64  last freshness publication (informational)
  uint32_t writer_pid;                    // 72  informational
  uint32_t publish_period_us;             // 76  how often freshness is republished
  uint8_t reserved[kHeaderBytes - 80];
};

struct NamespaceHeader {
  char name[kMaxNamespaceName];  // 0   NUL-padded
  uint32_t name_len;             // 64  1..64
  uint32_t shard_count;          // 68  power of two, 1..1024
  // The engine's flush epoch: an entry whose epoch field differs from its
  // low 32 bits was cached before a flush and is dead (acquire).
  std::atomic<uint64_t> epoch;  // 72
  // Versions at or below it are pre-flush news (informational for readers).
  std::atomic<uint64_t> floor;  // 80
  uint64_t shards_offset;       // 88  the ShardHeader array
  uint8_t reserved[kNamespaceBytes - 96];
};

struct alignas(64) ShardHeader {
  // Sequence lock over the shard's index and arena: odd while cachecar
  // changes anything a reader looks at; a read is good only if seq was even
  // and unchanged from before its first access to after its last.
  std::atomic<uint64_t> seq;         // 0
  uint64_t index_offset;             // 8   u64 slots, index_max_slots of them
  std::atomic<uint32_t> index_mask;  // 16  slots in use - 1 (power of two - 1)
  uint32_t index_max_slots;          // 20  power of two
  uint64_t arena_offset;             // 24
  uint64_t arena_bytes;              // 32  multiple of 8, at most 2^34
  uint8_t reserved[kShardBytes - 40];
};

// An index slot: 0 = empty, else (tag << 32) | ref with tag = hash >> 32.
inline constexpr uint32_t SlotRef(uint64_t slot) { return static_cast<uint32_t>(slot); }
inline constexpr uint32_t SlotTag(uint64_t slot) { return static_cast<uint32_t>(slot >> 32); }
inline constexpr uint64_t MakeSlot(uint64_t hash, uint32_t ref) {
  return (hash & 0xffffffff00000000ull) | ref;
}

// An entry, at arena_offset + ref * 8, followed by key_size key bytes and
// value_size value bytes. Bytes 29..47 belong to cachecar (eviction links
// and counters); readers ignore them.
struct EntryHeader {
  uint64_t version;     // 0
  int64_t expires_ns;   // 8   unix ns; 0 = never expires
  uint32_t key_size;    // 16
  uint32_t value_size;  // 20  0 for an absent entry
  uint32_t epoch;       // 24  low 32 bits of the namespace epoch it was written in
  uint8_t flags;        // 28  kEntryAbsent
  uint8_t queue;        // 29  (cachecar: which eviction queue)
  uint8_t freq;         // 30  (cachecar: access counter)
  uint8_t unused;       // 31
  uint64_t hash;        // 32  (cachecar) HashKey(key)
  uint32_t prev;        // 40  (cachecar) eviction list links, refs
  uint32_t next;        // 44
};
inline constexpr uint8_t kEntryAbsent = 1;  // "absent at version": a cached delete

// Probes a reader makes before calling a key a miss (cachecar keeps the load
// at or below 3/4, so real probe runs are far shorter; a longer one only
// makes a key fall back). The bound is for damaged files.
inline constexpr uint32_t kMaxProbes = 1024;

static_assert(sizeof(FileHeader) == kHeaderBytes, "layout v1");
static_assert(offsetof(FileHeader, state) == 32, "state is at 32 in every layout version");
static_assert(offsetof(FileHeader, trusted_until_ns) == 40, "layout v1");
static_assert(offsetof(FileHeader, published_ns) == 64, "layout v1");
static_assert(sizeof(NamespaceHeader) == kNamespaceBytes, "layout v1");
static_assert(offsetof(NamespaceHeader, epoch) == 72, "layout v1");
static_assert(offsetof(NamespaceHeader, shards_offset) == 88, "layout v1");
static_assert(sizeof(ShardHeader) == kShardBytes, "layout v1");
static_assert(offsetof(ShardHeader, index_mask) == 16, "layout v1");
static_assert(offsetof(ShardHeader, arena_bytes) == 32, "layout v1");
static_assert(sizeof(EntryHeader) == kEntryHeaderBytes, "layout v1");
static_assert(std::atomic<uint64_t>::is_always_lock_free, "shared atomics must be lock-free");
static_assert(std::atomic<uint32_t>::is_always_lock_free, "shared atomics must be lock-free");

// The key hash every reader must compute exactly as cachecar does: a
// wyhash-style 128-bit multiply mix (docs/LOCAL_READS.md spells it out).
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

// Which of a namespace's shards holds the key (shard_count a power of two):
// the high 64 bits of hash * shard_count.
inline uint32_t ShardOf(uint64_t hash, uint32_t shard_count) {
  return static_cast<uint32_t>((static_cast<__uint128_t>(hash) * shard_count) >> 64);
}

// ---------------------------------------------------------------------------
// Hit reports: the channel through which readers tell cachecar which entries
// they served, so that eviction (S3-FIFO) sees local hits too. A SOCK_SEQPACKET
// unix socket at the file's path + ".hits"; each client connection is its own
// channel, read fairly and never trusted (a client can only make the keys it
// names look as used as if it had read them through gRPC).

inline constexpr uint32_t kHitsMagic = 0x53544948;  // "HITS"
inline constexpr uint16_t kHitsVersion = 1;
inline constexpr size_t kHitsMaxMessage = 4096;
inline constexpr char kHitsSuffix[] = ".hits";

struct HitsMessageHeader {
  uint32_t magic;        // kHitsMagic
  uint16_t version;      // kHitsVersion
  uint16_t count;        // records that follow, 1..255
  uint64_t instance_id;  // the file the hits were served from
};
struct HitRecord {
  uint64_t hash;  // HashKey(key)
  uint32_t ns;    // namespace index in the file
  uint32_t hits;  // 1..3 (more counts as 3)
};
static_assert(sizeof(HitsMessageHeader) == 16 && sizeof(HitRecord) == 16, "hits protocol v1");
inline constexpr size_t kHitsMaxRecords =
    (kHitsMaxMessage - sizeof(HitsMessageHeader)) / sizeof(HitRecord);

}  // namespace cachecar::localread

#endif  // CACHECAR_LOCALREAD_LAYOUT_H_
