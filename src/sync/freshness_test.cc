// FreshnessTracker: when a replica may say it has applied everything the
// topic held at time T.
#include "sync/freshness.h"

#include <thread>

#include "gtest/gtest.h"

namespace cachecar::sync {
namespace {

const absl::Time t0 = absl::FromUnixSeconds(1000);

TEST(FreshnessTest, NothingTrackedIsNeverFresh) {
  FreshnessTracker t;
  EXPECT_EQ(t.fresh_as_of(), absl::InfinitePast());
}

TEST(FreshnessTest, StartsFreshAsOfPositioning) {
  FreshnessTracker t;
  t.AddPartition(0, 10, t0);
  t.AddPartition(1, 4, t0 + absl::Seconds(1));
  EXPECT_EQ(t.fresh_as_of(), t0);
}

TEST(FreshnessTest, ProbeAtPositionAdvancesAtOnce) {
  FreshnessTracker t;
  t.AddPartition(0, 10, t0);
  t.OnProbe(0, 10, t0 + absl::Seconds(5));
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(5));
}

TEST(FreshnessTest, ProbeAheadWaitsForTheConsumer) {
  FreshnessTracker t;
  t.AddPartition(0, 10, t0);
  t.OnProbe(0, 15, t0 + absl::Seconds(1));
  t.OnProbe(0, 20, t0 + absl::Seconds(2));
  EXPECT_EQ(t.fresh_as_of(), t0);
  t.OnPosition(0, 14);
  EXPECT_EQ(t.fresh_as_of(), t0);
  t.OnPosition(0, 15);
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(1));
  t.OnPosition(0, 25);
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(2));
}

TEST(FreshnessTest, TheSlowestPartitionDecides) {
  FreshnessTracker t;
  t.AddPartition(0, 0, t0);
  t.AddPartition(1, 0, t0);
  t.OnProbe(0, 0, t0 + absl::Seconds(3));
  t.OnProbe(1, 7, t0 + absl::Seconds(3));
  EXPECT_EQ(t.fresh_as_of(), t0);
  t.OnPosition(1, 7);
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(3));
  EXPECT_EQ(t.Partitions()[1].lag(), 0);
}

TEST(FreshnessTest, FailedProbesMeanNoProgress) {
  // A broker that stops answering: no probes, so the time stands still
  // however far the consumer got.
  FreshnessTracker t;
  t.AddPartition(0, 0, t0);
  t.OnPosition(0, 100);
  EXPECT_EQ(t.fresh_as_of(), t0);
}

TEST(FreshnessTest, PendingProbesAreBounded) {
  FreshnessTracker t;
  t.AddPartition(0, 0, t0);
  for (int i = 1; i <= 200; ++i) t.OnProbe(0, i, t0 + absl::Seconds(i));
  t.OnPosition(0, 200);
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(200));
  EXPECT_EQ(t.Partitions()[0].lag(), 0);
}

TEST(FreshnessTest, LagIsHighWatermarkMinusPosition) {
  FreshnessTracker t;
  t.AddPartition(3, 5, t0);
  t.OnProbe(3, 12, t0 + absl::Seconds(1));
  ASSERT_EQ(t.Partitions().size(), 1u);
  EXPECT_EQ(t.Partitions()[0].partition, 3);
  EXPECT_EQ(t.Partitions()[0].lag(), 7);
}

TEST(FreshnessTest, ConcurrentProbesAndPositionsEndConsistent) {
  FreshnessTracker t;
  t.AddPartition(0, 0, t0);
  std::thread consumer([&t] {
    for (int i = 1; i <= 2000; ++i) t.OnPosition(0, i);
  });
  std::thread prober([&t] {
    for (int i = 1; i <= 2000; ++i) t.OnProbe(0, i, t0 + absl::Milliseconds(i));
  });
  consumer.join();
  prober.join();
  // Every probe's watermark (<= 2000) is reached by the final position.
  t.OnProbe(0, 2000, t0 + absl::Seconds(10));
  EXPECT_EQ(t.fresh_as_of(), t0 + absl::Seconds(10));
}

}  // namespace
}  // namespace cachecar::sync
