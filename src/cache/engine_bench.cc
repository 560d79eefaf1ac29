// Microbenchmarks for the cache engine: Get hits on 1 and 2 threads (the
// read path's cost floor), and inserts into a full cache (eviction) on 1 and
// 2 threads sharing one engine, both as sync events (Apply) and as the read
// path's miss fills (BeginFill + CompleteFill).
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <tuple>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "benchmark/benchmark.h"
#include "cache/engine.h"

namespace cachecar::cache {
namespace {

std::vector<std::string> MakeKeys(size_t n, const char* prefix) {
  std::vector<std::string> keys;
  keys.reserve(n);
  for (size_t i = 0; i < n; ++i) keys.push_back(prefix + std::to_string(i));
  return keys;
}

// An engine holding `n` keys, shared by the benchmark threads.
struct GetFixture {
  GetFixture(EvictionPolicy policy, size_t n, size_t value_size) : keys(MakeKeys(n, "user:")) {
    EngineOptions options;
    options.max_bytes = 256 << 20;
    options.policy = policy;
    engine = std::make_unique<Engine>(options);
    const std::string value(value_size, 'v');
    for (const std::string& key : keys) {
      engine->Apply(key, 1, ChangeKind::kValue, value);
    }
  }
  std::vector<std::string> keys;
  std::unique_ptr<Engine> engine;
};

// Args: number of keys (1k: CPU-cache resident, the hot set of a skewed
// workload; 100k: each Get misses the CPU caches), value size.
void BM_GetHit(benchmark::State& state, EvictionPolicy policy) {
  static std::mutex mu;
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<GetFixture>> fixtures;
  GetFixture* f;
  {
    std::lock_guard<std::mutex> lock(mu);
    auto& slot = fixtures[{static_cast<int>(policy), state.range(0), state.range(1)}];
    if (!slot) {
      slot = std::make_unique<GetFixture>(policy, state.range(0), state.range(1));
    }
    f = slot.get();
  }
  const size_t n = f->keys.size();
  // Threads walk the keys with different strides and offsets.
  size_t i = static_cast<size_t>(state.thread_index()) * 7919 % n;
  const size_t step = 31 + 2 * static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    Lookup got = f->engine->Get(f->keys[i]);
    benchmark::DoNotOptimize(got);
    i += step;
    if (i >= n) i -= n;
  }
  state.SetItemsProcessed(state.iterations());
}
BENCHMARK_CAPTURE(BM_GetHit, s3fifo, EvictionPolicy::kS3Fifo)
    ->ArgsProduct({{1000, 100000}, {8, 100}})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();
BENCHMARK_CAPTURE(BM_GetHit, lru, EvictionPolicy::kLru)
    ->Args({1000, 8})
    ->Args({100000, 8})
    ->Threads(1)
    ->Threads(2)
    ->UseRealTime();

// The keys the insert benchmarks walk, made once for all of them.
const std::vector<std::string>& InsertKeys() {
  static const std::vector<std::string> keys = MakeKeys(size_t{1} << 20, "item:");
  return keys;
}

// Inserts of new keys into a full cache sized for ~10% of them, so each
// insert evicts. Thread 0 makes and fills the engine before the timed loop
// (the threads start it together) and all threads insert into it; their key
// walks interleave.
template <typename Insert>
void RunInserts(benchmark::State& state, Insert insert) {
  const std::vector<std::string>& keys = InsertKeys();
  static std::unique_ptr<Engine> engine;
  const std::string value(static_cast<size_t>(state.range(0)), 'v');
  if (state.thread_index() == 0) {
    const size_t capacity = keys.size() / 10;
    EngineOptions options;
    options.max_bytes = capacity * (Engine::EntryOverhead() + keys.back().size() + value.size());
    engine = std::make_unique<Engine>(options);
    // Fill with keys the timed loop reaches last.
    for (size_t j = keys.size() - capacity; j < keys.size(); ++j) {
      insert(*engine, keys[j], value);
    }
  }
  const size_t threads = static_cast<size_t>(state.threads());
  size_t i = static_cast<size_t>(state.thread_index());
  for (auto _ : state) {
    insert(*engine, keys[i & (keys.size() - 1)], value);
    i += threads;
  }
  state.SetItemsProcessed(state.iterations());
  if (state.thread_index() == 0) {
    state.counters["evictions"] = static_cast<double>(engine->Stats().evictions);
    engine.reset();
  }
}

// Sync events: each insert takes the next version from one counter, as the
// store hands them out, so an evicted key's slot never makes it stale.
void BM_ApplyInsert(benchmark::State& state) {
  static std::atomic<uint64_t> version{0};
  RunInserts(state, [](Engine& engine, const std::string& key, const std::string& value) {
    benchmark::DoNotOptimize(engine.Apply(key, version.fetch_add(1, std::memory_order_relaxed) + 1,
                                          ChangeKind::kValue, value));
  });
}
BENCHMARK(BM_ApplyInsert)->Arg(8)->Arg(100)->Threads(1)->Threads(2)->UseRealTime();

// Read-path misses: a ticket, then the loaded value (what the service does).
void BM_FillInsert(benchmark::State& state) {
  RunInserts(state, [](Engine& engine, const std::string& key, const std::string& value) {
    benchmark::DoNotOptimize(engine.CompleteFill(engine.BeginFill(key), 1, value));
  });
}
BENCHMARK(BM_FillInsert)->Arg(8)->Arg(100)->Threads(1)->Threads(2)->UseRealTime();

}  // namespace
}  // namespace cachecar::cache

int main(int argc, char** argv) {
  // Debian builds abseil without NDEBUG, so absl::Mutex runs its deadlock
  // detector (a lock-graph update on every Lock/Unlock) unless told not to.
  // The sidecar's main does the same; see the report in src/cache.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
