// The local reader: answers cache hits from the file cachecar publishes at
// local_read_path (docs/LOCAL_READS.md), with no syscall and no gRPC call,
// and says "fall back" (ask cachecar over gRPC) whenever the file cannot
// answer exactly as a gRPC Get on that replica would: a miss, an expired
// entry, a replica past its staleness bound, STRONG reads, a file that is
// missing, starting, retired, of another layout version, damaged, or busy.
//
// It maps the file read-only and never writes it. A corrupt or truncated
// file makes it fall back, never crash: every offset it reads is checked
// against the mapping and every loop is bounded. When cachecar replaces the
// file (a restart), the reader maps the new one over the old one's address
// range (reserved at the first open), so a Get in flight on another thread
// never touches unmapped memory; it notices and falls back.
//
// Hits it serves are reported to cachecar (counted per key, up to 3, and
// sent every 10 ms of activity over the file's ".hits" socket, never
// waiting), so eviction sees them as it sees gRPC hits.
//
// Self-contained: C++17 and POSIX only (no gRPC, no abseil), so the client
// packages can take it as it is. cachecar_localread.h is its C ABI.
//
// Thread-safety: a Reader may be used from many threads at once; Get never
// blocks (the one thread that reopens a file does it while the others fall
// back). Destroy it only when no call is in flight.
#ifndef CACHECAR_LOCALREAD_READER_H_
#define CACHECAR_LOCALREAD_READER_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

namespace cachecar::localread {

// Same numbers as the C ABI's CACHECAR_LOCALREAD_* codes.
enum class Result : int {
  kHit = 0,                // the value and its version
  kAbsent = 1,             // the key does not exist, at the version given
  kMiss = 2,               // fallback: not cached (or cached before a flush)
  kExpired = 3,            // fallback: cached, but its TTL passed
  kStale = 4,              // fallback: the replica cannot vouch for its cache now
  kNotServing = 5,         // fallback: no file, or starting, retired or replaced
  kIncompatible = 6,       // fallback: another magic or layout version
  kCorrupt = 7,            // fallback: the file failed a bounds check
  kBusy = 8,               // fallback: the shard kept changing while read
  kStrong = 9,             // fallback: STRONG consistency was asked
  kUnknownNamespace = 10,  // fallback: gRPC answers INVALID_ARGUMENT
  kBadKey = 11,            // fallback: empty or over max_key_bytes (gRPC says why)
  kBufferTooSmall = 12,    // GetInto only: *value_len holds the size needed
};
inline constexpr int kResultCount = 13;

// True for every result that means "ask cachecar over gRPC".
inline bool IsFallback(Result r) {
  return r != Result::kHit && r != Result::kAbsent && r != Result::kBufferTooSmall;
}
const char* ResultName(Result r);

struct ReaderOptions {
  // The file cachecar publishes (its local_read_path).
  std::string path;
  // Report served hits to cachecar's eviction (recommended).
  bool report_hits = true;
  // The real-time clock, unix ns; null: CLOCK_REALTIME. For tests.
  int64_t (*now_ns)(void* context) = nullptr;
  void* now_context = nullptr;
  // Least time between attempts to open a missing or unusable file.
  int64_t reopen_interval_ns = 100'000'000;
  // How often collected hits are sent (while Gets happen).
  int64_t report_interval_ns = 10'000'000;
};

// Counters of rare events (the hit path counts nothing: callers count their
// own results, so threads do not share a written cache line per Get).
struct ReaderStats {
  uint64_t opens = 0;                             // files mapped
  uint64_t open_failures = 0;                     // attempts that found no usable file
  uint64_t reports_sent = 0;                      // hit report messages sent
  uint64_t reports_dropped = 0;                   // not sent: no socket, or it was full
  uint64_t mapped_bytes = 0;                      // size of the file mapped now (0: none)
  Result last_open_result = Result::kNotServing;  // why the last failed open failed
};

class Reader {
 public:
  explicit Reader(ReaderOptions options);
  ~Reader();
  Reader(const Reader&) = delete;
  Reader& operator=(const Reader&) = delete;

  // Looks `key` up in namespace `ns` ("" = "default"). kHit: *value and
  // *version set; kAbsent: *version set. Anything else is a fallback.
  Result Get(std::string_view ns, std::string_view key, std::string* value, uint64_t* version,
             bool strong = false);
  // As Get, copying the value into buf[0, capacity): kBufferTooSmall sets
  // *value_len to the size needed (call again with a larger buffer).
  Result GetInto(std::string_view ns, std::string_view key, char* buf, size_t capacity,
                 size_t* value_len, uint64_t* version, bool strong = false);

  // Sends the hits collected so far now.
  void FlushHits();
  ReaderStats Stats() const;

 private:
  struct Mapping;
  struct HitSlot {
    std::atomic<uint64_t> hash{0};
    std::atomic<uint32_t> ns{0};
    std::atomic<uint32_t> hits{0};
  };
  static constexpr size_t kHitSlots = 4096;

  template <typename Sink>
  Result Lookup(std::string_view ns, std::string_view key, uint64_t* version, bool strong,
                Sink& sink);
  int64_t Now() const;
  // The mapping to read, opening or reopening the file when it is due; null
  // (and *why set) when there is none.
  const Mapping* Current(int64_t now, Result* why);      // the hit path's check
  const Mapping* CurrentSlow(int64_t now, Result* why);  // everything else
  // Opens the path; called by one thread at a time (as Reserve and MapFile,
  // its steps: the range to map files in, and the file mapped over it).
  Result Open();
  bool Reserve(uint64_t file_bytes);
  bool MapFile(int fd, uint64_t file_bytes);
  void MaybeReopen(int64_t now, bool now_please);
  void CountHit(uint64_t hash, uint32_t ns, int64_t now);
  void SendDueHits(int64_t now);  // hit_reports.cc, as what follows
  void SendHits(uint64_t instance_id);

  const ReaderOptions options_;
  std::atomic<const Mapping*> current_{nullptr};
  std::atomic<int64_t> next_open_ns_{0};

  std::mutex open_mu_;                              // one opener at a time; guards what follows
  std::vector<std::unique_ptr<Mapping>> mappings_;  // every one made (readers may hold any)
  char* reserved_ = nullptr;                        // the address range files are mapped in
  size_t reserved_bytes_ = 0;
  std::vector<std::pair<char*, size_t>> old_reservations_;  // zero-filled, unmapped at the end
  std::atomic<uint64_t> opens_{0}, open_failures_{0};
  std::atomic<int> last_open_result_{static_cast<int>(Result::kNotServing)};

  // Hit reports.
  std::unique_ptr<HitSlot[]> hit_slots_;
  std::atomic<int64_t> next_report_ns_{0};
  std::atomic<uint64_t> report_instance_id_{0};  // the file the counted hits came from
  std::atomic<bool> reporting_{false};
  int socket_fd_ = -1;           // guarded by reporting_
  int64_t next_connect_ns_ = 0;  // guarded by reporting_
  std::atomic<uint64_t> reports_sent_{0}, reports_dropped_{0};
};

}  // namespace cachecar::localread

#endif  // CACHECAR_LOCALREAD_READER_H_
