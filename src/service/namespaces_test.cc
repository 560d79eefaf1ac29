// NamespaceSet: byte budgets split by share, shard counts that leave room
// for large values, and lookups that name the declared namespaces.
#include "service/namespaces.h"

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
