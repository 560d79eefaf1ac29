// Local reads against the real service: a CacheService over the memory
// store with its cache published (NamespaceSet::Create with
// local_read_path), LocalReads publishing freshness and serving hit reports,
// and the real reader (src/localread). Each rule of issue #14 that the
// service decides: the same contract as a gRPC Get on the replica (C1, C2,
// C4, STRONG), hit reports reaching eviction, and reports that cannot hurt
// cachecar.
#include "service/local_reads.h"

#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

#include "common/mutex.h"
#include "gtest/gtest.h"
#include "localread/layout.h"
#include "localread/reader.h"
#include "service/cache_service.h"
#include "store/memory/memory_store.h"

namespace cachecar::service {
namespace {

using localread::Reader;
using localread::ReaderOptions;
using localread::Result;

// A Replication whose trust the test sets.
class FakeReplication final : public Replication {
 public:
  void Announce(const Namespace&, const Change&, absl::string_view) override {}
  bool CacheTrusted() const override { return absl::Now() <= TrustedUntil(); }
  absl::Time TrustedUntil() const override {
    MutexLock lock(&mu_);
    return until_;
  }
  void Set(absl::Time until) {
    MutexLock lock(&mu_);
    until_ = until;
  }

 private:
  mutable Mutex mu_;
  absl::Time until_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
};

template <typename T>
struct Waiter {
  Notification done;
  absl::StatusOr<T> result = absl::UnknownError("not delivered");
  std::function<void(absl::StatusOr<T>)> Callback() {
    return [this](absl::StatusOr<T> r) {
      result = std::move(r);
      done.Notify();
    };
  }
  absl::StatusOr<T>& Wait() {
    done.WaitForNotification();
    return result;
  }
};

class LocalReadsTest : public ::testing::Test {
 protected:
  explicit LocalReadsTest(uint64_t max_bytes = 8 << 20, uint32_t shards = 4) {
    char tmpl[] = "/tmp/cachecar-local-reads-test.XXXXXX";
    dir_ = mkdtemp(tmpl);
    config_.max_bytes = max_bytes;
    config_.shards = shards;
    config_.max_value_bytes = 4096;
    config_.local_read_path = dir_ + "/cache";
    config_.namespaces = {{"default", absl::ZeroDuration(), 0}};
    auto namespaces = NamespaceSet::Create(config_);
    EXPECT_TRUE(namespaces.ok()) << namespaces.status();
    namespaces_ = *std::move(namespaces);
    pool_ = std::make_unique<WorkerPool>(4, 10000);
    ServiceHooks hooks;
    hooks.replication = &replication_;
    service_ = std::make_unique<CacheService>(Limits::FromConfig(config_), *namespaces_, store_,
                                              *pool_, hooks);
    auto local = LocalReads::Start(*namespaces_, &replication_);
    EXPECT_TRUE(local.ok()) << local.status();
    local_ = *std::move(local);
    local_->Serving();
  }
  ~LocalReadsTest() override {
    local_.reset();
    pool_->Shutdown();
    service_.reset();
    namespaces_.reset();
    std::system(("rm -rf " + dir_).c_str());
  }

  ReaderOptions Options(bool report_hits = true) {
    ReaderOptions o;
    o.path = config_.local_read_path;
    o.report_hits = report_hits;
    o.reopen_interval_ns = 0;
    return o;
  }
  absl::StatusOr<uint64_t> Put(const std::string& key, const std::string& value) {
    Waiter<uint64_t> w;
    service_->Put("", key, value, {}, absl::InfiniteFuture(), w.Callback());
    return w.Wait();
  }
  absl::StatusOr<ReadResult> Get(const std::string& key, Consistency c = Consistency::kCached) {
    Waiter<ReadResult> w;
    service_->Get("", key, c, absl::InfiniteFuture(), w.Callback());
    return w.Wait();
  }
  cache::Engine& engine() { return *(*namespaces_->Find("default"))->engine; }

  std::string dir_;
  config::Config config_;
  store::MemoryStore store_;
  FakeReplication replication_;
  std::unique_ptr<NamespaceSet> namespaces_;
  std::unique_ptr<WorkerPool> pool_;
  std::unique_ptr<CacheService> service_;
  std::unique_ptr<LocalReads> local_;
};

TEST_F(LocalReadsTest, APutIsVisibleLocallyAtItsVersionBeforeItsAnswerIsSent) {
  // C2: the Put's done callback runs before the gRPC answer goes out; the
  // mapping must already hold the version then.
  Reader reader(Options());
  for (int i = 0; i < 200; ++i) {
    const std::string key = "k" + std::to_string(i % 20);
    const std::string value = "v" + std::to_string(i);
    Notification done;
    std::string seen;
    uint64_t seen_version = 0;
    uint64_t put_version = 0;
    Result result = Result::kMiss;
    service_->Put("", key, value, {}, absl::InfiniteFuture(), [&](absl::StatusOr<uint64_t> v) {
      ASSERT_TRUE(v.ok());
      put_version = *v;
      result = reader.Get("", key, &seen, &seen_version);
      done.Notify();
    });
    done.WaitForNotification();
    ASSERT_EQ(result, Result::kHit) << i;
    EXPECT_GE(seen_version, put_version) << i;
    EXPECT_EQ(seen, value) << i;
  }
}

TEST_F(LocalReadsTest, VersionsNeverGoDownAcrossLocalAndGrpcReads) {
  // C1 with a writer racing: a reader that takes the local answer when it
  // has one and the service's otherwise sees each key's versions in order.
  std::atomic<bool> stop{false};
  std::thread writer([&] {
    for (int i = 0; !stop.load() && i < 3000; ++i) {
      ASSERT_TRUE(Put("k" + std::to_string(i % 8), "v" + std::to_string(i)).ok());
      if (i % 50 == 0) engine().Invalidate("k" + std::to_string(i % 8));  // misses too
    }
  });
  std::vector<std::thread> readers;
  std::atomic<int> local_answers{0}, grpc_answers{0}, violations{0};
  for (int t = 0; t < 2; ++t) {
    readers.emplace_back([&, t] {
      Reader reader(Options());
      std::vector<uint64_t> last(9, 0);
      for (int i = 0; i < 4000; ++i) {
        // Every 100th read is of a key nobody writes: the first of those
        // misses locally whatever the timing, so both paths are exercised.
        const int k = i % 100 == 99 ? 8 : (i + t) % 8;
        const std::string key = k == 8 ? "never-written" : "k" + std::to_string(k);
        std::string value;
        uint64_t version = 0;
        const Result r = reader.Get("", key, &value, &version);
        if (localread::IsFallback(r)) {
          absl::StatusOr<ReadResult> got = Get(key);
          if (!got.ok()) continue;
          version = got->version;
          ++grpc_answers;
        } else {
          ++local_answers;
        }
        if (version < last[k]) ++violations;
        last[k] = std::max(last[k], version);
      }
    });
  }
  for (auto& r : readers) r.join();
  stop = true;
  writer.join();
  EXPECT_EQ(violations.load(), 0);
  EXPECT_GT(local_answers.load(), 0);
  EXPECT_GT(grpc_answers.load(), 0);
}

TEST_F(LocalReadsTest, PastTheBoundLocalReadsFallBackWhenGrpcReadsBypass) {
  // C4: the same decision on both paths.
  ASSERT_TRUE(Put("k", "v").ok());
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  replication_.Set(absl::Now() + absl::Hours(1));
  local_->PublishNow();
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kHit);
  EXPECT_EQ(Get("k")->source, ReadResult::Source::kCache);
  replication_.Set(absl::Now() - absl::Milliseconds(1));  // the bound ran out
  local_->PublishNow();
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kStale);
  EXPECT_EQ(Get("k")->source, ReadResult::Source::kStore) << "gRPC bypasses too";
  replication_.Set(absl::InfinitePast());  // not positioned
  local_->PublishNow();
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kStale);
  replication_.Set(absl::InfiniteFuture());
  local_->PublishNow();
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kHit);
}

TEST_F(LocalReadsTest, TheThreadRepublishesFreshnessByItself) {
  ASSERT_TRUE(Put("k", "v").ok());
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  replication_.Set(absl::InfinitePast());
  // No PublishNow: the 1 ms loop must carry it (bounded wait, not a sleep).
  Result r = Result::kHit;
  for (int i = 0; i < 5000 && r != Result::kStale; ++i) {
    r = reader.Get("", "k", &value, &version);
    if (r != Result::kStale) absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(r, Result::kStale);
}

TEST_F(LocalReadsTest, StrongReadsDeletesAndFlushesAnswerAsGrpcWould) {
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  ASSERT_TRUE(Put("k", "v").ok());
  EXPECT_EQ(reader.Get("", "k", &value, &version, /*strong=*/true), Result::kStrong);
  Waiter<DeleteOutcome> deleted;
  service_->Delete("", "k", std::nullopt, absl::InfiniteFuture(), deleted.Callback());
  ASSERT_TRUE(deleted.Wait().ok());
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kAbsent);
  EXPECT_EQ(version, deleted.Wait()->version);
  absl::StatusOr<ReadResult> grpc = Get("k");
  EXPECT_FALSE(grpc->found);
  EXPECT_EQ(grpc->version, version);
  ASSERT_TRUE(Put("k2", "v2").ok());
  Waiter<uint64_t> flushed;
  service_->Invalidate("", {}, /*all=*/true, flushed.Callback());
  ASSERT_TRUE(flushed.Wait().ok());
  EXPECT_EQ(reader.Get("", "k2", &value, &version), Result::kMiss);
}

TEST_F(LocalReadsTest, StoppingRetiresTheFileSoReadersFallBack) {
  ASSERT_TRUE(Put("k", "v").ok());
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kHit);
  local_->Stop();
  EXPECT_EQ(reader.Get("", "k", &value, &version), Result::kNotServing);
}

// A raw client of the hit-report socket.
int Connect(const std::string& path) {
  const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

std::string Report(uint64_t instance, const std::vector<localread::HitRecord>& records) {
  localread::HitsMessageHeader h{localread::kHitsMagic, localread::kHitsVersion,
                                 static_cast<uint16_t>(records.size()), instance};
  std::string out(reinterpret_cast<const char*>(&h), sizeof(h));
  out.append(reinterpret_cast<const char*>(records.data()),
             records.size() * sizeof(localread::HitRecord));
  return out;
}

// Waits (bounded) until the receiver has handled `reports` messages.
bool HandledAtLeast(LocalReads& local, uint64_t messages) {
  for (int i = 0; i < 5000; ++i) {
    const LocalReadsStats s = local.stats();
    if (s.reports + s.reports_rejected + s.reports_other_file >= messages) return true;
    absl::SleepFor(absl::Milliseconds(1));
  }
  return false;
}

TEST_F(LocalReadsTest, MalformedOrForeignReportsAreCountedAndIgnored) {
  ASSERT_TRUE(Put("k", "v").ok());
  const std::string socket_path = config_.local_read_path + localread::kHitsSuffix;
  const int fd = Connect(socket_path);
  ASSERT_GE(fd, 0);
  const uint64_t instance = namespaces_->storage().instance_id();
  std::vector<std::string> bad = {
      "x",                                                            // too short
      std::string(4096, '\xff'),                                      // bad magic
      Report(instance, {}),                                           // no records
      Report(instance, {{1, 0, 1}}).substr(0, 24),                    // count lies
      Report(instance, {{localread::HashKey("k"), 0, 1}}) + "extra",  // size lies
      std::string(5000, 'z'),                                         // over 4096 bytes
  };
  for (const std::string& m : bad) ASSERT_EQ(send(fd, m.data(), m.size(), 0), (ssize_t)m.size());
  const std::string foreign = Report(instance + 1, {{localread::HashKey("k"), 0, 3}});
  ASSERT_EQ(send(fd, foreign.data(), foreign.size(), 0), (ssize_t)foreign.size());
  // Records naming nothing: an unknown namespace, a hash nobody has.
  const std::string nothing =
      Report(instance,
             {{localread::HashKey("k"), 99, 1}, {12345, 0, 1}, {localread::HashKey("k"), 0, 1000}});
  ASSERT_EQ(send(fd, nothing.data(), nothing.size(), 0), (ssize_t)nothing.size());
  ASSERT_TRUE(HandledAtLeast(*local_, bad.size() + 2));
  const LocalReadsStats s = local_->stats();
  EXPECT_EQ(s.reports_rejected, bad.size());
  EXPECT_EQ(s.reports_other_file, 1u);
  EXPECT_EQ(s.reports, 1u);
  EXPECT_EQ(s.touches, 1u) << "hits 1000 counts as 3, for the one real entry";
  EXPECT_EQ(s.touches_missed, 2u);
  close(fd);
  // Still serving.
  EXPECT_EQ(Get("k")->source, ReadResult::Source::kCache);
}

TEST_F(LocalReadsTest, ClientsBeyondTheLimitAreRefused) {
  local_.reset();
  LocalReadsOptions options;
  options.max_clients = 4;
  auto local = LocalReads::Start(*namespaces_, &replication_, options);
  ASSERT_TRUE(local.ok()) << local.status();
  local_ = *std::move(local);
  std::vector<int> fds;
  for (int i = 0; i < 7; ++i) fds.push_back(Connect(config_.local_read_path + ".hits"));
  for (int i = 0; i < 5000 && local_->stats().clients_refused < 3; ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(local_->stats().clients, 4u);
  EXPECT_EQ(local_->stats().clients_refused, 3u);
  for (int fd : fds) close(fd);
}

// A cache small enough to evict: S3-FIFO must see hits served only locally.
class LocalHitsReachEvictionTest : public LocalReadsTest {
 protected:
  // One shard of 64 KiB: about 230 entries of 200 bytes.
  LocalHitsReachEvictionTest() : LocalReadsTest(64 << 10, 1) {}

  // Fills `hot` keys, reads each of them twice from the mapping (reporting
  // or not), then pushes 3x the cache's worth of cold keys through; returns
  // how many hot keys are still cached.
  int HotKeysLeft(bool report) {
    const std::string value(100, 'v');
    const int hot = 100;
    for (int i = 0; i < hot; ++i) EXPECT_TRUE(Put("hot" + std::to_string(i), value).ok());
    {
      Reader reader(Options(report));
      std::string got;
      uint64_t version = 0;
      for (int round = 0; round < 2; ++round) {
        for (int i = 0; i < hot; ++i) {
          EXPECT_EQ(reader.Get("", "hot" + std::to_string(i), &got, &version), Result::kHit);
        }
      }
      reader.FlushHits();
      if (report) {
        for (int i = 0; i < 5000 && local_->stats().touches < static_cast<uint64_t>(hot); ++i) {
          absl::SleepFor(absl::Milliseconds(1));
        }
        EXPECT_GE(local_->stats().touches, static_cast<uint64_t>(hot));
      }
    }
    for (int i = 0; i < 700; ++i) EXPECT_TRUE(Put("cold" + std::to_string(i), value).ok());
    int left = 0;
    for (int i = 0; i < hot; ++i) {
      left += engine().Peek("hot" + std::to_string(i)).kind == cache::Lookup::Kind::kHit;
    }
    return left;
  }
};

TEST_F(LocalHitsReachEvictionTest, KeysReadOnlyLocallySurviveAScanWhenReported) {
  EXPECT_GE(HotKeysLeft(/*report=*/true), 90);
}

TEST_F(LocalHitsReachEvictionTest, UnreportedLocalHitsLookUnused) {
  // The control: without reports the same keys are evicted (so the test
  // above shows the reports, not the policy alone, keep them).
  EXPECT_LE(HotKeysLeft(/*report=*/false), 10);
}

}  // namespace
}  // namespace cachecar::service
