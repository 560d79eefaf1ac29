// MemoryStore: versions from one counter, preconditions, batch loads, deletes.
#include "store/memory/memory_store.h"

#include <thread>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/outcome.h"

namespace cachecar::store {
namespace {

using ::testing::HasSubstr;

class MemoryStoreTest : public ::testing::Test {
 protected:
  MemoryStore store_;
  CallOptions opts_;
};

TEST_F(MemoryStoreTest, AbsentKeyLoadsAsNotFoundAtVersionZero) {
  auto r = store_.Load("default", "nope", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->found);
  EXPECT_EQ(r->version, 0u);
}

TEST_F(MemoryStoreTest, VersionsComeFromOneCounterAcrossNamespaces) {
  auto v1 = store_.Put("a", "k", "x", Precondition::None(), opts_);
  auto v2 = store_.Put("b", "k", "y", Precondition::None(), opts_);
  auto v3 = store_.Put("a", "k", "z", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok() && v2.ok() && v3.ok());
  EXPECT_LT(*v1, *v2);
  EXPECT_LT(*v2, *v3);
  auto r = store_.Load("a", "k", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(r->found);
  EXPECT_EQ(r->value, "z");
  EXPECT_EQ(r->version, *v3);
}

TEST_F(MemoryStoreTest, IfVersionMismatchIsAbortedNamingBothVersions) {
  auto v1 = store_.Put("ns", "k", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok());
  auto bad = store_.Put("ns", "k", "y", Precondition::IfVersion(*v1 + 7), opts_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(bad.status().message(), HasSubstr("expected version " + std::to_string(*v1 + 7)));
  EXPECT_THAT(bad.status().message(), HasSubstr("found version " + std::to_string(*v1)));
  auto good = store_.Put("ns", "k", "y", Precondition::IfVersion(*v1), opts_);
  ASSERT_TRUE(good.ok());
  EXPECT_GT(*good, *v1);
}

// A read-modify-write loop on a deleted key: Get reports the delete's
// version, and if_version with it writes (#15).
TEST_F(MemoryStoreTest, IfVersionOfTheDeleteWritesADeletedKey) {
  auto v1 = store_.Put("ns", "k", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok());
  auto del = store_.Delete("ns", "k", std::nullopt, opts_);
  ASSERT_TRUE(del.ok() && del->found);
  auto read = store_.Load("ns", "k", opts_);
  ASSERT_TRUE(read.ok());
  ASSERT_FALSE(read->found);
  ASSERT_EQ(read->version, del->version);
  // The value's old version no longer matches; the delete's does.
  auto old = store_.Put("ns", "k", "y", Precondition::IfVersion(*v1), opts_);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(old.status().message(), HasSubstr("key deleted"));
  // A delete at that version is a no-op that succeeds.
  auto again = store_.Delete("ns", "k", del->version, opts_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->found);
  EXPECT_EQ(again->version, del->version);
  auto cas = store_.Put("ns", "k", "y", Precondition::IfVersion(read->version), opts_);
  ASSERT_TRUE(cas.ok()) << cas.status();
  EXPECT_GT(*cas, del->version);
  // 0 still means "absent at any version", and a live key never matches it.
  auto zero = store_.Put("ns", "k", "z", Precondition::IfVersion(0), opts_);
  EXPECT_EQ(zero.status().code(), absl::StatusCode::kAborted);
}

TEST_F(MemoryStoreTest, WriteBatchIsAllOrNothing) {
  auto a = store_.Put("ns", "a", "a0", Precondition::None(), opts_);
  auto b = store_.Put("ns", "b", "b0", Precondition::None(), opts_);
  ASSERT_TRUE(a.ok() && b.ok());
  // The second write's precondition fails: nothing is written.
  auto failed = store_.WriteBatch("ns",
                                  {BatchWrite{"a", false, "a1", Precondition::IfVersion(*a)},
                                   BatchWrite{"b", false, "b1", Precondition::IfVersion(*a)},
                                   BatchWrite{"c", false, "c1", Precondition::None()}},
                                  opts_);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(failed.status().message(), HasSubstr("writes[1]"));
  EXPECT_THAT(failed.status().message(), HasSubstr("nothing in the batch was written"));
  EXPECT_EQ(store_.Load("ns", "a", opts_)->value, "a0");
  EXPECT_FALSE(store_.Load("ns", "c", opts_)->found);

  auto done = store_.WriteBatch("ns",
                                {BatchWrite{"a", false, "a1", Precondition::IfVersion(*a)},
                                 BatchWrite{"b", true, "", Precondition::IfVersion(*b)},
                                 BatchWrite{"c", false, "c1", Precondition::IfAbsent()},
                                 BatchWrite{"never", true, "", Precondition::None()}},
                                opts_);
  ASSERT_TRUE(done.ok()) << done.status();
  ASSERT_EQ(done->size(), 4u);
  EXPECT_GT((*done)[0].version, *b);
  EXPECT_TRUE((*done)[1].found);
  EXPECT_GT((*done)[1].version, (*done)[0].version) << "a version per write";
  EXPECT_GT((*done)[2].version, (*done)[1].version);
  EXPECT_FALSE((*done)[3].found);
  EXPECT_EQ((*done)[3].version, 0u);
  EXPECT_EQ(store_.Load("ns", "a", opts_)->value, "a1");
  EXPECT_FALSE(store_.Load("ns", "b", opts_)->found);
  EXPECT_EQ(store_.Load("ns", "c", opts_)->value, "c1");
}

TEST_F(MemoryStoreTest, IfAbsentFailsOnLiveValueAndSucceedsAfterDelete) {
  ASSERT_TRUE(store_.Put("ns", "k", "x", Precondition::IfAbsent(), opts_).ok());
  auto again = store_.Put("ns", "k", "y", Precondition::IfAbsent(), opts_);
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(again.status().message(), HasSubstr("if_absent"));
  ASSERT_TRUE(store_.Delete("ns", "k", std::nullopt, opts_).ok());
  EXPECT_TRUE(store_.Put("ns", "k", "z", Precondition::IfAbsent(), opts_).ok());
}

TEST_F(MemoryStoreTest, DeleteThenReinsertMovesVersionForward) {
  auto v1 = store_.Put("ns", "k", "x", Precondition::None(), opts_);
  auto d = store_.Delete("ns", "k", std::nullopt, opts_);
  ASSERT_TRUE(v1.ok() && d.ok());
  EXPECT_TRUE(d->found);
  EXPECT_GT(d->version, *v1);
  auto r = store_.Load("ns", "k", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->found);
  EXPECT_EQ(r->version, d->version);
  auto v2 = store_.Put("ns", "k", "y", Precondition::None(), opts_);
  ASSERT_TRUE(v2.ok());
  EXPECT_GT(*v2, d->version);
}

TEST_F(MemoryStoreTest, DeleteOfAbsentKeyReportsNotFoundWithoutNewVersion) {
  auto d = store_.Delete("ns", "ghost", std::nullopt, opts_);
  ASSERT_TRUE(d.ok());
  EXPECT_FALSE(d->found);
  EXPECT_EQ(d->version, 0u);
  auto v = store_.Put("ns", "other", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v.ok());
  EXPECT_EQ(*v, 1u);
}

TEST_F(MemoryStoreTest, DeleteWithWrongVersionIsAborted) {
  auto v1 = store_.Put("ns", "k", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok());
  auto d = store_.Delete("ns", "k", *v1 + 1, opts_);
  EXPECT_EQ(d.status().code(), absl::StatusCode::kAborted);
  EXPECT_TRUE(store_.Load("ns", "k", opts_)->found);
}

TEST_F(MemoryStoreTest, LoadBatchAnswersInRequestOrder) {
  ASSERT_TRUE(store_.Put("ns", "b", "B", Precondition::None(), opts_).ok());
  ASSERT_TRUE(store_.Put("ns", "a", "A", Precondition::None(), opts_).ok());
  auto rows = store_.LoadBatch("ns", {"a", "missing", "b", "a"}, opts_);
  ASSERT_TRUE(rows.ok());
  ASSERT_EQ(rows->size(), 4u);
  EXPECT_EQ((*rows)[0].value, "A");
  EXPECT_FALSE((*rows)[1].found);
  EXPECT_EQ((*rows)[2].value, "B");
  EXPECT_EQ((*rows)[3].value, "A");
}

TEST_F(MemoryStoreTest, PassedDeadlineIsDeadlineExceeded) {
  CallOptions late;
  late.deadline = absl::Now() - absl::Seconds(1);
  EXPECT_EQ(store_.Load("ns", "k", late).status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_EQ(store_.Put("ns", "k", "v", Precondition::None(), late).status().code(),
            absl::StatusCode::kDeadlineExceeded);
}

TEST_F(MemoryStoreTest, ConcurrentIfVersionRaceHasExactlyOneWinnerPerVersion) {
  auto v0 = store_.Put("ns", "k", "0", Precondition::None(), opts_);
  ASSERT_TRUE(v0.ok());
  constexpr int kThreads = 8;
  std::atomic<int> wins{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_.Put("ns", "k", std::to_string(t), Precondition::IfVersion(*v0), opts_);
      if (r.ok())
        wins.fetch_add(1);
      else
        EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted);
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
}

TEST(OutcomeTest, OutcomeUnknownIsUnavailableAndRecognisable) {
  absl::Status s = OutcomeUnknownError("connection lost after COMMIT");
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(IsOutcomeUnknown(s));
  EXPECT_FALSE(IsOutcomeUnknown(absl::UnavailableError("down")));
}

TEST(OutcomeTest, BinaryKeysAreEscapedAndShortenedInMessages) {
  std::string key(200, '\x01');
  absl::Status s = VersionMismatchError(key, 1, 2);
  EXPECT_LT(s.message().size(), 400u);
  EXPECT_THAT(s.message(), HasSubstr("\\x01"));
}

}  // namespace
}  // namespace cachecar::store

namespace cachecar::store {
namespace {

TEST(MemoryStoreScanTest, ScanKeysPagesLiveAndDeletedKeysInKeyOrder) {
  MemoryStore store;
  for (const char* k : {"c", "a", "d", "b"}) {
    ASSERT_TRUE(store.Put("n", k, "v", Precondition::None(), {}).ok());
  }
  ASSERT_TRUE(store.Put("other", "aa", "v", Precondition::None(), {}).ok());
  ASSERT_TRUE(store.Delete("n", "b", std::nullopt, {}).ok());
  auto all = store.ScanKeys("n", "", 10, {});
  ASSERT_TRUE(all.ok());
  EXPECT_THAT(*all, ::testing::ElementsAre("a", "b", "c", "d"))
      << "a deleted key keeps its delete version, so a load must see it";
  auto page = store.ScanKeys("n", "a", 2, {});
  ASSERT_TRUE(page.ok());
  EXPECT_THAT(*page, ::testing::ElementsAre("b", "c"));
}

}  // namespace
}  // namespace cachecar::store
