// RateLimitedLog: logs at most one warning per `every` for one kind of
// event, with the count of those events since the last line, so a flood
// (evictions, refused connections) cannot flood the log. Used by the HTTP
// server and the gRPC connection gate.
//
// Thread-safety: none; one per thread (each loop owns its own).
#ifndef CACHECAR_COMMON_RATE_LIMITED_LOG_H_
#define CACHECAR_COMMON_RATE_LIMITED_LOG_H_

#include <cstdint>
#include <string>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "spdlog/spdlog.h"

namespace cachecar {

class RateLimitedLog {
 public:
  explicit RateLimitedLog(absl::Duration every) : every_(every) {}
  void Warn(const std::string& message) {
    ++count_;
    const absl::Time now = absl::Now();
    if (now - last_ < every_) return;
    last_ = now;
    spdlog::warn("{} ({} times since the last such line)", message, count_);
    count_ = 0;
  }

 private:
  const absl::Duration every_;
  absl::Time last_ = absl::InfinitePast();
  uint64_t count_ = 0;
};

}  // namespace cachecar

#endif  // CACHECAR_COMMON_RATE_LIMITED_LOG_H_
