// Memory benchmark for the cache engine (issue #6): inserts N entries
// ("key:%07d" keys, 11 bytes; 100-byte values) into an Engine big enough to
// hold them all and reports the bytes each entry costs beyond its key and
// value, measured (RSS delta from /proc/self/statm) and as the engine
// accounts them (Stats().bytes). bench/memory_peers.sh measures Redis and
// memcached the same way.
//
// With --full it measures instead (a process of its own, so the first run's
// freed memory does not hide in the RSS) the steady state of a full cache: a budget of N
// entries, 4N distinct keys filled as the service fills a miss, every other
// one read once right after (so both S3-FIFO queues and the ghost of keys
// evicted from the small queue are in use), bytes per entry held at the end.
//
// Usage: cachecar_memory_bench [--entries N] [--full]
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

#include "absl/synchronization/mutex.h"
#include "cache/engine.h"

namespace cachecar::cache {
namespace {

constexpr size_t kKeyBytes = 11;  // "key:" + 7 digits
constexpr size_t kValueBytes = 100;

// Resident set size of this process, in bytes.
uint64_t ResidentBytes() {
  std::FILE* f = std::fopen("/proc/self/statm", "r");
  unsigned long long total_pages = 0;
  unsigned long long resident_pages = 0;
  if (f == nullptr || std::fscanf(f, "%llu %llu", &total_pages, &resident_pages) != 2) {
    std::fprintf(stderr, "cannot read /proc/self/statm\n");
    std::exit(1);
  }
  std::fclose(f);
  return resident_pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE));
}

int Run(size_t n) {
  if (n == 0 || n > 9999999) {
    std::fprintf(stderr, "--entries must be in 1..9999999 (7-digit keys)\n");
    return 2;
  }
  EngineOptions options;  // default shards and policy, as the sidecar runs
  options.max_bytes = 2 * n * (kKeyBytes + kValueBytes + Engine::EntryOverhead());
  const std::string value(kValueBytes, 'v');
  char key[kKeyBytes + 1];

  Engine engine(options);
  const uint64_t rss_before = ResidentBytes();
  for (size_t i = 0; i < n; ++i) {
    std::snprintf(key, sizeof(key), "key:%07zu", i);
    if (engine.Apply(std::string_view(key, kKeyBytes), 1, ChangeKind::kValue, value) !=
        ApplyResult::kApplied) {
      std::fprintf(stderr, "insert of %s was not applied\n", key);
      return 1;
    }
  }
  const uint64_t rss_after = ResidentBytes();
  const EngineStats stats = engine.Stats();
  if (stats.entries != n) {
    std::fprintf(stderr, "engine holds %llu entries, want %zu\n",
                 static_cast<unsigned long long>(stats.entries), n);
    return 1;
  }

  const double payload = kKeyBytes + kValueBytes;
  const double rss_per_entry = static_cast<double>(rss_after - rss_before) / n;
  const double accounted_per_entry = static_cast<double>(stats.bytes) / n;
  std::printf("entries: %zu (key %zu B, value %zu B), shards: %zu\n", n, kKeyBytes, kValueBytes,
              options.shards);
  std::printf("RSS: %llu -> %llu bytes, %.1f B/entry, %.1f beyond key+value\n",
              static_cast<unsigned long long>(rss_before),
              static_cast<unsigned long long>(rss_after), rss_per_entry, rss_per_entry - payload);
  std::printf(
      "engine accounting: %llu bytes, %.1f B/entry, %.1f beyond "
      "key+value (EntryOverhead() = %zu)\n",
      static_cast<unsigned long long>(stats.bytes), accounted_per_entry,
      accounted_per_entry - payload, Engine::EntryOverhead());
  // The row bench/engine.sh puts in its memory table.
  std::printf("| cachecar engine | %.1f | %.1f |\n", rss_per_entry - payload,
              accounted_per_entry - payload);
  return 0;
}

// The steady state of a full, evicting cache (see the header comment).
int RunFull(size_t n) {
  if (4 * n > 9999999) {
    std::fprintf(stderr, "--entries must be at most 2499999 for the full-cache run\n");
    return 2;
  }
  EngineOptions options;
  options.max_bytes = n * (kKeyBytes + kValueBytes + Engine::EntryOverhead());
  const std::string value(kValueBytes, 'v');
  char key[kKeyBytes + 1];

  Engine engine(options);
  const uint64_t rss_before = ResidentBytes();
  for (size_t i = 0; i < 4 * n; ++i) {
    std::snprintf(key, sizeof(key), "key:%07zu", i);
    const std::string_view k(key, kKeyBytes);
    FillTicket ticket = engine.BeginFill(k);
    if (engine.CompleteFill(std::move(ticket), 1, value) != FillResult::kAccepted) {
      std::fprintf(stderr, "fill of %s was not accepted\n", key);
      return 1;
    }
    if (i % 2 == 0) engine.Get(k);
  }
  const uint64_t rss_after = ResidentBytes();
  const EngineStats stats = engine.Stats();
  const double payload = kKeyBytes + kValueBytes;
  const double rss_per_entry = static_cast<double>(rss_after - rss_before) / stats.entries;
  const double accounted_per_entry = static_cast<double>(stats.bytes) / stats.entries;
  std::printf("full cache: budget for %zu entries, %zu keys filled, %llu held, %llu evicted\n", n,
              4 * n, static_cast<unsigned long long>(stats.entries),
              static_cast<unsigned long long>(stats.evictions));
  std::printf("RSS: %llu -> %llu bytes, %.1f beyond key+value per entry held\n",
              static_cast<unsigned long long>(rss_before),
              static_cast<unsigned long long>(rss_after), rss_per_entry - payload);
  std::printf("| cachecar engine, full and evicting (ghost in use) | %.1f | %.1f |\n",
              rss_per_entry - payload, accounted_per_entry - payload);
  return 0;
}

}  // namespace
}  // namespace cachecar::cache

int main(int argc, char** argv) {
  // Debian's abseil runs absl::Mutex's deadlock detector unless told not to
  // (see src/cache/engine_bench.cc); its lock graph would grow RSS too.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  size_t entries = 1000000;
  bool full = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--entries") == 0 && i + 1 < argc) {
      entries = std::strtoull(argv[++i], nullptr, 10);
    } else if (std::strcmp(argv[i], "--full") == 0) {
      full = true;
    } else {
      std::fprintf(stderr, "usage: %s [--entries N] [--full]\n", argv[0]);
      return 2;
    }
  }
  return full ? cachecar::cache::RunFull(entries) : cachecar::cache::Run(entries);
}
