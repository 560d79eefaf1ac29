// See retry.h.
#include "retry.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace cachecar::client::internal {
namespace {

// gRPC's own words (C-core: C++ and Python; grpc-go), lower case.
constexpr const char* kNeverConnected[] = {
    "failed to connect to all addresses",
    "error while dialing",
    "connection refused",
    "dns resolution failed",
    "name resolution failure",
    "no addresses",
    "empty address list",
};
constexpr const char* kConnectionBroke[] = {
    "socket closed",
    "connection reset",
    "broken pipe",
    "goaway",
    "stream removed",
    "transport is closing",
    "error reading from",
    "eof",
    "connection closed",
    "rst_stream",
    "keepalive",
    "transport closed",
    "connection aborted",
    "cancelling all calls",
    "fd shutdown",
    "endpoint closing",
    "connection is draining",
    "connection was closed",
};
constexpr const char kOutcomeUnknown[] = "write outcome unknown";

std::string Lower(const std::string& s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

template <size_t N>
bool ContainsAny(const std::string& lower, const char* const (&needles)[N]) {
  for (const char* n : needles) {
    if (lower.find(n) != std::string::npos) return true;
  }
  return false;
}

}  // namespace

bool NeverConnected(const std::string& message) {
  return ContainsAny(Lower(message), kNeverConnected);
}

bool ConnectionBroke(const std::string& message) {
  return ContainsAny(Lower(message), kConnectionBroke);
}

Verdict Classify(CallKind kind, grpc::StatusCode code, const std::string& message, bool sent,
                 bool retry_outcome_unknown) {
  Verdict v;
  if (kind == CallKind::kRead) {
    v.retry = code == grpc::StatusCode::UNAVAILABLE;
    return v;
  }
  switch (code) {
    case grpc::StatusCode::UNAVAILABLE:
      if (Lower(message).find(kOutcomeUnknown) != std::string::npos) {
        v.outcome_unknown = true;  // cachecar says so
      } else if (NeverConnected(message)) {
        v.outcome_unknown = false;  // never left this process
      } else {
        // Broken mid-call: unknown. Anything else is cachecar refusing the
        // write before running it (store unreachable, queue full, draining).
        v.outcome_unknown = ConnectionBroke(message);
      }
      v.retry = !v.outcome_unknown || retry_outcome_unknown;
      return v;
    case grpc::StatusCode::DEADLINE_EXCEEDED:
    case grpc::StatusCode::CANCELLED:
      // Sent and not answered: it may have run. Not retried: the deadline
      // is spent, or the caller cancelled.
      v.outcome_unknown = sent;
      return v;
    default:
      return v;  // cachecar's answer: nothing was written
  }
}

std::chrono::microseconds Backoff(const RetryPolicy& policy, int attempt, double unit) {
  double base = static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(policy.initial_backoff).count());
  double cap = static_cast<double>(
      std::chrono::duration_cast<std::chrono::microseconds>(policy.max_backoff).count());
  double wait = std::min(cap, base * std::pow(policy.multiplier, std::max(0, attempt - 2)));
  wait *= 1.0 + policy.jitter * (2.0 * unit - 1.0);
  return std::chrono::microseconds(static_cast<int64_t>(std::max(0.0, wait)));
}

}  // namespace cachecar::client::internal
