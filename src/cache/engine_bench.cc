// Microbenchmarks for the cache engine: Get hits on 1 and 2 threads (the
// read path's cost floor), and Apply inserts into a full cache (eviction).
#include <map>
#include <memory>
#include <mutex>
#include <tuple>
#include <string>
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
  GetFixture(EvictionPolicy policy, size_t n, size_t value_size)
      : keys(MakeKeys(n, "user:")) {
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
  static std::map<std::tuple<int, int64_t, int64_t>, std::unique_ptr<GetFixture>>
      fixtures;
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
    ->Threads(1)->Threads(2)->UseRealTime();
BENCHMARK_CAPTURE(BM_GetHit, lru, EvictionPolicy::kLru)
    ->Args({1000, 8})->Args({100000, 8})
    ->Threads(1)->Threads(2)->UseRealTime();

// Inserts of new keys at increasing versions into a cache sized for ~10% of
// them, so most inserts evict.
void BM_ApplyInsert(benchmark::State& state) {
  const auto keys = MakeKeys(size_t{1} << 20, "item:");
  const std::string value(static_cast<size_t>(state.range(0)), 'v');
  EngineOptions options;
  options.max_bytes = (keys.size() / 10) * (Engine::EntryOverhead() + 16 + value.size());
  Engine engine(options);
  uint64_t version = 0;
  for (auto _ : state) {
    ++version;
    benchmark::DoNotOptimize(engine.Apply(keys[version & (keys.size() - 1)],
                                          version, ChangeKind::kValue, value));
  }
  state.SetItemsProcessed(state.iterations());
  state.counters["evictions"] = static_cast<double>(engine.Stats().evictions);
}
BENCHMARK(BM_ApplyInsert)->Arg(8)->Arg(100);

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
