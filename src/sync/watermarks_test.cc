// WatermarkTracker: a replica vouches only for what one relay's watermarks
// cover in every partition (its own and the ones the relay names); the
// best relay wins; restarted partitions forget; relays are counted.
#include "sync/watermarks.h"

#include "gtest/gtest.h"

namespace cachecar::sync {
namespace {

const absl::Time kT0 = absl::FromUnixSeconds(1'700'000'000);

Watermark W(const std::string& relay, absl::Duration at, int32_t partitions = 3) {
  return Watermark{relay, kT0 + at, partitions};
}

TEST(WatermarkTrackerTest, NothingIsVouchedForUntilEveryPartitionHasAWatermark) {
  WatermarkTracker t;
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast());
  t.SetPartitions({0, 1, 2}, {0, 1, 2});
  t.OnWatermark(0, W("a", absl::Seconds(1)), kT0);
  t.OnWatermark(1, W("a", absl::Seconds(1)), kT0);
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast()) << "partition 2 has none yet";
  t.OnWatermark(2, W("a", absl::Seconds(1)), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(1));
}

TEST(WatermarkTrackerTest, TheOldestPartitionDecides) {
  WatermarkTracker t;
  t.SetPartitions({0, 1}, {0, 1});
  t.OnWatermark(0, W("a", absl::Seconds(5), 2), kT0);
  t.OnWatermark(1, W("a", absl::Seconds(2), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(2));
  t.OnWatermark(1, W("a", absl::Seconds(6), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(5));
  // A late, older watermark does not move it back.
  t.OnWatermark(0, W("a", absl::Seconds(1), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(5));
}

TEST(WatermarkTrackerTest, RelaysAreNeverMixedAndTheBestOneWins) {
  WatermarkTracker t;
  t.SetPartitions({0, 1}, {0, 1});
  // a covers partition 0 only, b partition 1 only: together they would
  // claim t=9, but neither relay's own watermarks cover both partitions.
  t.OnWatermark(0, W("a", absl::Seconds(9), 2), kT0);
  t.OnWatermark(1, W("b", absl::Seconds(9), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast());
  t.OnWatermark(1, W("a", absl::Seconds(3), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(3));
  t.OnWatermark(0, W("b", absl::Seconds(7), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(7)) << "b covers both partitions up to 7";
}

TEST(WatermarkTrackerTest, PartitionsARelayNamesThatThisReplicaDoesNotReadBlockIt) {
  WatermarkTracker t;
  t.SetPartitions({0, 1}, {0, 1});
  t.OnWatermark(0, W("a", absl::Seconds(4), 4), kT0);
  t.OnWatermark(1, W("a", absl::Seconds(4), 4), kT0);
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast()) << "partitions 2 and 3 exist";
  EXPECT_EQ(t.announced_partitions(), 4);
  t.SetPartitions({0, 1, 2, 3}, {2, 3});
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast()) << "no watermark read there yet";
  t.OnWatermark(2, W("a", absl::Seconds(5), 4), kT0);
  t.OnWatermark(3, W("a", absl::Seconds(5), 4), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(4));
}

TEST(WatermarkTrackerTest, ARestartedPartitionForgetsItsWatermarks) {
  WatermarkTracker t;
  t.SetPartitions({0, 1}, {0, 1});
  t.OnWatermark(0, W("a", absl::Seconds(4), 2), kT0);
  t.OnWatermark(1, W("a", absl::Seconds(4), 2), kT0);
  ASSERT_EQ(t.applied_as_of(), kT0 + absl::Seconds(4));
  t.SetPartitions({0, 1}, {1});  // its events were lost; it restarts at its end
  EXPECT_EQ(t.applied_as_of(), absl::InfinitePast());
  t.OnWatermark(1, W("a", absl::Seconds(6), 2), kT0);
  EXPECT_EQ(t.applied_as_of(), kT0 + absl::Seconds(4));
}

TEST(WatermarkTrackerTest, CountsRelaysSeenLatelyAndForgetsSilentOnes) {
  WatermarkTracker t;
  t.SetPartitions({0}, {0});
  t.OnWatermark(0, W("a", absl::Seconds(1), 1), kT0);
  t.OnWatermark(0, W("b", absl::Seconds(1), 1), kT0 + absl::Seconds(10));
  EXPECT_EQ(t.RelaysSeenSince(kT0 + absl::Seconds(5)), 1);
  EXPECT_EQ(t.RelaysSeenSince(kT0), 2);
  EXPECT_EQ(t.RelaysSeenSince(kT0, "b"), 1) << "itself excluded";
  t.OnWatermark(0, W("b", absl::Seconds(2), 1), kT0 + WatermarkTracker::kForgetAfter * 2);
  EXPECT_EQ(t.Relays().size(), 1u) << "a is forgotten";
}

}  // namespace
}  // namespace cachecar::sync
