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
#include "localread/mapping.h"

namespace cachecar::localread {
namespace {

// Attempts at a consistent read; while the shard is being changed, the
// wait before the next one grows (1, 1, 1, 1, 2, ... 32 pauses: ~5 us in all)
// before giving up (BUSY: gRPC waits on the shard's lock instead).
constexpr int kAttempts = 24;
constexpr size_t kReserveAlign = size_t{2} << 20;

size_t RoundUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

// Replaces [at, at + n) of the reserved range with zero pages; false when
// mmap failed (the range may then be a hole: Linux unmaps before mapping).
[[nodiscard]] bool ZeroFill(char* at, size_t n) {
  return mmap(at, n, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED | MAP_NORESERVE, -1, 0) !=
         MAP_FAILED;
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

Reader::Reader(ReaderOptions options)
    : options_(std::move(options)), hit_slots_(new HitSlot[kHitSlots]) {}

Reader::~Reader() {
  // munmap fails only for a range that is not page-aligned or not ours,
  // which these are not; a destructor could do nothing about it anyway.
  if (reserved_ != nullptr) static_cast<void>(munmap(reserved_, reserved_bytes_));
  for (auto& [p, n] : old_reservations_) static_cast<void>(munmap(p, n));
  if (socket_fd_ >= 0) close(socket_fd_);
}

int64_t Reader::Now() const {
  return options_.now_ns != nullptr ? options_.now_ns(options_.now_context) : RealNow();
}

namespace {

// Opens the file at the path and checks its header; -1 (and *why set) when
// it is missing, not a regular file, of another layout or truncated.
int OpenCacheFile(const std::string& path, uint64_t* file_bytes, Result* why) {
  const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    *why = Result::kNotServing;
    return -1;
  }
  struct stat st;
  FileHeader header;
  *why = Result::kCorrupt;
  if (fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= kHeaderBytes &&
      pread(fd, &header, sizeof(header), 0) == static_cast<ssize_t>(sizeof(header))) {
    *file_bytes = header.file_bytes;
    if (header.magic != kMagic || header.layout_version != kLayoutVersion) {
      *why = Result::kIncompatible;
    } else if (*file_bytes >= kHeaderBytes && *file_bytes <= static_cast<uint64_t>(st.st_size)) {
      return fd;
    }  // else truncated (or lying about its size): kCorrupt
  }
  close(fd);
  return -1;
}

}  // namespace

// Makes the reserved range hold at least file_bytes. A larger one replaces
// it; the old one reads as zeros from then on (Gets in flight may still read
// it) and is unmapped with the Reader.
bool Reader::Reserve(uint64_t file_bytes) {
  if (reserved_ != nullptr && file_bytes <= reserved_bytes_) return true;
  const size_t bytes = RoundUp(file_bytes, kReserveAlign);
  void* range = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (range == MAP_FAILED) return false;
  if (reserved_ != nullptr) {
    // Failing leaves the old file's pages, or (Linux unmaps first) a hole
    // nothing here could keep a Get in flight from: go on either way.
    static_cast<void>(ZeroFill(reserved_, reserved_bytes_));
    old_reservations_.emplace_back(reserved_, reserved_bytes_);
  }
  reserved_ = static_cast<char*>(range);
  reserved_bytes_ = bytes;
  return true;
}

// Maps fd's file_bytes over the reserved range: the previous file's pages
// are replaced at once, and what lies past the new file reads as zeros.
bool Reader::MapFile(int fd, uint64_t file_bytes) {
  void* p = mmap(reserved_, file_bytes, PROT_READ, MAP_SHARED | MAP_FIXED, fd, 0);
  if (p == MAP_FAILED) {
    // The range may be gone: zeros, never a hole. Should that fail too, the
    // open fails all the same (nothing else could keep Gets from the hole).
    static_cast<void>(ZeroFill(reserved_, reserved_bytes_));
    return false;
  }
  const size_t mapped = RoundUp(file_bytes, static_cast<size_t>(sysconf(_SC_PAGESIZE)));
  // Past the new file only a Get in flight on the old one reads (the new
  // mapping is bounded by file_bytes): failing is no reason to fail the open.
  if (mapped < reserved_bytes_) {
    static_cast<void>(ZeroFill(reserved_ + mapped, reserved_bytes_ - mapped));
  }
  return true;
}

Result Reader::Open() {
  auto failed = [this](Result why) {
    open_failures_.fetch_add(1, std::memory_order_relaxed);
    last_open_result_.store(static_cast<int>(why), std::memory_order_relaxed);
    return why;
  };
  uint64_t file_bytes = 0;
  Result why = Result::kNotServing;
  const int fd = OpenCacheFile(options_.path, &file_bytes, &why);
  if (fd < 0) return failed(why);
  if (!Reserve(file_bytes)) {
    close(fd);
    return failed(Result::kNotServing);
  }
  const bool mapped = MapFile(fd, file_bytes);
  close(fd);
  if (!mapped) {
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
    EntryHeader entry;
    const Probe probe = shard.Find(key, tag, &entry, sink);
    std::atomic_thread_fence(std::memory_order_acquire);
    if (shard.header->seq.load(std::memory_order_relaxed) != s1) continue;  // torn: again
    if (__atomic_load_n(&m->header->instance_id, __ATOMIC_RELAXED) != m->instance_id) {
      return Result::kNotServing;  // the file was replaced under us
    }
    if (probe == Probe::kBroken) return Result::kCorrupt;
    if (probe == Probe::kNotFound || entry.epoch != epoch) return Result::kMiss;
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
