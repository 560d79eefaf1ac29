// Readers racing the writer: reader threads and reader processes against
// engines on a published file while writer threads update, delete,
// invalidate, fill, expire, evict (a small cache) and flush. Every value
// carries its key, its version, a payload derived from both and a checksum,
// so a torn read (bytes of two versions, or of another entry) or a value
// answered with the wrong version is caught; per reader, a key's versions
// never go down (C1).
//
// Runs CACHECAR_STRESS_SECONDS seconds (default 3; `minutes of run` is e.g.
// CACHECAR_STRESS_SECONDS=300). The checker is shown to catch torn reads on
// a planted bug: a writer that changes a value without the sequence lock.
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <mutex>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "cache/clock.h"
#include "cache/engine.h"
#include "cache/storage.h"
#include "gtest/gtest.h"
#include "localread/layout.h"
#include "localread/reader.h"

namespace cachecar::localread {
namespace {

using cache::ChangeKind;

constexpr int kKeys = 3000;

double Seconds() {
  const char* s = std::getenv("CACHECAR_STRESS_SECONDS");
  return s != nullptr ? std::max(0.1, std::atof(s)) : 3.0;
}

std::string KeyName(int k) { return "key:" + std::to_string(k); }

uint64_t Mix64(uint64_t x) {
  x ^= x >> 33;
  x *= 0xff51afd7ed558ccdull;
  x ^= x >> 33;
  x *= 0xc4ceb9fe1a85ec53ull;
  return x ^ (x >> 33);
}

// A value: u32 key, u64 version, u32 payload size, payload (bytes of
// Mix64(key, version, i)), u64 checksum of all that. Its size varies with
// the version, so rewrites move entries around in the arena.
std::string MakeValue(int key, uint64_t version) {
  const uint32_t size = static_cast<uint32_t>(Mix64(version * 31 + key) % 900);
  std::string v(4 + 8 + 4 + size + 8, '\0');
  std::memcpy(&v[0], &key, 4);
  std::memcpy(&v[4], &version, 8);
  std::memcpy(&v[12], &size, 4);
  for (uint32_t i = 0; i < size; ++i) {
    v[16 + i] = static_cast<char>(
        Mix64((uint64_t{static_cast<uint32_t>(key)} << 40) ^ version ^ (uint64_t{i} << 20)));
  }
  const uint64_t sum = HashKey(std::string_view(v.data(), 16 + size));
  std::memcpy(&v[16 + size], &sum, 8);
  return v;
}

// Empty when the value is what `key` holds at `version`; else what is wrong.
std::string CheckValue(int key, uint64_t version, const std::string& v) {
  if (v.size() < 24) return "too short";
  int k;
  uint64_t ver;
  uint32_t size;
  std::memcpy(&k, &v[0], 4);
  std::memcpy(&ver, &v[4], 8);
  std::memcpy(&size, &v[12], 4);
  if (v.size() != 24 + uint64_t{size}) return "size does not match";
  uint64_t sum;
  std::memcpy(&sum, &v[16 + size], 8);
  if (sum != HashKey(std::string_view(v.data(), 16 + size))) return "checksum";
  if (k != key) return "another key's value";
  if (ver != version) return "the value of another version";
  if (v != MakeValue(key, version)) return "payload";
  return "";
}

TEST(CheckerTest, CatchesTornAndMisattributedValues) {
  const std::string a = MakeValue(7, 100);
  EXPECT_EQ(CheckValue(7, 100, a), "");
  EXPECT_NE(CheckValue(8, 100, a), "");
  EXPECT_NE(CheckValue(7, 101, a), "");
  // Half of another version of the same size.
  uint64_t other = 101;
  while (MakeValue(7, other).size() != a.size()) ++other;
  const std::string b = MakeValue(7, other);
  std::string torn = a;
  for (size_t i = torn.size() / 2; i < torn.size(); ++i) torn[i] = b[i];
  ASSERT_NE(torn, a);
  EXPECT_NE(CheckValue(7, 100, torn), "");
  EXPECT_NE(CheckValue(7, other, torn), "");
}

// What one reader saw.
struct Tally {
  uint64_t reads = 0, hits = 0, absent = 0, fallbacks = 0, busy = 0, violations = 0;
  uint64_t by_result[kResultCount] = {};
  char first_violation[160] = {};
};

void Note(Tally& t, const std::string& what) {
  if (t.violations++ == 0) {
    std::snprintf(t.first_violation, sizeof t.first_violation, "%s", what.c_str());
  }
}

// Reads random keys until `deadline`, checking every answer.
Tally ReadLoop(const std::string& path, std::chrono::steady_clock::time_point deadline,
               uint64_t seed) {
  ReaderOptions options;
  options.path = path;
  Reader reader(options);
  std::mt19937_64 rng(seed);
  std::vector<uint64_t> last(kKeys, 0);
  Tally t;
  std::string value;
  while (std::chrono::steady_clock::now() < deadline) {
    for (int i = 0; i < 256; ++i) {
      const int key = static_cast<int>(rng() % kKeys);
      uint64_t version = 0;
      const Result r = reader.Get("default", KeyName(key), &value, &version);
      ++t.reads;
      ++t.by_result[static_cast<int>(r)];
      if (r == Result::kHit) {
        ++t.hits;
        const std::string wrong = CheckValue(key, version, value);
        if (!wrong.empty()) Note(t, KeyName(key) + " v" + std::to_string(version) + ": " + wrong);
      } else if (r == Result::kAbsent) {
        ++t.absent;
      } else {
        ++t.fallbacks;
        if (r == Result::kCorrupt) Note(t, "CORRUPT from a healthy writer");
        continue;
      }
      if (version < last[key]) {
        Note(t, KeyName(key) + " went from v" + std::to_string(last[key]) + " to v" +
                    std::to_string(version));
      }
      last[key] = std::max(last[key], version);
    }
  }
  return t;
}

// The store the writers commit to: every key's latest version, and whether
// it is a delete (an invalidation event stands for a write whose value did
// not travel with it).
struct Model {
  std::mutex mu;
  std::vector<uint64_t> latest = std::vector<uint64_t>(kKeys, 0);
  std::vector<bool> deleted = std::vector<bool>(kKeys, true);
  std::atomic<uint64_t> next{1};
  uint64_t Commit(int key, bool is_delete) {
    const uint64_t v = next.fetch_add(1);
    latest[key] = v;
    deleted[key] = is_delete;
    return v;
  }
};

// One writer thread: a mix of everything the engine does to entries.
void WriteLoop(cache::Engine& engine, Model& model, std::chrono::steady_clock::time_point deadline,
               uint64_t seed, std::atomic<uint64_t>& ops) {
  std::mt19937_64 rng(seed);
  while (std::chrono::steady_clock::now() < deadline) {
    const int key = static_cast<int>(rng() % kKeys);
    const std::string name = KeyName(key);
    const int op = static_cast<int>(rng() % 1000);
    if (op < 2 && rng() % 50 == 0) {  // now and then a flush, sometimes with a floor
      engine.Flush(op == 0 ? std::optional<uint64_t>(model.next.load()) : std::nullopt);
    } else if (op < 600) {  // a write (some with a short ttl)
      std::lock_guard<std::mutex> lock(model.mu);
      const uint64_t v = model.Commit(key, false);
      const std::optional<absl::Duration> ttl =
          op < 60 ? std::optional<absl::Duration>(absl::Milliseconds(5)) : std::nullopt;
      engine.Apply(name, v, ChangeKind::kValue, MakeValue(key, v), ttl);
    } else if (op < 700) {  // a delete
      std::lock_guard<std::mutex> lock(model.mu);
      engine.Apply(name, model.Commit(key, true), ChangeKind::kTombstone);
    } else if (op < 750) {  // invalidations, versioned or not
      if (op < 725) {
        engine.Invalidate(name);
      } else {
        std::lock_guard<std::mutex> lock(model.mu);
        engine.Apply(name, model.Commit(key, false), ChangeKind::kInvalidate);
      }
    } else {  // a read-through fill of what the store holds
      cache::FillTicket ticket = engine.BeginFill(name);
      uint64_t v;
      bool absent;
      {
        std::lock_guard<std::mutex> lock(model.mu);
        v = model.latest[key];
        absent = model.deleted[key];
      }
      if (absent) {  // a deleted or never-written key loads as absent
        engine.CompleteFill(std::move(ticket), v, std::nullopt);
      } else {
        const std::string value = MakeValue(key, v);
        engine.CompleteFill(std::move(ticket), v, value);
      }
      engine.Get(name);  // gRPC hits: eviction bookkeeping and TTL drops
    }
    ops.fetch_add(1, std::memory_order_relaxed);
  }
}

class StressTest : public ::testing::Test {
 protected:
  StressTest() {
    char tmpl[] = "/tmp/cachecar-reader-stress.XXXXXX";
    dir_ = mkdtemp(tmpl);
    path_ = dir_ + "/cache";
  }
  ~StressTest() override { std::system(("rm -rf " + dir_).c_str()); }
  std::string dir_, path_;
};

TEST_F(StressTest, ReaderThreadsAndProcessesNeverSeeAWrongValue) {
  const double seconds = Seconds();
  constexpr int kProcesses = 2;
  constexpr int kThreads = 2;
  // Processes first, while this one has no threads (fork and threads do
  // not mix); they wait for the file, then read.
  std::vector<pid_t> children;
  std::vector<int> results;
  int go[2];
  ASSERT_EQ(pipe(go), 0);
  for (int p = 0; p < kProcesses; ++p) {
    int out[2];
    ASSERT_EQ(pipe(out), 0);
    const pid_t pid = fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      close(out[0]);
      char c;
      if (read(go[0], &c, 1) != 1) _exit(2);
      const auto deadline = std::chrono::steady_clock::now() +
                            std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
      const Tally t = ReadLoop(path_, deadline, 1000 + p);
      _exit(write(out[1], &t, sizeof(t)) == sizeof(t) ? 0 : 3);
    }
    close(out[1]);
    children.push_back(pid);
    results.push_back(out[0]);
  }

  // The writer: a small cache (evictions all the time) in a published file.
  auto storage = cache::Storage::CreateFile({{"default", 1 << 20, 4}}, {path_, 64});
  ASSERT_TRUE(storage.ok()) << storage.status();
  cache::EngineOptions options;
  options.max_bytes = 1 << 20;
  options.shards = 4;
  options.region = (*storage)->region(0);
  cache::Engine engine(options);
  (*storage)->SetTrustedUntil(absl::InfiniteFuture());
  (*storage)->SetServing();
  // Fill the cache past max_bytes first (keys the readers never ask for),
  // so the timed run evicts however slowly this machine runs it (ASan on a
  // loaded machine managed too few writes in 3 s to fill it).
  for (int i = 0; i < 100000 && engine.Stats().evictions == 0; ++i) {
    engine.Apply("fill:" + std::to_string(i), 1, ChangeKind::kValue, std::string(1000, 'f'));
  }
  const uint64_t evictions_before = engine.Stats().evictions;
  ASSERT_GT(evictions_before, 0u);
  for (int p = 0; p < kProcesses; ++p) ASSERT_EQ(write(go[1], "g", 1), 1);

  const auto deadline = std::chrono::steady_clock::now() +
                        std::chrono::milliseconds(static_cast<int64_t>(seconds * 1000));
  Model model;
  std::atomic<uint64_t> ops{0};
  std::vector<std::thread> writers;
  for (int w = 0; w < 2; ++w) {
    writers.emplace_back([&, w] { WriteLoop(engine, model, deadline, 77 + w, ops); });
  }
  std::vector<Tally> tallies(kThreads);
  std::vector<std::thread> readers;
  for (int r = 0; r < kThreads; ++r) {
    readers.emplace_back([&, r] { tallies[r] = ReadLoop(path_, deadline, 500 + r); });
  }
  for (auto& t : writers) t.join();
  for (auto& t : readers) t.join();
  for (size_t p = 0; p < children.size(); ++p) {
    Tally t;
    ASSERT_EQ(read(results[p], &t, sizeof(t)), static_cast<ssize_t>(sizeof(t)));
    int status = 0;
    ASSERT_EQ(waitpid(children[p], &status, 0), children[p]);
    EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(results[p]);
    tallies.push_back(t);
  }

  const cache::EngineStats stats = engine.Stats();
  std::printf("%.0f s: %llu writer ops, %llu evictions, %llu expirations\n", seconds,
              static_cast<unsigned long long>(ops.load()),
              static_cast<unsigned long long>(stats.evictions),
              static_cast<unsigned long long>(stats.expirations));
  for (size_t i = 0; i < tallies.size(); ++i) {
    const Tally& t = tallies[i];
    std::printf(
        "reader %zu (%s): %llu reads, %llu hits, %llu absent, %llu fallbacks (busy %llu, "
        "miss %llu, expired %llu)\n",
        i, i < kThreads ? "thread" : "process", static_cast<unsigned long long>(t.reads),
        static_cast<unsigned long long>(t.hits), static_cast<unsigned long long>(t.absent),
        static_cast<unsigned long long>(t.fallbacks),
        static_cast<unsigned long long>(t.by_result[static_cast<int>(Result::kBusy)]),
        static_cast<unsigned long long>(t.by_result[static_cast<int>(Result::kMiss)]),
        static_cast<unsigned long long>(t.by_result[static_cast<int>(Result::kExpired)]));
    EXPECT_EQ(t.violations, 0u) << "reader " << i << ": " << t.first_violation;
    EXPECT_GT(t.hits, 0u) << "reader " << i;
    EXPECT_GT(t.absent, 0u) << "reader " << i;
    EXPECT_GT(t.by_result[static_cast<int>(Result::kMiss)], 0u) << "reader " << i;
  }
  EXPECT_GT(stats.evictions, evictions_before);  // the readers raced evictions
  std::string why;
  EXPECT_TRUE(engine.CheckStorage(&why)) << why;
  close(go[0]);
  close(go[1]);
}

// The planted bug: a writer that rewrites a value in place without the
// sequence lock. The reader cannot tell (its check passes); the checker
// above must.
TEST_F(StressTest, TheCheckerCatchesWritesMadeWithoutTheSequenceLock) {
  auto storage = cache::Storage::CreateFile({{"default", 1 << 20, 1}}, {path_, 64});
  ASSERT_TRUE(storage.ok()) << storage.status();
  cache::EngineOptions options;
  options.max_bytes = 1 << 20;
  options.shards = 1;
  options.region = (*storage)->region(0);
  cache::Engine engine(options);
  (*storage)->SetTrustedUntil(absl::InfiniteFuture());
  (*storage)->SetServing();
  // Two versions of one key with values of the same size.
  const int key = 5;
  uint64_t v1 = 1, v2 = 2;
  while (MakeValue(key, v1).size() != MakeValue(key, v2).size()) ++v2;
  engine.Apply(KeyName(key), v1, ChangeKind::kValue, MakeValue(key, v1));
  // Find the entry the way a reader does, on the writer's mapping.
  const cache::ShardRegion& shard = (*storage)->region(0)->shards[0];
  const uint64_t hash = HashKey(KeyName(key));
  const uint32_t mask = shard.header->index_mask.load();
  char* entry = nullptr;
  for (uint32_t pos = (hash >> 32) & mask;; pos = (pos + 1) & mask) {
    const uint64_t slot = shard.slots[pos].load();
    ASSERT_NE(slot, 0u);
    if (SlotTag(slot) == (hash >> 32)) {
      entry = shard.arena + uint64_t{SlotRef(slot)} * 8;
      break;
    }
  }
  char* value = entry + kEntryHeaderBytes + KeyName(key).size();
  const std::string a = MakeValue(key, v1), b = MakeValue(key, v2);
  std::atomic<bool> stop{false};
  std::thread broken([&] {
    for (uint64_t n = 0; !stop.load(); ++n) {
      const std::string& to = n % 2 == 0 ? b : a;
      const uint64_t version = n % 2 == 0 ? v2 : v1;
      std::memcpy(entry, &version, 8);
      for (size_t i = 0; i < to.size(); ++i) {  // byte by byte: a wide window
        __atomic_store_n(&value[i], to[i], __ATOMIC_RELAXED);
      }
    }
  });
  ReaderOptions ro;
  ro.path = path_;
  Reader reader(ro);
  uint64_t caught = 0, reads = 0;
  std::string got;
  for (int i = 0; i < 200000 && caught == 0; ++i) {
    uint64_t version = 0;
    if (reader.Get("default", KeyName(key), &got, &version) == Result::kHit) {
      ++reads;
      caught += !CheckValue(key, version, got).empty();
    }
  }
  stop = true;
  broken.join();
  EXPECT_GT(caught, 0u) << "after " << reads << " reads";
}

}  // namespace
}  // namespace cachecar::localread
