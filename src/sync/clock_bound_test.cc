// ClockBound: the store's clock read through round trips, as the earliest
// local time it can correspond to, whatever the skew; the tightest sample
// wins; drift loosens the bound with time.
#include "sync/clock_bound.h"

#include "gtest/gtest.h"

namespace cachecar::sync {
namespace {

const absl::Time kLocal = absl::FromUnixSeconds(1'700'000'000);

TEST(ClockBoundTest, NothingBeforeTheFirstSample) {
  ClockBound b;
  EXPECT_FALSE(b.calibrated());
  EXPECT_EQ(b.EarliestLocal(kLocal, kLocal), absl::InfinitePast());
  EXPECT_EQ(b.Uncertainty(kLocal), absl::InfiniteDuration());
}

// Whatever the skew, a store time T maps to a local time no later than the
// local time at which the store's clock really showed T.
TEST(ClockBoundTest, IsConservativeForAnySkew) {
  for (absl::Duration skew : {absl::Seconds(-30), absl::Milliseconds(-5), absl::ZeroDuration(),
                              absl::Milliseconds(7), absl::Hours(2)}) {
    ClockBound b;
    // The store's clock = local + skew. A 2 ms round trip, answered 0.5 ms
    // after sending.
    const absl::Time sent = kLocal;
    b.OnSample(sent, sent + absl::Microseconds(500) + skew, sent + absl::Milliseconds(2));
    const absl::Time now = kLocal + absl::Seconds(3);
    const absl::Time store_time = now - absl::Seconds(1) + skew;  // shown 1 s ago, locally
    const absl::Time earliest = b.EarliestLocal(store_time, now);
    EXPECT_LE(earliest, now - absl::Seconds(1)) << skew;
    EXPECT_GE(earliest, now - absl::Seconds(1) - absl::Milliseconds(3)) << skew << ": too loose";
  }
}

TEST(ClockBoundTest, TheTightestSampleWinsAndDriftLoosensIt) {
  ClockBound b;
  b.OnSample(kLocal, kLocal + absl::Milliseconds(40), kLocal + absl::Milliseconds(80));
  EXPECT_EQ(b.Uncertainty(kLocal + absl::Milliseconds(80)),
            absl::Milliseconds(80) + absl::Microseconds(40));
  const absl::Time later = kLocal + absl::Seconds(10);
  b.OnSample(later, later + absl::Microseconds(100), later + absl::Microseconds(200));
  EXPECT_LT(b.Uncertainty(later), absl::Milliseconds(1));
  // A sloppy sample after it does not replace it.
  b.OnSample(later + absl::Seconds(1), later + absl::Seconds(1) + absl::Milliseconds(50),
             later + absl::Seconds(1) + absl::Milliseconds(100));
  EXPECT_LT(b.Uncertainty(later + absl::Seconds(1)), absl::Milliseconds(2));
  // 1000 s later the bound is looser by the drift allowance (500 ppm).
  const absl::Duration u = b.Uncertainty(later + absl::Seconds(1000));
  EXPECT_GE(u, absl::Milliseconds(500));
  EXPECT_LT(u, absl::Milliseconds(502));
}

TEST(ClockBoundTest, ALocalClockThatSteppedBackDuringASampleIsIgnored) {
  ClockBound b;
  b.OnSample(kLocal, kLocal, kLocal - absl::Seconds(1));
  EXPECT_FALSE(b.calibrated());
}

TEST(ClockSamplerTest, SamplesUntilStoppedAndToleratesFailures) {
  ClockBound b;
  std::atomic<int> calls{0};
  {
    ClockSampler sampler(
        [&calls]() -> absl::StatusOr<absl::Time> {
          if (calls.fetch_add(1) == 0) return absl::UnavailableError("down");
          return absl::Now();
        },
        b, absl::Milliseconds(10));
    for (int i = 0; i < 300 && !b.calibrated(); ++i) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(b.calibrated());
  EXPECT_GE(calls.load(), 2);
}

}  // namespace
}  // namespace cachecar::sync
