// Warm start: the file format (round trip; every truncation, a flipped byte
// anywhere, a foreign file, another version and trailing bytes are refused,
// never a crash; atomic replace) and the loader (fills through fill tickets,
// so a newer event that lands while a batch is read wins; unknown
// namespaces skipped; store errors retried; may_start waited for).
#include "service/warm_start.h"

#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "service/namespaces.h"
#include "service/warm_start_file.h"
#include "store/testing/forwarding_store.h"

namespace cachecar::service {
namespace {

WarmKeys Sample() {
  WarmKeys k;
  k.namespaces.push_back({"default", {"a", "bb", std::string(300, 'x'), std::string("\0z", 2)}});
  k.namespaces.push_back({"users", {"user:1"}});
  return k;
}

TEST(WarmStartFileTest, RoundTrips) {
  const std::string data = EncodeWarmKeys(Sample());
  absl::StatusOr<WarmKeys> back = DecodeWarmKeys(data, {});
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_EQ(back->namespaces.size(), 2u);
  EXPECT_EQ(back->namespaces[0].keys, Sample().namespaces[0].keys);
  EXPECT_EQ(back->namespaces[1].name, "users");
  EXPECT_EQ(back->key_count(), 5u);
  EXPECT_TRUE(DecodeWarmKeys(EncodeWarmKeys(WarmKeys{}), {}).ok());
}

TEST(WarmStartFileTest, EveryTruncationAndEveryFlippedByteIsRefused) {
  const std::string data = EncodeWarmKeys(Sample());
  for (size_t n = 0; n < data.size(); ++n) {
    absl::StatusOr<WarmKeys> r = DecodeWarmKeys(data.substr(0, n), {});
    EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss) << "truncated to " << n;
  }
  for (size_t i = 0; i < data.size(); ++i) {
    std::string bad = data;
    bad[i] ^= 0x20;
    EXPECT_EQ(DecodeWarmKeys(bad, {}).status().code(), absl::StatusCode::kDataLoss) << "byte " << i;
  }
  EXPECT_EQ(DecodeWarmKeys(data + "x", {}).status().code(), absl::StatusCode::kDataLoss);
}

TEST(WarmStartFileTest, ForeignFilesOtherVersionsAndLimitsAreNamed) {
  EXPECT_NE(DecodeWarmKeys("#!/bin/sh\necho hello, this is a script\n", {})
                .status()
                .message()
                .find("magic"),
            std::string::npos);
  std::string v2 = EncodeWarmKeys(Sample());
  v2[8] = 2;
  EXPECT_NE(DecodeWarmKeys(v2, {}).status().message().find("format version 2"), std::string::npos);
  WarmFileLimits small;
  small.max_key_bytes = 100;  // the 300-byte key is now corruption
  EXPECT_EQ(DecodeWarmKeys(EncodeWarmKeys(Sample()), small).status().code(),
            absl::StatusCode::kDataLoss);
  // A body whose checksum is right but whose count claims more keys than
  // the bytes could hold is refused before anything is reserved.
  WarmKeys huge;
  huge.namespaces.push_back({"default", {"k"}});
  std::string body_bad = EncodeWarmKeys(huge);
  const size_t count_at = 24 + 4 + 2 + 7;  // header, ns count, name length, name
  body_bad[count_at + 3] = 0x7f;           // key count ~2^31
  const std::string body = body_bad.substr(24);
  const uint32_t crc = Crc32c(body);
  for (int i = 0; i < 4; ++i) body_bad[20 + i] = static_cast<char>(crc >> (8 * i));
  EXPECT_NE(DecodeWarmKeys(body_bad, {}).status().message().find("bad key count"),
            std::string::npos);
}

TEST(WarmStartFileTest, WritesAtomicallyAndReadsBack) {
  const std::string path = ::testing::TempDir() + "/warm-" + std::to_string(getpid());
  EXPECT_EQ(ReadWarmStartFile(path, {}).status().code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(WriteWarmStartFile(path, Sample()).ok());
  absl::StatusOr<WarmKeys> back = ReadWarmStartFile(path, {});
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->key_count(), 5u);
  WarmKeys one;
  one.namespaces.push_back({"default", {"only"}});
  ASSERT_TRUE(WriteWarmStartFile(path, one).ok());  // replaces
  EXPECT_EQ(ReadWarmStartFile(path, {})->key_count(), 1u);
  std::ofstream(path, std::ios::trunc) << "garbage";
  EXPECT_EQ(ReadWarmStartFile(path, {}).status().code(), absl::StatusCode::kDataLoss);
  EXPECT_FALSE(WriteWarmStartFile("/nonexistent-dir/warm", one).ok());
  std::remove(path.c_str());
}

config::Config TwoNamespaces() {
  config::Config c;
  c.max_bytes = 64 << 20;
  c.namespaces = {{"default", absl::ZeroDuration(), 0}, {"users", absl::ZeroDuration(), 0}};
  return c;
}

// A store whose LoadBatch runs `during` after it has read (as if an event
// arrived while the rows travelled back).
class HookedStore : public store::testing::ForwardingStore {
 public:
  std::function<void()> during;
  std::atomic<int> fail_next{0};
  absl::StatusOr<std::vector<store::Record>> LoadBatch(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const store::CallOptions& o) override {
    if (fail_next.load() > 0) {
      fail_next.fetch_sub(1);
      return absl::UnavailableError("down for the test");
    }
    auto r = ForwardingStore::LoadBatch(ns, keys, o);
    if (during) during();
    return r;
  }
};

TEST(WarmLoaderTest, SnapshotThenReloadServesHits) {
  NamespaceSet before(TwoNamespaces());
  HookedStore store;
  for (int i = 0; i < 50; ++i) {
    const std::string k = "k" + std::to_string(i);
    const uint64_t v = *store.Put("default", k, "v" + k, {}, {});
    (*before.Find("default"))->engine->Apply(k, v, cache::ChangeKind::kValue, "v" + k);
  }
  (*before.Find("users"))->engine->Apply("gone", 7, cache::ChangeKind::kTombstone);
  WarmKeys keys = SnapshotKeys(before);
  ASSERT_EQ(keys.key_count(), 51u);
  keys.namespaces.push_back({"retired", {"x"}});  // no longer declared: skipped

  WarmLoaderOptions o;
  o.batch_keys = 8;
  o.keys_per_second = 0;
  NamespaceSet again(TwoNamespaces());
  WarmLoader whole(again, store, o);
  whole.Start(keys);
  for (int i = 0; i < 2000 && !whole.stats().done; ++i) usleep(1000);
  const WarmLoaderStats s = whole.stats();
  EXPECT_TRUE(s.done);
  EXPECT_EQ(s.keys_total, 51u);
  EXPECT_EQ(s.keys_loaded, 51u);
  EXPECT_EQ(s.batches, 8u);  // 50 keys by 8, and the one in users
  cache::Lookup hit = (*again.Find("default"))->engine->Get("k7");
  EXPECT_EQ(hit.kind, cache::Lookup::Kind::kHit);
  EXPECT_EQ(hit.value, "vk7");
  EXPECT_EQ((*again.Find("users"))->engine->Get("gone").kind, cache::Lookup::Kind::kNegative);
}

TEST(WarmLoaderTest, AnEventThatArrivesDuringTheReadWins) {
  NamespaceSet set(TwoNamespaces());
  HookedStore store;
  const uint64_t v1 = *store.Put("default", "k", "old", {}, {});
  Namespace& ns = **set.Find("default");
  store.during = [&] {
    // A write committed after the read; its event reaches the engine
    // before the loader offers what it read.
    const uint64_t v2 = *store.memory().Put("default", "k", "new", {}, {});
    ns.engine->Apply("k", v2, cache::ChangeKind::kInvalidate);
  };
  WarmLoader loader(set, store, {});
  absl::StatusOr<size_t> filled = loader.LoadBatch(ns, {"k"});
  ASSERT_TRUE(filled.ok());
  EXPECT_EQ(*filled, 0u);
  EXPECT_EQ(loader.stats().keys_skipped, 1u);
  EXPECT_NE(ns.engine->Get("k").value, "old") << "the loaded copy (v" << v1 << ") was cached";
}

TEST(WarmLoaderTest, StoreErrorsAreRetriedAndMayStartIsWaitedFor) {
  NamespaceSet set(TwoNamespaces());
  HookedStore store;
  store.Put("default", "k", "v", {}, {}).IgnoreError();
  store.fail_next = 2;
  std::atomic<bool> go{false};
  WarmLoaderOptions o;
  o.may_start = [&go] { return go.load(); };
  WarmLoader loader(set, store, o);
  WarmKeys keys;
  keys.namespaces.push_back({"default", {"k"}});
  loader.Start(keys);
  usleep(50 * 1000);
  EXPECT_EQ(loader.stats().batches, 0u) << "loaded before may_start said so";
  go = true;
  for (int i = 0; i < 5000 && !loader.stats().done; ++i) usleep(1000);
  EXPECT_TRUE(loader.stats().done);
  EXPECT_EQ(loader.stats().store_errors, 2u);
  EXPECT_EQ(loader.stats().keys_loaded, 1u);
  EXPECT_EQ((*set.Find("default"))->engine->Get("k").value, "v");
}

TEST(WarmLoaderTest, KeysNotReachedBeforeStopAreSavedForTheNextStart) {
  NamespaceSet set(TwoNamespaces());
  HookedStore store;
  WarmKeys file;
  file.namespaces.push_back({"default", {"a", "b", "c", "d", "e"}});
  file.namespaces.push_back({"users", {"u"}});
  file.namespaces.push_back({"retired", {"x"}});  // not declared: dropped, not kept
  for (const WarmNamespace& w : file.namespaces) {
    for (const std::string& k : w.keys) store.Put(w.name, k, "v", {}, {}).IgnoreError();
  }
  Notification first_read;
  store.during = [&first_read] {
    if (!first_read.HasBeenNotified()) first_read.Notify();
  };
  WarmLoaderOptions o;
  o.batch_keys = 2;
  o.keys_per_second = 0.001;  // the second batch is due in 2000 s: Stop() comes first
  WarmLoader loader(set, store, o);
  loader.Start(file);
  first_read.WaitForNotification();
  loader.Stop();
  EXPECT_EQ(loader.stats().keys_loaded, 2u);
  const WarmKeys left = loader.Unvisited();
  ASSERT_EQ(left.namespaces.size(), 2u);
  EXPECT_EQ(left.namespaces[0].name, "default");
  EXPECT_THAT(left.namespaces[0].keys, ::testing::ElementsAre("c", "d", "e"));
  EXPECT_THAT(left.namespaces[1].keys, ::testing::ElementsAre("u"));

  // What the stopping replica saves: its cache's keys and the rest, once
  // each (an event put "c" in the cache meanwhile).
  (*set.Find("default"))->engine->Apply("c", 99, cache::ChangeKind::kValue, "event");
  WarmKeys saved = SnapshotKeys(set);
  AddUnvisited(saved, left);
  ASSERT_EQ(saved.key_count(), 6u);
  std::vector<std::string> all;
  for (const WarmNamespace& w : saved.namespaces) {
    for (const std::string& k : w.keys) all.push_back(w.name + "/" + k);
  }
  EXPECT_THAT(all, ::testing::UnorderedElementsAre("default/a", "default/b", "default/c",
                                                   "default/d", "default/e", "users/u"));
}

TEST(WarmLoaderTest, ALoaderStoppedBeforeItMayStartKeepsEveryKey) {
  NamespaceSet set(TwoNamespaces());
  HookedStore store;
  WarmLoaderOptions o;
  o.may_start = [] { return false; };
  WarmLoader loader(set, store, o);
  WarmKeys file;
  file.namespaces.push_back({"users", {"u1", "u2"}});
  loader.Start(file);
  loader.Stop();
  const WarmKeys left = loader.Unvisited();
  ASSERT_EQ(left.namespaces.size(), 1u);
  EXPECT_THAT(left.namespaces[0].keys, ::testing::ElementsAre("u1", "u2"));
  EXPECT_EQ(loader.stats().batches, 0u);
}

}  // namespace
}  // namespace cachecar::service
