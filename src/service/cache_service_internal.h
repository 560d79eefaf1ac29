// Helpers the files of CacheService share (cache_service.cc: the read
// path; cache_service_min_version.cc: min-version reads;
// cache_service_write.cc: the write path): common errors, a BatchGet's
// size accounting and the state that collects its answers. Not for use
// outside CacheService.
//
// Thread-safety: the functions are pure; BatchState locks its own mutex.
#ifndef CACHECAR_SERVICE_CACHE_SERVICE_INTERNAL_H_
#define CACHECAR_SERVICE_CACHE_SERVICE_INTERNAL_H_

#include <atomic>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "service/cache_service.h"

namespace cachecar::service::cache_service_internal {

// A load overtaken by newer writes this many times in a row gives up with
// UNAVAILABLE rather than answer with a value it knows is old.
constexpr int kMaxLoadAttempts = 5;

inline absl::Status Overloaded() {
  return absl::UnavailableError(
      "cachecar cannot take more store work now (worker queue full, or "
      "shutting down); retry with backoff, or raise `workers`/`worker_queue`");
}

// A CACHE_ONLY read the cache cannot answer.
inline ReadResult NotCached() { return ReadResult{false, {}, 0, ReadResult::Source::kNone}; }

inline ReadResult FromRecord(const store::Record& record) {
  return ReadResult{record.found, record.value, record.version, ReadResult::Source::kStore};
}

// Answers a read unless its caller's deadline already passed.
inline absl::StatusOr<ReadResult> WithinDeadline(const absl::StatusOr<ReadResult>& result,
                                                 absl::Time deadline) {
  if (absl::Now() > deadline) {
    return absl::DeadlineExceededError("deadline passed while the key was loading");
  }
  return result;
}

inline absl::Status AnswerTooLarge(uint64_t limit) {
  return absl::ResourceExhaustedError(
      absl::StrCat("the BatchGet answer would exceed ", limit,
                   " bytes (max_message_bytes): ask for fewer keys per call"));
}

// What one BatchGet entry adds to the answer beyond its value, at most: the
// key, and protobuf's framing (the entry's tag and length, each field's tag,
// the key's and value's lengths, found, version and source). Counting only
// values let an answer exceed max_message_bytes, which default clients
// then refuse (issue #17).
inline uint64_t EntryBytesBesidesValue(const std::string& key) {
  constexpr uint64_t kFraming = (1 + 5) + (1 + 5) + 2 + (1 + 5) + (1 + 10) + 2;
  return key.size() + kFraming;
}

inline uint64_t KeysBytes(const std::vector<std::string>& keys) {
  uint64_t bytes = 0;
  for (const std::string& k : keys) bytes += EntryBytesBesidesValue(k);
  return bytes;
}

// Collects a BatchGet's answers; the last one to arrive calls `done`. Stops
// copying values once the answer outgrows `max_bytes`; `framing` is what the
// keys and framing take before any value.
struct BatchState {
  BatchState(size_t n, uint64_t framing, uint64_t max_bytes, CacheService::BatchDone d)
      : results(n), bytes(framing), max_bytes(max_bytes), done(std::move(d)) {}
  Mutex mu;
  std::vector<ReadResult> results ABSL_GUARDED_BY(mu);
  uint64_t bytes ABSL_GUARDED_BY(mu);
  absl::Status error ABSL_GUARDED_BY(mu);
  const uint64_t max_bytes;
  std::atomic<size_t> pending{0};
  CacheService::BatchDone done;

  // Counts `more` bytes of values into the answer; false (and the error
  // set) once the answer is too large.
  bool Fits(uint64_t more) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    bytes += more;
    if (bytes <= max_bytes) return true;
    if (error.ok()) error = AnswerTooLarge(max_bytes);
    return false;
  }

  void Deliver(const std::vector<size_t>& indices, const absl::StatusOr<ReadResult>& result) {
    {
      MutexLock lock(&mu);
      if (!result.ok()) {
        if (error.ok()) error = result.status();
      } else if (error.ok() && Fits(result->value.size() * indices.size())) {
        for (size_t i : indices) results[i] = *result;
      }
    }
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish();
  }

  void Finish() {
    absl::StatusOr<std::vector<ReadResult>> out;
    {
      MutexLock lock(&mu);
      if (error.ok())
        out = std::move(results);
      else
        out = error;
    }
    done(std::move(out));
  }
};

}  // namespace cachecar::service::cache_service_internal

#endif  // CACHECAR_SERVICE_CACHE_SERVICE_INTERNAL_H_
