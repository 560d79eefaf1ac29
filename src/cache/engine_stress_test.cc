// Stress test: 4 threads mix every engine call on a few keys against a model
// store, and check the consistency contract on every Get:
//   - what a hit returns was committed (version <= store, value matches);
//   - per key, hit versions never go down (C1): not within a thread, and not
//     below what any Get that returned earlier saw; across Flush and
//     Invalidate too, since dropped versions are remembered (see engine.cc);
//   - after a thread's own Apply(v) returned, its hits are >= v (C2).
// Writes may reach the engine late and out of order (a lagging sync topic),
// and loads may sit between their store read and CompleteFill, to widen the
// races the version rules must win. Like Postgres, the store hands out a
// version before the write commits and a read does not wait for a writer, so
// a write can commit after a flush that took a higher version, and a load
// begun after that flush can read the row from before the write. Loads begun
// after a versioned flush are accepted below its floor (counted: a flush must
// not disable the cache). At the end: bytes <= max_bytes, no open ticket,
// and every cached key holds the store's newest version.
#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdio>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/engine.h"
#include "gtest/gtest.h"

namespace cachecar::cache {
namespace {

constexpr int kThreads = 4;
constexpr int kKeys = 8;
constexpr size_t kMaxLoads = 3;
constexpr int kOpsPerThread = 250000;

std::string KeyName(int k) { return "key-" + std::to_string(k); }

// What the store holds at a version is a function of the version, so any
// reader can check a cached value against it.
bool IsDelete(uint64_t v) { return v == 0 || v % 13 == 0; }
bool IsInvalidateEvent(uint64_t v) { return v % 17 == 0; }
std::string ValueAt(int k, uint64_t v) {
  return KeyName(k) + "@" + std::to_string(v) + std::string((v % 7) * 40, '.');
}

// A store with one global version sequence; writes to a key take the key's
// lock, like a row lock, so a key's committed version only grows. A write
// takes its version before it commits (`slow`: with a yield in between) and
// a read sees the last commit without waiting, like an MVCC snapshot.
class ModelStore {
 public:
  uint64_t Write(int k, bool slow) {
    std::lock_guard<std::mutex> lock(mu_[k]);
    const uint64_t v = seq_.fetch_add(1) + 1;
    if (slow) std::this_thread::yield();
    committed_[k].store(v);
    return v;
  }
  uint64_t Read(int k) const { return committed_[k].load(); }
  uint64_t Committed(int k) const { return committed_[k].load(); }
  // The highest version any Get has returned for the key (C1 across threads).
  uint64_t Served(int k) const { return served_[k].load(); }
  void NoteServed(int k, uint64_t v) {
    uint64_t cur = served_[k].load();
    while (cur < v && !served_[k].compare_exchange_weak(cur, v)) {
    }
  }
  uint64_t NextVersion() { return seq_.fetch_add(1) + 1; }

 private:
  std::atomic<uint64_t> seq_{0};
  std::array<std::mutex, kKeys> mu_;
  std::array<std::atomic<uint64_t>, kKeys> committed_{};
  std::array<std::atomic<uint64_t>, kKeys> served_{};
};

// A committed change whose event has not reached the engine yet (the sync
// topic lags), and a load between reading the store and offering the value.
struct PendingApply {
  int key;
  uint64_t version;
};
struct PendingFill {
  int key;
  FillTicket ticket;
  uint64_t version;  // what the load read
};

struct ThreadState {
  std::array<uint64_t, kKeys> last_seen{};  // highest version a hit returned
  std::array<uint64_t, kKeys> own_write{};  // highest version this thread applied
  std::vector<PendingApply> lagging;
  std::vector<PendingFill> loading;  // at most kMaxLoads
  uint64_t hits = 0;
  uint64_t accepted_below_floor = 0;  // fills accepted at a version <= floor
};

void CheckGet(Engine& engine, ModelStore& store, int k, ThreadState& t) {
  const uint64_t served_before = store.Served(k);
  const Lookup got = engine.Get(KeyName(k));
  if (got.kind == Lookup::Kind::kMiss) return;
  ++t.hits;
  const uint64_t v = got.version;
  ASSERT_LE(v, store.Committed(k)) << "phantom version";
  if (got.kind == Lookup::Kind::kNegative) {
    ASSERT_TRUE(IsDelete(v)) << v;
  } else {
    ASSERT_FALSE(IsDelete(v)) << v;
    ASSERT_EQ(got.value, ValueAt(k, v));
  }
  ASSERT_GE(v, t.last_seen[k]) << "C1: version went down for key " << k;
  ASSERT_GE(v, served_before) << "C1: older than an earlier Get, key " << k;
  store.NoteServed(k, v);
  ASSERT_GE(v, t.own_write[k]) << "C2: own write not visible for key " << k;
  t.last_seen[k] = v;
}

void ApplyEvent(Engine& engine, const PendingApply& e, ThreadState& t) {
  const std::string key = KeyName(e.key);
  if (IsDelete(e.version)) {
    engine.Apply(key, e.version, ChangeKind::kTombstone);
  } else if (IsInvalidateEvent(e.version)) {
    engine.Apply(key, e.version, ChangeKind::kInvalidate);
  } else {
    engine.Apply(key, e.version, ChangeKind::kValue, ValueAt(e.key, e.version));
  }
  t.own_write[e.key] = std::max(t.own_write[e.key], e.version);
}

// Commits a write; applies it now or lets it lag behind.
void Write(Engine& engine, ModelStore& store, int k, bool lag, bool slow, ThreadState& t) {
  const PendingApply event{k, store.Write(k, slow)};
  if (lag) {
    t.lagging.push_back(event);
  } else {
    ApplyEvent(engine, event, t);
  }
}

// Applies one lagging event, picked at random so events reorder.
void CatchUp(Engine& engine, std::mt19937& rng, ThreadState& t) {
  if (t.lagging.empty()) return;
  const size_t i = rng() % t.lagging.size();
  const PendingApply event = t.lagging[i];
  t.lagging.erase(t.lagging.begin() + static_cast<ptrdiff_t>(i));
  ApplyEvent(engine, event, t);
}

// Starts a load (ticket, then store read) or finishes one in progress.
void StepFill(Engine& engine, ModelStore& store, int k, bool abandon, std::mt19937& rng,
              ThreadState& t) {
  if (t.loading.size() < kMaxLoads && rng() % 2 == 0) {
    FillTicket ticket = engine.BeginFill(KeyName(k));
    t.loading.push_back(PendingFill{k, std::move(ticket), store.Read(k)});
    return;
  }
  if (t.loading.empty()) return;
  const size_t i = rng() % t.loading.size();
  PendingFill fill = std::move(t.loading[i]);
  t.loading.erase(t.loading.begin() + static_cast<ptrdiff_t>(i));
  if (abandon) {
    engine.AbandonFill(std::move(fill.ticket));
    return;
  }
  const std::string value = ValueAt(fill.key, fill.version);
  const uint64_t floor = engine.floor();
  const FillResult result = engine.CompleteFill(
      std::move(fill.ticket), fill.version,
      IsDelete(fill.version) ? std::nullopt : std::optional<std::string_view>(value));
  if (result == FillResult::kAccepted && fill.version <= floor) {
    ++t.accepted_below_floor;
  }
}

void RunClient(Engine& engine, ModelStore& store, int seed, ThreadState& t) {
  std::mt19937 rng(seed);
  for (int i = 0; i < kOpsPerThread; ++i) {
    const int k = static_cast<int>(rng() % kKeys);
    const int op = static_cast<int>(rng() % 1000);
    if (op < 400) {
      CheckGet(engine, store, k, t);
    } else if (op < 600) {
      Write(engine, store, k, /*lag=*/op < 500, /*slow=*/op % 4 == 0, t);
    } else if (op < 700) {
      CatchUp(engine, rng, t);
    } else if (op < 950) {
      StepFill(engine, store, k, /*abandon=*/op < 730, rng, t);
    } else if (op < 990) {
      engine.Invalidate(KeyName(k));
    } else if (op < 995) {
      engine.Flush();
    } else {
      // A namespace flush is a write too: it takes a version.
      engine.Flush(store.NextVersion());
    }
    if (testing::Test::HasFatalFailure()) return;
  }
  while (!t.lagging.empty()) CatchUp(engine, rng, t);
  while (!t.loading.empty()) StepFill(engine, store, 0, false, rng, t);
}

TEST(EngineStressTest, ConcurrentCallsKeepTheContract) {
  for (EvictionPolicy policy : {EvictionPolicy::kS3Fifo, EvictionPolicy::kLru}) {
    EngineOptions options;
    // About 4 keys per shard and room for 2 or 3: constant evictions.
    options.max_bytes = 2 * 2 * (Engine::EntryOverhead() + 200);
    options.shards = 2;
    options.policy = policy;
    Engine engine(options);
    ModelStore store;
    std::vector<ThreadState> states(kThreads);
    std::vector<std::thread> threads;
    for (int i = 0; i < kThreads; ++i) {
      threads.emplace_back([&, i] { RunClient(engine, store, 1000 + i, states[i]); });
    }
    for (auto& th : threads) th.join();

    const EngineStats stats = engine.Stats();
    EXPECT_LE(stats.bytes, engine.max_bytes());
    std::string why;
    EXPECT_TRUE(engine.CheckStorage(&why)) << why;
    EXPECT_EQ(stats.open_fills, 0u);
    EXPECT_GT(stats.evictions, 0u);
    EXPECT_GT(stats.hits, 0u);
    EXPECT_GT(stats.fills_rejected, 0u);
    uint64_t hits = 0;
    uint64_t accepted_below_floor = 0;
    for (const ThreadState& t : states) {
      hits += t.hits;
      accepted_below_floor += t.accepted_below_floor;
    }
    EXPECT_EQ(hits, stats.hits);
    EXPECT_GT(accepted_below_floor, 0u);
    std::printf("fills accepted below the floor: %llu\n",
                static_cast<unsigned long long>(accepted_below_floor));
    // Quiescent now: every key's newest write was applied after it was
    // committed, so whatever is still cached for a key is that write.
    for (int k = 0; k < kKeys; ++k) {
      const Lookup got = engine.Get(KeyName(k));
      if (got.kind != Lookup::Kind::kMiss) {
        EXPECT_EQ(got.version, store.Committed(k)) << KeyName(k);
      }
    }
  }
}

}  // namespace
}  // namespace cachecar::cache
