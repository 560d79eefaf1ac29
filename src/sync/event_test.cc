// The sync topic's wire format: round trips, and what DecodeEvent refuses.
#include "sync/event.h"

#include "cachecar/v1/sync.pb.h"
#include "gtest/gtest.h"

namespace cachecar::sync {
namespace {

TEST(EventTest, RoundTripsEveryField) {
  Event e;
  e.ns = "users";
  e.key = "user:42";
  e.version = 981;
  e.op = Op::kUpsert;
  e.value = std::string("v\0x", 3);
  e.origin = "replica-a";
  e.committed = absl::FromUnixMicros(1700000000123456);
  absl::StatusOr<Event> back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->ns, "users");
  EXPECT_EQ(back->key, "user:42");
  EXPECT_EQ(back->version, 981u);
  EXPECT_EQ(back->op, Op::kUpsert);
  ASSERT_TRUE(back->value.has_value());
  EXPECT_EQ(*back->value, std::string("v\0x", 3));
  EXPECT_EQ(back->origin, "replica-a");
  EXPECT_EQ(back->committed, e.committed);
}

// A Put's ttl travels on its event (#15); events of older cachecars (no
// ttl_ms field) still decode, without a ttl.
TEST(EventTest, TtlRoundTripsAndOldEventsDecodeWithout) {
  Event e{"ns", "k", 5, Op::kUpsert, std::string("v"), "a", absl::InfinitePast()};
  e.ttl = absl::Milliseconds(1500);
  absl::StatusOr<Event> back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok()) << back.status();
  ASSERT_TRUE(back->ttl.has_value());
  EXPECT_EQ(*back->ttl, absl::Milliseconds(1500));
  e.ttl = absl::Microseconds(10);  // rounds up, never to "none"
  back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok() && back->ttl.has_value());
  EXPECT_EQ(*back->ttl, absl::Milliseconds(1));

  // What an older cachecar wrote: fields 1-8 only.
  cachecar::v1::SyncEvent old;
  old.set_namespace_("ns");
  old.set_key("k");
  old.set_version(5);
  old.set_op(cachecar::v1::SYNC_OP_UPSERT);
  old.set_value("v");
  old.set_origin("old-replica");
  back = DecodeEvent(old.SerializeAsString());
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_FALSE(back->ttl.has_value());
  EXPECT_EQ(*back->value, "v");

  cachecar::v1::SyncEvent del = old;
  del.clear_value();
  del.set_op(cachecar::v1::SYNC_OP_DELETE);
  del.set_ttl_ms(100);
  EXPECT_EQ(DecodeEvent(del.SerializeAsString()).status().code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(EventTest, UpsertWithoutValueStaysWithoutValue) {
  Event e{"ns", "k", 5, Op::kUpsert, std::nullopt, "a", absl::InfinitePast()};
  absl::StatusOr<Event> back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok());
  EXPECT_FALSE(back->value.has_value());
  EXPECT_EQ(back->committed, absl::InfinitePast());
}

TEST(EventTest, FlushWithEmptyNamespaceMeansAll) {
  Event e{"", "", 77, Op::kFlush, std::nullopt, "relay/a", absl::InfinitePast()};
  absl::StatusOr<Event> back = DecodeEvent(EncodeEvent(e));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->op, Op::kFlush);
  EXPECT_EQ(back->ns, "");
}

TEST(EventTest, MessageKeyIsNamespaceNulKey) {
  EXPECT_EQ(MessageKey("ns", "k"), std::string("ns\0k", 4));
  EXPECT_EQ(MessageKey("ns", ""), std::string("ns\0", 3));
}

TEST(EventTest, RefusesGarbage) {
  absl::StatusOr<Event> e = DecodeEvent("this is not a cachecar event \xff\xff\xff");
  ASSERT_FALSE(e.ok());
  EXPECT_EQ(e.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(EventTest, RefusesEventsThatBreakTheRules) {
  auto encode = [](auto fill) {
    cachecar::v1::SyncEvent pb;
    pb.set_namespace_("ns");
    pb.set_key("k");
    pb.set_version(3);
    pb.set_op(cachecar::v1::SYNC_OP_UPSERT);
    fill(pb);
    return pb.SerializeAsString();
  };
  EXPECT_FALSE(
      DecodeEvent(encode([](auto& pb) { pb.set_op(cachecar::v1::SYNC_OP_UNSPECIFIED); })).ok());
  EXPECT_FALSE(DecodeEvent(encode([](auto& pb) { pb.set_version(0); })).ok());
  EXPECT_FALSE(DecodeEvent(encode([](auto& pb) {
                 pb.set_op(cachecar::v1::SYNC_OP_DELETE);
                 pb.set_value("x");
               })).ok());
  EXPECT_FALSE(DecodeEvent(encode([](auto& pb) { pb.set_op(cachecar::v1::SYNC_OP_FLUSH); })).ok());
  EXPECT_FALSE(DecodeEvent(encode([](auto& pb) { pb.set_key(""); })).ok());
  // Unversioned INVALIDATE is allowed (a broadcast).
  EXPECT_TRUE(DecodeEvent(encode([](auto& pb) {
                pb.set_op(cachecar::v1::SYNC_OP_INVALIDATE);
                pb.set_version(0);
              })).ok());
}

}  // namespace
}  // namespace cachecar::sync
