// The local reader against the real writer: engines whose storage is a
// published file (cache/storage.h). Every fallback of docs/LOCAL_READS.md's
// read algorithm, the answers that are not fallbacks, and the file's life
// (starting, serving, retired, replaced, another layout, truncated).
#include "localread/reader.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "cache/clock.h"
#include "cache/engine.h"
#include "cache/storage.h"
#include "gtest/gtest.h"
#include "localread/cachecar_localread.h"
#include "localread/layout.h"

namespace cachecar::localread {
namespace {

using cache::ChangeKind;

std::string TempDir() {
  char tmpl[] = "/tmp/cachecar-reader-test.XXXXXX";
  return mkdtemp(tmpl);
}

int64_t ClockNow(void* clock) {
  return absl::ToUnixNanos(static_cast<cache::ManualClock*>(clock)->Now());
}

// A writer like cachecar's: a published file and one engine per namespace.
class Writer {
 public:
  Writer(const std::string& path, cache::ManualClock* clock,
         std::vector<cache::NamespacePlan> plans = {{"default", 4 << 20, 4},
                                                    {"sessions", 1 << 20, 1}},
         uint32_t max_key_bytes = 64) {
    auto storage = cache::Storage::CreateFile(plans, {path, max_key_bytes, absl::Milliseconds(1)});
    if (!storage.ok()) {
      ADD_FAILURE() << storage.status();
      return;
    }
    storage_ = *std::move(storage);
    for (size_t i = 0; i < plans.size(); ++i) {
      cache::EngineOptions options;
      options.max_bytes = plans[i].max_bytes;
      options.shards = plans[i].shards;
      options.clock = clock;
      options.region = storage_->region(i);
      engines_.push_back(std::make_unique<cache::Engine>(options));
    }
    storage_->SetTrustedUntil(absl::InfiniteFuture());
    storage_->SetServing();
  }
  cache::Engine& engine(size_t i = 0) { return *engines_[i]; }
  cache::Storage& storage() { return *storage_; }
  // Engines first: they live in the storage.
  void Stop() {
    engines_.clear();
    storage_.reset();
  }
  ~Writer() { Stop(); }

 private:
  std::unique_ptr<cache::Storage> storage_;
  std::vector<std::unique_ptr<cache::Engine>> engines_;
};

class ReaderTest : public ::testing::Test {
 protected:
  ReaderTest() : dir_(TempDir()), path_(dir_ + "/cache") {}
  ~ReaderTest() override { std::system(("rm -rf " + dir_).c_str()); }

  ReaderOptions Options() {
    ReaderOptions o;
    o.path = path_;
    o.now_ns = &ClockNow;
    o.now_context = &clock_;
    o.reopen_interval_ns = 0;  // tests reopen at once
    return o;
  }

  const std::string dir_;
  const std::string path_;
  cache::ManualClock clock_;
};

TEST_F(ReaderTest, AnswersHitsAndAbsentKeysAndFallsBackOnMisses) {
  Writer w(path_, &clock_);
  Reader reader(Options());
  w.engine().Apply("user:1", 7, ChangeKind::kValue, "alice");
  w.engine().Apply("gone", 9, ChangeKind::kTombstone);
  w.engine(1).Apply("s1", 3, ChangeKind::kValue, "token");
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "user:1", &value, &version), Result::kHit);
  EXPECT_EQ(value, "alice");
  EXPECT_EQ(version, 7u);
  EXPECT_EQ(reader.Get("", "user:1", &value, &version), Result::kHit) << "\"\" is default";
  EXPECT_EQ(reader.Get("default", "gone", &value, &version), Result::kAbsent);
  EXPECT_EQ(version, 9u);
  EXPECT_EQ(reader.Get("default", "nobody", &value, &version), Result::kMiss);
  EXPECT_EQ(reader.Get("sessions", "s1", &value, &version), Result::kHit);
  EXPECT_EQ(value, "token");
  EXPECT_EQ(reader.Get("sessions", "user:1", &value, &version), Result::kMiss);
  // Newer versions replace older ones, in place or not.
  w.engine().Apply("user:1", 8, ChangeKind::kValue, "alicE");
  EXPECT_EQ(reader.Get("default", "user:1", &value, &version), Result::kHit);
  EXPECT_EQ(value, "alicE");
  EXPECT_EQ(version, 8u);
  w.engine().Apply("user:1", 10, ChangeKind::kValue, std::string(100000, 'x'));
  EXPECT_EQ(reader.Get("default", "user:1", &value, &version), Result::kHit);
  EXPECT_EQ(value, std::string(100000, 'x'));
  EXPECT_EQ(version, 10u);
  w.engine().Invalidate("user:1");
  EXPECT_EQ(reader.Get("default", "user:1", &value, &version), Result::kMiss);
}

// Two keys whose hashes share the high 32 bits (the slot tag, so the same
// shard and home slot) and whose bytes differ only past the first word: the
// reader must tell them apart by comparing the whole key.
TEST_F(ReaderTest, KeysWithTheSameTagAreToldApartByTheirBytes) {
  const std::string a = "collide:00007204", b = "collide:00089328";
  ASSERT_EQ(HashKey(a) >> 32, HashKey(b) >> 32) << "not a tag collision: pick another pair";
  Writer w(path_, &clock_);
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  w.engine().Apply(a, 1, ChangeKind::kValue, "A");
  EXPECT_EQ(reader.Get("default", b, &value, &version), Result::kMiss);
  w.engine().Apply(b, 2, ChangeKind::kValue, "B");
  EXPECT_EQ(reader.Get("default", a, &value, &version), Result::kHit);
  EXPECT_EQ(value, "A");
  EXPECT_EQ(reader.Get("default", b, &value, &version), Result::kHit);
  EXPECT_EQ(value, "B");
  EXPECT_EQ(version, 2u);
  // Same prefix, other lengths: never a match.
  EXPECT_EQ(reader.Get("default", "collide:0000720", &value, &version), Result::kMiss);
  EXPECT_EQ(reader.Get("default", "collide:000072040", &value, &version), Result::kMiss);
}

TEST_F(ReaderTest, FallsBackForStrongReadsUnknownNamespacesAndBadKeys) {
  Writer w(path_, &clock_);
  Reader reader(Options());
  w.engine().Apply("k", 1, ChangeKind::kValue, "v");
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "k", &value, &version, /*strong=*/true), Result::kStrong);
  EXPECT_EQ(reader.Get("nope", "k", &value, &version), Result::kUnknownNamespace);
  EXPECT_EQ(reader.Get("default", "", &value, &version), Result::kBadKey);
  EXPECT_EQ(reader.Get("default", std::string(65, 'k'), &value, &version), Result::kBadKey)
      << "over the file's max_key_bytes (64): gRPC says why";
  EXPECT_TRUE(IsFallback(Result::kStrong));
  EXPECT_FALSE(IsFallback(Result::kAbsent));
}

TEST_F(ReaderTest, ExpiredEntriesAndEntriesFromBeforeAFlushFallBack) {
  Writer w(path_, &clock_);
  Reader reader(Options());
  w.engine().Apply("ttl", 1, ChangeKind::kValue, "v", absl::Seconds(10));
  w.engine().Apply("keep", 2, ChangeKind::kValue, "v");
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "ttl", &value, &version), Result::kHit);
  clock_.Advance(absl::Seconds(10));
  EXPECT_EQ(reader.Get("default", "ttl", &value, &version), Result::kExpired);
  // A flush empties the shards (the stress test races readers with flushes
  // in flight, where entries of the old epoch are still indexed but dead).
  w.engine().Flush();
  EXPECT_EQ(reader.Get("default", "keep", &value, &version), Result::kMiss);
  w.engine().Apply("keep", 3, ChangeKind::kValue, "again");
  EXPECT_EQ(reader.Get("default", "keep", &value, &version), Result::kHit);
  EXPECT_EQ(version, 3u);
}

TEST_F(ReaderTest, PastTheTrustedInstantEveryReadFallsBackAsStale) {
  Writer w(path_, &clock_);
  Reader reader(Options());
  w.engine().Apply("k", 1, ChangeKind::kValue, "v");
  std::string value;
  uint64_t version = 0;
  w.storage().SetTrustedUntil(clock_.Now() + absl::Seconds(2));
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
  clock_.Advance(absl::Seconds(2));
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit) << "at the instant: still";
  clock_.Advance(absl::Nanoseconds(1));
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kStale);
  w.storage().SetTrustedUntil(absl::InfinitePast());  // bypass
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kStale);
  w.storage().SetTrustedUntil(absl::InfiniteFuture());
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
}

TEST_F(ReaderTest, GetIntoSaysHowLargeABufferItNeeds) {
  Writer w(path_, &clock_);
  Reader reader(Options());
  w.engine().Apply("k", 5, ChangeKind::kValue, "0123456789");
  char buf[4];
  size_t len = 0;
  uint64_t version = 0;
  EXPECT_EQ(reader.GetInto("default", "k", buf, sizeof buf, &len, &version),
            Result::kBufferTooSmall);
  EXPECT_EQ(len, 10u);
  char big[16];
  EXPECT_EQ(reader.GetInto("default", "k", big, sizeof big, &len, &version), Result::kHit);
  EXPECT_EQ(std::string(big, len), "0123456789");
  EXPECT_EQ(version, 5u);
}

TEST_F(ReaderTest, NoFileAndAStartingFileFallBackUntilTheFileServes) {
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kNotServing);
  auto storage = cache::Storage::CreateFile({{"default", 1 << 20, 1}}, {path_, 64});
  ASSERT_TRUE(storage.ok()) << storage.status();
  cache::EngineOptions options;
  options.max_bytes = 1 << 20;
  options.shards = 1;
  options.clock = &clock_;
  options.region = (*storage)->region(0);
  auto engine = std::make_unique<cache::Engine>(options);
  engine->Apply("k", 1, ChangeKind::kValue, "v");
  (*storage)->SetTrustedUntil(absl::InfiniteFuture());
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kNotServing) << "starting";
  (*storage)->SetServing();
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
  engine.reset();
}

TEST_F(ReaderTest, ARetiredFileIsNeverServedAndItsSuccessorIsPickedUp) {
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  {
    Writer old_writer(path_, &clock_);
    old_writer.engine().Apply("k", 1, ChangeKind::kValue, "old");
    EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
    EXPECT_EQ(value, "old");
    old_writer.storage().Retire();
    EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kNotServing);
  }
  Writer new_writer(path_, &clock_);
  new_writer.engine().Apply("k", 2, ChangeKind::kValue, "new");
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
  EXPECT_EQ(value, "new");
  EXPECT_EQ(version, 2u);
  EXPECT_EQ(reader.Stats().opens, 2u);
}

TEST_F(ReaderTest, ACrashedWritersCacheIsNeverServedOnceItsSuccessorStarts) {
  // A writer process that dies without retiring its file (a crash, an OOM
  // kill). Until a successor starts, nothing can change the data behind the
  // dead process's back through it; once one starts, the old cache must
  // never be served again.
  int ready[2], go[2];
  ASSERT_EQ(pipe(ready), 0);
  ASSERT_EQ(pipe(go), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    Writer w(path_, &clock_);
    w.engine().Apply("k", 1, ChangeKind::kValue, "old");
    char c = 1;
    if (write(ready[1], &c, 1) != 1 || read(go[0], &c, 1) != 1) _exit(1);
    _exit(0);  // no destructors: the file stays at the path, "serving"
  }
  char c = 0;
  ASSERT_EQ(read(ready[0], &c, 1), 1);
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  ASSERT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
  ASSERT_EQ(value, "old");
  ASSERT_EQ(write(go[1], &c, 1), 1);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);

  Writer successor(path_, &clock_);  // retires the dead one's file first
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kMiss)
      << "the successor's cache is empty; the dead one's must not answer";
  successor.engine().Apply("k", 2, ChangeKind::kValue, "new");
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kHit);
  EXPECT_EQ(value, "new");
  for (int fd : {ready[0], ready[1], go[0], go[1]}) close(fd);
}

TEST_F(ReaderTest, AFileOfAnotherLayoutVersionIsIncompatible) {
  std::vector<char> bytes(8192, 0);
  auto* h = reinterpret_cast<FileHeader*>(bytes.data());
  h->magic = kMagic;
  h->layout_version = kLayoutVersion + 1;
  h->header_bytes = kHeaderBytes;
  h->file_bytes = bytes.size();
  h->state.store(kServing);
  const int fd = open(path_.c_str(), O_CREAT | O_WRONLY, 0644);
  ASSERT_EQ(write(fd, bytes.data(), bytes.size()), static_cast<ssize_t>(bytes.size()));
  close(fd);
  Reader reader(Options());
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kIncompatible);
  EXPECT_EQ(reader.Stats().last_open_result, Result::kIncompatible);
}

TEST_F(ReaderTest, ATruncatedFileIsCorruptAndNeverMapped) {
  const std::string copy = dir_ + "/copy";
  {
    Writer w(path_, &clock_);
    w.engine().Apply("k", 1, ChangeKind::kValue, "v");
    ASSERT_EQ(std::system(("cp " + path_ + " " + copy).c_str()), 0);
  }
  ASSERT_EQ(truncate(copy.c_str(), 100000), 0);
  ReaderOptions o = Options();
  o.path = copy;
  Reader reader(o);
  std::string value;
  uint64_t version = 0;
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kCorrupt);
  ASSERT_EQ(truncate(copy.c_str(), 100), 0);
  EXPECT_EQ(reader.Get("default", "k", &value, &version), Result::kCorrupt);
}

TEST_F(ReaderTest, TheCAbiAnswersLikeTheCppReader) {
  Writer w(path_, &clock_);
  w.engine().Apply("k", 4, ChangeKind::kValue, "value");
  w.engine().Apply("absent", 6, ChangeKind::kTombstone);
  cachecar_localread* r = cachecar_localread_open(path_.c_str(), CACHECAR_LOCALREAD_NO_HIT_REPORTS);
  ASSERT_NE(r, nullptr);
  char buf[16];
  size_t len = 0;
  uint64_t version = 0;
  // The real clock: the entries never expire and the file is trusted always.
  EXPECT_EQ(cachecar_localread_get(r, "default", 7, "k", 1, 0, buf, sizeof buf, &len, &version),
            CACHECAR_LOCALREAD_HIT);
  EXPECT_EQ(std::string(buf, len), "value");
  EXPECT_EQ(version, 4u);
  EXPECT_EQ(cachecar_localread_get(r, nullptr, 0, "k", 1, 0, buf, 2, &len, &version),
            CACHECAR_LOCALREAD_BUFFER_TOO_SMALL);
  EXPECT_EQ(len, 5u);
  EXPECT_EQ(cachecar_localread_get(r, "", 0, "absent", 6, 0, nullptr, 0, nullptr, &version),
            CACHECAR_LOCALREAD_ABSENT);
  EXPECT_EQ(version, 6u);
  const int strong = cachecar_localread_get(r, "", 0, "k", 1, CACHECAR_LOCALREAD_STRONG_READ, buf,
                                            sizeof buf, &len, &version);
  EXPECT_EQ(strong, CACHECAR_LOCALREAD_STRONG);
  EXPECT_EQ(cachecar_localread_is_fallback(strong), 1);
  EXPECT_EQ(cachecar_localread_is_fallback(CACHECAR_LOCALREAD_ABSENT), 0);
  EXPECT_STREQ(cachecar_localread_result_name(CACHECAR_LOCALREAD_MISS), "MISS");
  EXPECT_EQ(cachecar_localread_layout_version(), kLayoutVersion);
  cachecar_localread_close(r);
}

TEST(HashTest, MatchesTheTestVectorsInLocalReadsMd) {
  struct Vector {
    const char* key;
    uint64_t hash;
    uint32_t shard_of_16;
    uint32_t home_of_1024;
  };
  const Vector vectors[] = {
      {"", 0x82d6de9c0781ef39, 8, 668},
      {"a", 0x9028242c0d27fbc1, 9, 44},
      {"abc", 0x0b8bd0fa6f36dd9c, 0, 250},
      {"abcd", 0x8405b03db385ff4e, 8, 61},
      {"hello world", 0x00874a3ff97baffb, 0, 575},
      {"key:000000000001", 0x2f5a5150dd92cd2a, 2, 336},
      {"0123456789abcdef", 0x04c445e3b36f8789, 0, 483},
      {"0123456789abcdefg", 0xf64f3195598d9d6a, 15, 405},
      {"a key that is longer than thirty-two bytes in total", 0x69d2e477bb498d00, 6, 119},
  };
  for (const Vector& v : vectors) {
    const uint64_t h = HashKey(v.key);
    EXPECT_EQ(h, v.hash) << v.key;
    EXPECT_EQ(ShardOf(h, 16), v.shard_of_16) << v.key;
    EXPECT_EQ(SlotTag(MakeSlot(h, 1)) & 1023, v.home_of_1024) << v.key;
  }
}

}  // namespace
}  // namespace cachecar::localread
