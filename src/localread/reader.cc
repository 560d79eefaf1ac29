// See reader.h; the read algorithm is docs/LOCAL_READS.md's, step by step.
#include "localread/reader.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "localread/cpu_relax.h"
#include "localread/layout.h"

namespace cachecar::localread {
namespace {

// Attempts at a consistent read; while the shard is being changed, the
// wait before the next one grows (1, 1, 1, 1, 2, ... 32 pauses: ~5 us in all)
// before giving up (BUSY: gRPC waits on the shard's lock instead).
constexpr int kAttempts = 24;
constexpr size_t kReserveAlign = size_t{2} << 20;

// off + len <= total, without overflow.
bool InBounds(uint64_t off, uint64_t len, uint64_t total) {
  return off <= total && len <= total - off;
}
bool PowerOfTwo(uint64_t v) { return v != 0 && (v & (v - 1)) == 0; }
size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

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

inline int64_t RealNow() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return int64_t{ts.tv_sec} * 1'000'000'000 + ts.tv_nsec;
}

}  // namespace

const char* ResultName(Result r) {
  static const char* const kNames[kResultCount] = {"HIT",
                                                   "ABSENT",
                                                   "MISS",
                                                   "EXPIRED",
                                                   "STALE",
                                                   "NOT_SERVING",
                                                   "INCOMPATIBLE",
                                                   "CORRUPT",
                                                   "BUSY",
                                                   "STRONG",
                                                   "UNKNOWN_NAMESPACE",
                                                   "BAD_KEY",
                                                   "BUFFER_TOO_SMALL"};
  const int i = static_cast<int>(r);
  return i >= 0 && i < kResultCount ? kNames[i] : "UNKNOWN";
}

// One mapped file, checked at open; immutable afterwards and never freed
// before the Reader (a Get on another thread may still hold it).
struct Reader::Mapping {
  struct Shard {
    const ShardHeader* header;
    const std::atomic<uint64_t>* slots;
    uint64_t max_slots;
    const char* arena;
    uint64_t arena_bytes;
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
  Result Build(const char* base, uint64_t mapped) {
    header = reinterpret_cast<const FileHeader*>(base);
    if (header->magic != kMagic || header->layout_version != kLayoutVersion) {
      return Result::kIncompatible;
    }
    file_bytes = header->file_bytes;
    if (header->header_bytes != kHeaderBytes || file_bytes < kHeaderBytes || file_bytes > mapped) {
      return Result::kCorrupt;
    }
    instance_id = header->instance_id;
    max_key_bytes = header->max_key_bytes;
    const uint64_t count = header->namespace_count;
    const uint64_t table = header->namespaces_offset;
    if (count == 0 || count > 1024 || table % 8 != 0 ||
        !InBounds(table, count * kNamespaceBytes, file_bytes)) {
      return Result::kCorrupt;
    }
    namespaces.clear();
    namespaces.reserve(count);
    for (uint32_t i = 0; i < count; ++i) {
      const auto* nh = reinterpret_cast<const NamespaceHeader*>(base + table + i * kNamespaceBytes);
      const uint64_t shards = nh->shard_count;
      const uint64_t shards_at = nh->shards_offset;
      if (nh->name_len == 0 || nh->name_len > kMaxNamespaceName || !PowerOfTwo(shards) ||
          shards > 1024 || shards_at % 64 != 0 ||
          !InBounds(shards_at, shards * kShardBytes, file_bytes)) {
        return Result::kCorrupt;
      }
      Namespace ns{std::string(nh->name, nh->name_len), nh, i, static_cast<uint32_t>(shards), {}};
      ns.shards.reserve(shards);
      for (uint64_t s = 0; s < shards; ++s) {
        const auto* sh = reinterpret_cast<const ShardHeader*>(base + shards_at + s * kShardBytes);
        const uint64_t slots = sh->index_max_slots;
        if (!PowerOfTwo(slots) || sh->index_offset % 8 != 0 || sh->arena_offset % 8 != 0 ||
            sh->arena_bytes % 8 != 0 || !InBounds(sh->index_offset, slots * 8, file_bytes) ||
            !InBounds(sh->arena_offset, sh->arena_bytes, file_bytes)) {
          return Result::kCorrupt;
        }
        ns.shards.push_back(
            Shard{sh, reinterpret_cast<const std::atomic<uint64_t>*>(base + sh->index_offset),
                  slots, base + sh->arena_offset, sh->arena_bytes});
      }
      namespaces.push_back(std::move(ns));
    }
    for (const Namespace& ns : namespaces) {
      if (ns.name == "default") by_default = &ns;
    }
    return Result::kHit;  // usable
  }
};

Reader::Reader(ReaderOptions options)
    : options_(std::move(options)), hit_slots_(new HitSlot[kHitSlots]) {}

Reader::~Reader() {
  if (reserved_ != nullptr) munmap(reserved_, reserved_bytes_);
  for (auto& [p, n] : old_reservations_) munmap(p, n);
  if (socket_fd_ >= 0) close(socket_fd_);
}

int64_t Reader::Now() const {
  return options_.now_ns != nullptr ? options_.now_ns(options_.now_context) : RealNow();
}

Result Reader::Open() {
  auto failed = [this](Result why) {
    open_failures_.fetch_add(1, std::memory_order_relaxed);
    last_open_result_.store(static_cast<int>(why), std::memory_order_relaxed);
    return why;
  };
  const int fd = open(options_.path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) return failed(Result::kNotServing);
  struct stat st;
  FileHeader header;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size < kHeaderBytes ||
      pread(fd, &header, sizeof(header), 0) != static_cast<ssize_t>(sizeof(header))) {
    close(fd);
    return failed(Result::kCorrupt);
  }
  if (header.magic != kMagic || header.layout_version != kLayoutVersion) {
    close(fd);
    return failed(Result::kIncompatible);
  }
  const uint64_t file_bytes = header.file_bytes;
  if (file_bytes < kHeaderBytes || file_bytes > static_cast<uint64_t>(st.st_size)) {
    close(fd);
    return failed(Result::kCorrupt);  // truncated (or lying about its size)
  }
  // Map it over the reserved range: the previous file's pages are replaced
  // at once, and what lies past the new file reads as zeros.
  if (reserved_ == nullptr || file_bytes > reserved_bytes_) {
    const size_t bytes = RoundUp(file_bytes, kReserveAlign);
    void* range =
        mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    if (range == MAP_FAILED) {
      close(fd);
      return failed(Result::kNotServing);
    }
    if (reserved_ != nullptr) {
      // Gets in flight may still read the old range: zeros from now on.
      mmap(reserved_, reserved_bytes_, PROT_READ,
           MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
      old_reservations_.emplace_back(reserved_, reserved_bytes_);
    }
    reserved_ = static_cast<char*>(range);
    reserved_bytes_ = bytes;
  }
  void* p = mmap(reserved_, file_bytes, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  close(fd);
  if (p == MAP_FAILED) {  // the range may be gone: zeros, never a hole
    mmap(reserved_, reserved_bytes_, PROT_READ,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  }
  const size_t mapped = RoundUp(file_bytes, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  if (mapped < reserved_bytes_) {
    mmap(reserved_ + mapped, reserved_bytes_ - mapped, PROT_READ,
         MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0);
  }
  if (p == MAP_FAILED) {
    current_.store(nullptr, std::memory_order_release);
    return failed(Result::kNotServing);
  }
  auto mapping = std::make_unique<Mapping>();
  const Result built = mapping->Build(reserved_, file_bytes);
  if (built != Result::kHit) {
    current_.store(nullptr, std::memory_order_release);
    return failed(built);
  }
  // Hits collected from the previous file name its entries, not these.
  for (size_t i = 0; i < kHitSlots; ++i) hit_slots_[i].hits.store(0, std::memory_order_relaxed);
  report_instance_id_.store(mapping->instance_id, std::memory_order_relaxed);
  current_.store(mapping.get(), std::memory_order_release);
  mappings_.push_back(std::move(mapping));
  opens_.fetch_add(1, std::memory_order_relaxed);
  return Result::kHit;
}

void Reader::MaybeReopen(int64_t now, bool now_please) {
  if (!now_please && now < next_open_ns_.load(std::memory_order_relaxed)) return;
  std::unique_lock<std::mutex> lock(open_mu_, std::try_to_lock);
  if (!lock.owns_lock()) return;  // another thread is at it
  // A retired file's successor is usually there already: try at once, then
  // no more often than reopen_interval_ns.
  if (!now_please && now < next_open_ns_.load(std::memory_order_relaxed)) return;
  next_open_ns_.store(now + options_.reopen_interval_ns, std::memory_order_relaxed);
  Open();
}

// The hit path's check (inline in Lookup): the mapping is there, serving,
// and still the file at its address; anything else goes the slow way.
inline const Reader::Mapping* Reader::Current(int64_t now, Result* why) {
  const Mapping* m = current_.load(std::memory_order_acquire);
  if (m != nullptr && m->header->state.load(std::memory_order_acquire) == kServing &&
      __atomic_load_n(&m->header->instance_id, __ATOMIC_RELAXED) == m->instance_id) {
    return m;
  }
  return CurrentSlow(now, why);
}

const Reader::Mapping* Reader::CurrentSlow(int64_t now, Result* why) {
  const Mapping* m = current_.load(std::memory_order_acquire);
  if (m == nullptr) {
    MaybeReopen(now, false);
    m = current_.load(std::memory_order_acquire);
    if (m == nullptr) {
      *why = static_cast<Result>(last_open_result_.load(std::memory_order_relaxed));
      return nullptr;
    }
  }
  const uint64_t state = m->header->state.load(std::memory_order_acquire);
  const bool replaced =
      __atomic_load_n(&m->header->instance_id, __ATOMIC_RELAXED) != m->instance_id;
  if (state != kServing || replaced) {
    // Retired: a new file may be at the path. Starting: wait for it here.
    if (state == kRetired || replaced) {
      MaybeReopen(now, !m->gone_noticed.exchange(true, std::memory_order_relaxed));
      const Mapping* fresh = current_.load(std::memory_order_acquire);
      if (fresh != m && fresh != nullptr &&
          fresh->header->state.load(std::memory_order_acquire) == kServing &&
          __atomic_load_n(&fresh->header->instance_id, __ATOMIC_RELAXED) == fresh->instance_id) {
        return fresh;
      }
    }
    *why = Result::kNotServing;
    return nullptr;
  }
  return m;
}

// Counts a served hit for the next report (up to 3 per key); sends the
// report when it is due. Racing threads may mix one slot's words up: that
// only skews this client's own counts.
inline void Reader::CountHit(uint64_t hash, uint32_t ns, int64_t now) {
  HitSlot& slot = hit_slots_[hash % kHitSlots];
  if (slot.hash.load(std::memory_order_relaxed) == hash &&
      slot.ns.load(std::memory_order_relaxed) == ns) {
    const uint32_t hits = slot.hits.load(std::memory_order_relaxed);
    if (hits < 3) slot.hits.store(hits + 1, std::memory_order_relaxed);
  } else {
    slot.hash.store(hash, std::memory_order_relaxed);
    slot.ns.store(ns, std::memory_order_relaxed);
    slot.hits.store(1, std::memory_order_relaxed);
  }
  if (now >= next_report_ns_.load(std::memory_order_relaxed)) SendDueHits(now);
}

// Now(), inlined into the hit path.
inline int64_t NowOf(const ReaderOptions& o) {
  return o.now_ns != nullptr ? o.now_ns(o.now_context) : RealNow();
}

template <typename Sink>
Result Reader::Lookup(std::string_view ns_name, std::string_view key, uint64_t* version,
                      bool strong, Sink& sink) {
  if (strong) return Result::kStrong;
  const int64_t now = NowOf(options_);
  Result why = Result::kNotServing;
  const Mapping* m = Current(now, &why);
  if (m == nullptr) return why;
  if (now > m->header->trusted_until_ns.load(std::memory_order_acquire)) return Result::kStale;
  const Mapping::Namespace* ns = m->Find(ns_name);
  if (ns == nullptr) return Result::kUnknownNamespace;
  if (key.empty() || key.size() > m->max_key_bytes) return Result::kBadKey;

  const uint64_t hash = HashKey(key);
  const uint32_t tag = static_cast<uint32_t>(hash >> 32);
  const Mapping::Shard& shard = ns->shards[ShardOf(hash, ns->shard_count)];
  for (int attempt = 0; attempt < kAttempts; ++attempt) {
    const uint64_t s1 = shard.header->seq.load(std::memory_order_acquire);
    if (s1 & 1) {
      for (int i = 0; i < (1 << (attempt / 4)); ++i) CpuRelax();
      continue;
    }
    const uint32_t epoch = static_cast<uint32_t>(ns->header->epoch.load(std::memory_order_acquire));
    const uint64_t mask = shard.header->index_mask.load(std::memory_order_relaxed);
    bool broken = mask + 1 > shard.max_slots || !PowerOfTwo(mask + 1);
    bool found = false;
    EntryHeader entry;
    if (!broken) {
      const uint64_t probes = std::min<uint64_t>(mask + 1, kMaxProbes);
      uint64_t pos = tag & mask;
      for (uint64_t p = 0; p < probes; ++p, pos = (pos + 1) & mask) {
        const uint64_t slot = shard.slots[pos].load(std::memory_order_relaxed);
        if (slot == 0) break;
        if (SlotTag(slot) != tag) continue;
        const uint64_t at = uint64_t{SlotRef(slot)} * 8;
        if (!InBounds(at, kEntryHeaderBytes, shard.arena_bytes)) {
          broken = true;
          break;
        }
        std::memcpy(&entry, shard.arena + at, sizeof(entry));
        const uint64_t body = uint64_t{entry.key_size} + entry.value_size;
        if (!InBounds(at + kEntryHeaderBytes, body, shard.arena_bytes)) {
          broken = true;
          break;
        }
        const char* bytes = shard.arena + at + kEntryHeaderBytes;
        if (entry.key_size == key.size() && SameBytes(bytes, key.data(), key.size())) {
          found = true;
          sink.Copy(bytes + entry.key_size, entry.value_size);
          break;
        }
      }
    }
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shard.header->seq.load(std::memory_order_relaxed) != s1) continue;  // torn: again
    if (__atomic_load_n(&m->header->instance_id, __ATOMIC_RELAXED) != m->instance_id) {
      return Result::kNotServing;  // the file was replaced under us
    }
    if (broken) return Result::kCorrupt;
    if (!found || entry.epoch != epoch) return Result::kMiss;
    if (entry.expires_ns != 0 && now >= entry.expires_ns) return Result::kExpired;
    if (version != nullptr) *version = entry.version;
    const bool absent = (entry.flags & kEntryAbsent) != 0;
    if (!absent && !sink.Fits()) return Result::kBufferTooSmall;
    if (options_.report_hits) CountHit(hash, ns->index, now);
    return absent ? Result::kAbsent : Result::kHit;
  }
  return Result::kBusy;
}

namespace {

struct StringSink {
  std::string* out;
  void Copy(const char* p, size_t n) {
    if (out->size() != n) out->resize(n);
    std::memcpy(out->data(), p, n);
  }
  bool Fits() const { return true; }
};

struct BufferSink {
  char* buf;
  size_t capacity;
  size_t* len;
  void Copy(const char* p, size_t n) {
    *len = n;
    if (n != 0 && n <= capacity) std::memcpy(buf, p, n);
  }
  bool Fits() const { return *len <= capacity; }
};

}  // namespace

Result Reader::Get(std::string_view ns, std::string_view key, std::string* value, uint64_t* version,
                   bool strong) {
  StringSink sink{value};
  return Lookup(ns, key, version, strong, sink);
}

Result Reader::GetInto(std::string_view ns, std::string_view key, char* buf, size_t capacity,
                       size_t* value_len, uint64_t* version, bool strong) {
  size_t ignored = 0;
  BufferSink sink{buf, capacity, value_len != nullptr ? value_len : &ignored};
  *sink.len = 0;
  return Lookup(ns, key, version, strong, sink);
}

ReaderStats Reader::Stats() const {
  ReaderStats s;
  s.opens = opens_.load(std::memory_order_relaxed);
  s.open_failures = open_failures_.load(std::memory_order_relaxed);
  s.reports_sent = reports_sent_.load(std::memory_order_relaxed);
  s.reports_dropped = reports_dropped_.load(std::memory_order_relaxed);
  s.last_open_result = static_cast<Result>(last_open_result_.load(std::memory_order_relaxed));
  if (const Mapping* m = current_.load(std::memory_order_acquire)) s.mapped_bytes = m->file_bytes;
  return s;
}

}  // namespace cachecar::localread
