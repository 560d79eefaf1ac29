// Hit-ratio benchmark for the cache engine (issue #6): replays deterministic
// traces (fixed seeds) through the real cachecar::cache::Engine with S3-FIFO
// (our policy) and LRU (the baseline), next to Belady's offline optimum for
// the same capacity (with admission: see BeladyHitRatio), and prints a
// markdown table plus whether S3-FIFO is at least as good as LRU everywhere.
//
// The engine is used as the service uses it, as a read-through cache: Get,
// and on a miss BeginFill + CompleteFill (an Apply of an evicted key at the
// same version would be kStale: the engine remembers evicted versions).
// One shard, fixed-width keys and equal-size values, so a byte budget of
// capacity * (key + value + Engine::EntryOverhead()) holds exactly
// `capacity` entries; the run checks that with Stats().entries.
//
// Usage: cachecar_hit_ratio [--smoke] [--verbose]
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <queue>
#include <random>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cache/engine.h"

namespace cachecar::cache {
namespace {

using Trace = std::vector<uint32_t>;  // one key id per request

constexpr size_t kKeyDigits = 9;  // keys are "k" + 9 digits: 10 bytes
constexpr size_t kKeyBytes = 1 + kKeyDigits;
constexpr size_t kValueBytes = 16;

// The fixed-width key for an id.
std::string_view KeyFor(uint32_t id, char (&buf)[kKeyBytes]) {
  buf[0] = 'k';
  for (size_t i = kKeyDigits; i > 0; --i, id /= 10) buf[i] = '0' + id % 10;
  return {buf, kKeyBytes};
}

// A uniform double in [0, 1) from the generator's top 53 bits: unlike
// std::uniform_real_distribution, the same in every standard library.
double Uniform(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

// Draws key ids 0..n-1 with P(rank r) ~ 1/r^alpha. Ranks are shuffled onto
// ids so popularity is unrelated to key order.
class ZipfKeys {
 public:
  ZipfKeys(uint32_t n, double alpha, std::mt19937_64& rng) : ids_(n) {
    cdf_.reserve(n);
    double sum = 0;
    for (uint32_t r = 1; r <= n; ++r) {
      sum += 1.0 / std::pow(static_cast<double>(r), alpha);
      cdf_.push_back(sum);
    }
    for (double& c : cdf_) c /= sum;
    for (uint32_t i = 0; i < n; ++i) ids_[i] = i;
    for (uint32_t i = n - 1; i > 0; --i) {
      std::swap(ids_[i], ids_[rng() % (i + 1)]);
    }
  }
  uint32_t Next(std::mt19937_64& rng) const {
    const size_t rank = std::lower_bound(cdf_.begin(), cdf_.end(), Uniform(rng)) - cdf_.begin();
    return ids_[std::min(rank, ids_.size() - 1)];
  }

 private:
  std::vector<double> cdf_;
  std::vector<uint32_t> ids_;
};

Trace ZipfTrace(uint32_t keys, size_t requests, uint64_t seed) {
  std::mt19937_64 rng(seed);
  const ZipfKeys zipf(keys, 0.9, rng);
  Trace trace(requests);
  for (uint32_t& id : trace) id = zipf.Next(rng);
  return trace;
}

// Zipf requests with sequential scans of never-repeated keys (ids from
// `keys` up) interleaved at random points; scans are `scan_fraction` of the
// requests, each `scan_length` long.
Trace ScanPollutedTrace(uint32_t keys, size_t requests, uint32_t scan_length, double scan_fraction,
                        uint64_t seed) {
  std::mt19937_64 rng(seed);
  const ZipfKeys zipf(keys, 0.9, rng);
  // P(a scan starts) solving p*L / (p*L + (1 - p)) = scan_fraction.
  const double ratio = scan_fraction / (1 - scan_fraction);
  const double scan_start = ratio / (scan_length + ratio);
  uint32_t next_scan_id = keys;
  Trace trace;
  trace.reserve(requests + scan_length);
  while (trace.size() < requests) {
    if (Uniform(rng) < scan_start) {
      for (uint32_t i = 0; i < scan_length; ++i) trace.push_back(next_scan_id++);
    } else {
      trace.push_back(zipf.Next(rng));
    }
  }
  trace.resize(requests);
  return trace;
}

Trace LoopTrace(uint32_t loop_length, size_t requests) {
  Trace trace(requests);
  for (size_t i = 0; i < requests; ++i) trace[i] = i % loop_length;
  return trace;
}

size_t UniqueKeys(const Trace& trace) {
  Trace ids = trace;
  std::sort(ids.begin(), ids.end());
  return std::unique(ids.begin(), ids.end()) - ids.begin();
}

struct EngineRun {
  double hit_ratio;
  uint64_t entries_at_end;
};

// Replays `trace` through an Engine sized for `capacity` entries as a
// read-through cache. Aborts if the engine rejects a fill or holds other
// than min(capacity, unique keys) entries at the end.
EngineRun ReplayThroughEngine(const Trace& trace, size_t capacity, size_t unique_keys,
                              EvictionPolicy policy) {
  EngineOptions options;
  options.shards = 1;
  options.policy = policy;
  options.max_bytes = capacity * (kKeyBytes + kValueBytes + Engine::EntryOverhead());
  Engine engine(options);
  const std::string value(kValueBytes, 'v');
  char buf[kKeyBytes];
  uint64_t hits = 0;
  for (uint32_t id : trace) {
    const std::string_view key = KeyFor(id, buf);
    if (engine.Get(key).kind == Lookup::Kind::kHit) {
      ++hits;
      continue;
    }
    if (engine.CompleteFill(engine.BeginFill(key), 1, value) != FillResult::kAccepted) {
      std::fprintf(stderr, "fill of %.*s rejected\n", static_cast<int>(key.size()), key.data());
      std::exit(1);
    }
  }
  const EngineStats stats = engine.Stats();
  if (stats.entries != std::min(capacity, unique_keys) || stats.hits != hits) {
    std::fprintf(stderr,
                 "engine holds %llu entries (want %zu), counted %llu hits "
                 "(want %llu)\n",
                 static_cast<unsigned long long>(stats.entries), std::min(capacity, unique_keys),
                 static_cast<unsigned long long>(stats.hits),
                 static_cast<unsigned long long>(hits));
    std::exit(1);
  }
  return {static_cast<double>(hits) / trace.size(), stats.entries};
}

// Belady's MIN: on a miss with a full cache, of the resident keys and the
// requested one, the one whose next use is farthest leaves (or is not
// admitted). Admission matters: the engine may evict the entry it has just
// inserted (S3-FIFO does, from a small queue holding only that entry), so a
// MIN that must insert every miss is not an upper bound for it. A max-heap
// of (next use, key) with lazy deletion: an element is live only if its key
// is resident with that next use.
double BeladyHitRatio(const Trace& trace, size_t capacity) {
  const size_t n = trace.size();
  constexpr size_t kNever = SIZE_MAX;
  const size_t ids = size_t{*std::max_element(trace.begin(), trace.end())} + 1;
  std::vector<size_t> next_use(n);
  {
    std::vector<size_t> seen_at(ids, kNever);
    for (size_t i = n; i-- > 0;) {
      next_use[i] = seen_at[trace[i]];
      seen_at[trace[i]] = i;
    }
  }
  std::vector<bool> resident(ids, false);
  std::vector<size_t> resident_next(ids, 0);
  std::priority_queue<std::pair<size_t, uint32_t>> farthest;
  auto live = [&](const std::pair<size_t, uint32_t>& e) {
    return resident[e.second] && resident_next[e.second] == e.first;
  };
  size_t size = 0;
  uint64_t hits = 0;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t id = trace[i];
    if (resident[id]) {
      ++hits;
    } else if (size == capacity) {
      while (!live(farthest.top())) farthest.pop();
      if (next_use[i] >= farthest.top().first) continue;  // not admitted
      resident[farthest.top().second] = false;
      farthest.pop();
      resident[id] = true;
    } else {
      resident[id] = true;
      ++size;
    }
    resident_next[id] = next_use[i];
    farthest.emplace(next_use[i], id);
  }
  return static_cast<double>(hits) / n;
}

// The engine must accept a fill for a key it evicted (what the service does
// on a miss), although an Apply at the evicted version is stale.
void CheckRefillAfterEviction(bool verbose) {
  EngineOptions options;
  options.shards = 1;
  options.max_bytes = 2 * (kKeyBytes + kValueBytes + Engine::EntryOverhead());
  Engine engine(options);
  const std::string value(kValueBytes, 'v');
  char buf[kKeyBytes];
  for (uint32_t id = 0; id < 3; ++id) {
    engine.CompleteFill(engine.BeginFill(KeyFor(id, buf)), 1, value);
  }
  const bool evicted = engine.Peek(KeyFor(0, buf)).kind == Lookup::Kind::kMiss;
  const bool apply_stale =
      engine.Apply(KeyFor(0, buf), 1, ChangeKind::kValue, value) == ApplyResult::kStale;
  const bool refilled =
      engine.CompleteFill(engine.BeginFill(KeyFor(0, buf)), 1, value) == FillResult::kAccepted &&
      engine.Get(KeyFor(0, buf)).kind == Lookup::Kind::kHit;
  if (verbose) {
    std::printf(
        "self-check: evicted=%d apply-at-same-version-stale=%d "
        "refill-accepted=%d\n",
        evicted, apply_stale, refilled);
  }
  if (!evicted || !refilled) {
    std::fprintf(stderr, "self-check failed: an evicted key cannot be refilled\n");
    std::exit(1);
  }
}

struct Row {
  std::string trace;
  size_t capacity;
  double percent_of_keys;
  double s3fifo;
  double lru;
  double belady;
};

void Measure(const std::string& name, const Trace& trace, size_t key_universe,
             const std::vector<double>& percents, bool verbose, std::vector<Row>& rows) {
  const size_t unique_keys = UniqueKeys(trace);
  for (double percent : percents) {
    const size_t capacity =
        std::max<size_t>(2, static_cast<size_t>(std::llround(key_universe * percent / 100)));
    const EngineRun s3 = ReplayThroughEngine(trace, capacity, unique_keys, EvictionPolicy::kS3Fifo);
    const EngineRun lru = ReplayThroughEngine(trace, capacity, unique_keys, EvictionPolicy::kLru);
    if (verbose) {
      std::printf("%s capacity=%zu: engine entries at end s3fifo=%llu lru=%llu\n", name.c_str(),
                  capacity, static_cast<unsigned long long>(s3.entries_at_end),
                  static_cast<unsigned long long>(lru.entries_at_end));
    }
    rows.push_back(
        {name, capacity, percent, s3.hit_ratio, lru.hit_ratio, BeladyHitRatio(trace, capacity)});
  }
}

int Run(bool smoke, bool verbose) {
  CheckRefillAfterEviction(verbose);
  const uint32_t keys = smoke ? 2000 : 100000;
  const size_t requests = smoke ? 20000 : 2000000;
  const uint32_t loop_length = smoke ? 500 : 10000;
  const size_t loop_requests = smoke ? 10000 : 1000000;
  const std::vector<double> sizes = {0.1, 1, 5, 10, 25};
  const std::vector<double> loop_sizes = {10, 50, 90, 110};

  std::vector<Row> rows;
  Measure("zipf 0.9", ZipfTrace(keys, requests, 1), keys, sizes, verbose, rows);
  Measure("zipf 0.9 + 20% scans", ScanPollutedTrace(keys, requests, keys / 50, 0.2, 2), keys, sizes,
          verbose, rows);
  Measure("loop", LoopTrace(loop_length, loop_requests), loop_length, loop_sizes, verbose, rows);

  std::printf(
      "Traces: %u keys, %zu requests (zipf; scans of %u new keys); "
      "loop of %u keys, %zu requests. Shards=1, %zu B keys, %zu B "
      "values; hit ratios over all requests, cold start included.\n\n",
      keys, requests, keys / 50, loop_length, loop_requests, kKeyBytes, kValueBytes);
  std::printf(
      "| trace | cache size (entries, %% of keys) | S3-FIFO hit ratio "
      "| LRU hit ratio | Bélády | S3-FIFO − LRU |\n");
  std::printf("|---|---|---|---|---|---|\n");
  std::vector<const Row*> losses;
  for (const Row& r : rows) {
    std::printf("| %s | %zu (%g%%) | %.2f%% | %.2f%% | %.2f%% | %+.2f pp |\n", r.trace.c_str(),
                r.capacity, r.percent_of_keys, 100 * r.s3fifo, 100 * r.lru, 100 * r.belady,
                100 * (r.s3fifo - r.lru));
    if (r.s3fifo < r.lru) losses.push_back(&r);
  }
  std::printf("\nGoal \"S3-FIFO >= LRU on every trace and size\": %s\n",
              losses.empty() ? "holds" : "does NOT hold");
  for (const Row* r : losses) {
    std::printf("- %s, %zu entries (%g%%): S3-FIFO %.2f%% < LRU %.2f%%\n", r->trace.c_str(),
                r->capacity, r->percent_of_keys, 100 * r->s3fifo, 100 * r->lru);
  }
  return 0;
}

}  // namespace
}  // namespace cachecar::cache

int main(int argc, char** argv) {
  // Debian's abseil runs absl::Mutex's deadlock detector unless told not to
  // (see engine_bench.cc).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  bool smoke = false;
  bool verbose = false;
  for (int i = 1; i < argc; ++i) {
    if (std::strcmp(argv[i], "--smoke") == 0) {
      smoke = true;
    } else if (std::strcmp(argv[i], "--verbose") == 0) {
      verbose = true;
    } else {
      std::fprintf(stderr, "usage: %s [--smoke] [--verbose]\n", argv[0]);
      return 2;
    }
  }
  return cachecar::cache::Run(smoke, verbose);
}
