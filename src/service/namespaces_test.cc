// NamespaceSet: byte budgets split by share, shard counts that leave room
// for large values, and lookups that name the declared namespaces.
#include "service/namespaces.h"

#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::service {
namespace {

using ::testing::HasSubstr;

TEST(NamespaceSetTest, SharesSplitTheBudgetAndTheRestIsShared) {
  config::Config c;
  c.max_bytes = 1000ull << 20;
  c.namespaces = {{"a", absl::ZeroDuration(), 0.5},
                  {"b", absl::ZeroDuration(), 0},
                  {"default", absl::ZeroDuration(), 0}};
  NamespaceSet set(c);
  EXPECT_EQ((*set.Find("a"))->engine->max_bytes(), 500ull << 20);
  EXPECT_EQ((*set.Find("b"))->engine->max_bytes(), 250ull << 20);
  EXPECT_EQ((*set.Find(""))->name, "default");
}

// Issue #17: --max-bytes=18446744073709551615 left every namespace 0 bytes.
// The largest max_bytes config validation accepts (12 GiB per shard).
TEST(NamespaceSetTest, TheLargestMaxBytesIsNotZero) {
  config::Config c;
  c.max_bytes = (uint64_t{12} << 30) * c.shards;
  c.namespaces = {{"a", absl::ZeroDuration(), 0.5}, {"default", absl::ZeroDuration(), 0}};
  NamespaceSet set(c);
  EXPECT_GE((*set.Find("a"))->engine->max_bytes(), c.max_bytes / 2 - 4096);
  EXPECT_GE((*set.Find("default"))->engine->max_bytes(), c.max_bytes / 2 - 4096);
  config::Config one;
  one.max_bytes = (uint64_t{12} << 30) * one.shards;
  one.namespaces = {{"default", absl::ZeroDuration(), 0}};
  NamespaceSet whole(one);
  Namespace* ns = *whole.Find("");
  EXPECT_EQ(ns->engine->max_bytes(), one.max_bytes);
  EXPECT_EQ(ns->shards, one.shards);
  // And it caches.
  EXPECT_EQ(ns->engine->Apply("k", 1, cache::ChangeKind::kValue, "v"),
            cache::ApplyResult::kApplied);
  EXPECT_EQ(ns->engine->Get("k").kind, cache::Lookup::Kind::kHit);
}

TEST(NamespaceSetTest, SmallNamespacesGetFewerShards) {
  config::Config c;
  c.max_bytes = 256ull << 20;
  c.shards = 16;
  c.max_value_bytes = 1 << 20;
  c.namespaces = {{"big", absl::ZeroDuration(), 0.9},
                  {"small", absl::ZeroDuration(), 0.05},
                  {"default", absl::ZeroDuration(), 0.05}};
  NamespaceSet set(c);
  Namespace* big = *set.Find("big");
  Namespace* small = *set.Find("small");
  EXPECT_EQ(big->shards, 16u);
  EXPECT_LT(small->shards, 16u);
  EXPECT_GE(small->engine->max_bytes() / small->shards, 4u * c.max_value_bytes);
}

TEST(NamespaceSetTest, UnknownNamespaceListsTheDeclaredOnes) {
  config::Config c;
  c.namespaces = {{"users", absl::ZeroDuration(), 0}, {"default", absl::ZeroDuration(), 0}};
  NamespaceSet set(c);
  absl::Status s = set.Find("user").status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("[default, users]"));
}

}  // namespace
}  // namespace cachecar::service
