// Unit tests of the C++ client's retry policy (src/retry.h): which failures
// are sent again, which writes are reported as outcome unknown, the backoff.
#include "retry.h"

#include <gtest/gtest.h>

namespace cachecar::client::internal {
namespace {

using grpc::StatusCode;

struct Case {
  CallKind kind;
  StatusCode code;
  const char* message;
  bool sent, opt_in, retry, unknown;
};

void ExpectVerdicts(std::initializer_list<Case> cases) {
  for (const Case& c : cases) {
    Verdict v = Classify(c.kind, c.code, c.message, c.sent, c.opt_in);
    EXPECT_EQ(v.retry, c.retry) << c.message;
    EXPECT_EQ(v.outcome_unknown, c.unknown) << c.message;
  }
}

TEST(ClassifyTest, ReadsRetryUnavailableOnly) {
  ExpectVerdicts({
      Case{CallKind::kRead, StatusCode::UNAVAILABLE, "Socket closed", true, false, true, false},
      Case{CallKind::kRead, StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded", true, false, false,
           false},
      Case{CallKind::kRead, StatusCode::ABORTED, "precondition failed", true, false, false, false},
  });
}

TEST(ClassifyTest, WritesAreRetriedOnlyWhenTheyCannotHaveRun) {
  ExpectVerdicts({
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE,
           "write outcome unknown (it may have committed): PostgreSQL connection lost", true, false,
           false, true},
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE,
           "write outcome unknown (it may have committed): x", true, true, true, true},
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE,
           "failed to connect to all addresses; last error: UNKNOWN: ipv4:127.0.0.1:1: Failed "
           "to connect to remote host: Connection refused",
           true, false, true, false},
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE, "Socket closed", true, false, false, true},
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE, "GOAWAY received", true, false, false, true},
      Case{CallKind::kWrite, StatusCode::UNAVAILABLE,
           "cachecar cannot take more store work now (worker queue full, or shutting down)", true,
           false, true, false},
      Case{CallKind::kWrite, StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded", true, false, false,
           true},
      Case{CallKind::kWrite, StatusCode::DEADLINE_EXCEEDED, "Deadline Exceeded", false, false,
           false, false},
      Case{CallKind::kWrite, StatusCode::INVALID_ARGUMENT, "key is empty", true, false, false,
           false},
  });
}

TEST(BackoffTest, DoublesToTheCapWithBoundedJitter) {
  RetryPolicy p;
  const std::pair<int, int64_t> want_us[] = {
      {2, 25000}, {3, 50000}, {4, 100000}, {8, 1000000}, {30, 1000000}};
  for (auto [attempt, us] : want_us) {
    EXPECT_EQ(Backoff(p, attempt, 0.5).count(), us) << attempt;
    EXPECT_GE(Backoff(p, attempt, 0.0).count(), us * 8 / 10 - 1) << attempt;
    EXPECT_LE(Backoff(p, attempt, 0.999999).count(), us * 12 / 10) << attempt;
  }
}

}  // namespace
}  // namespace cachecar::client::internal
