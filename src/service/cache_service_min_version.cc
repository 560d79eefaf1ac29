// See cache_service.h: min-version reads (GetRequest.min_version), which
// wait for the key's event up to min_version_wait, then read the store.
#include <algorithm>
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "service/cache_service.h"
#include "service/cache_service_internal.h"
#include "service/min_version_batch.h"
#include "service/version_waits.h"

namespace cachecar::service {

using cache_service_internal::KeysBytes;
using cache_service_internal::NotCached;
using cache_service_internal::Overloaded;

void CacheService::AwaitVersion(Namespace& ns, const std::string& key, uint64_t min_version,
                                Consistency consistency, absl::Time deadline,
                                const ReadDone& done) {
  auto cached = [&ns, key, min_version]() -> std::optional<ReadResult> {
    std::optional<ReadResult> r = FromLookup(ns.engine->Peek(key));
    if (r.has_value() && r->version >= min_version) return r;
    return std::nullopt;
  };
  const absl::Time now = absl::Now();
  const absl::Duration left = deadline - now;
  // Leave the store read some of the call's time.
  const absl::Duration wait =
      std::min(limits_.min_version_wait, left - std::min(left / 2, absl::Milliseconds(200)));
  auto after_wait = [this, &ns, key, min_version, consistency, deadline, done,
                     cached](bool reached) {
    if (reached) {
      if (std::optional<ReadResult> r = cached()) {
        min_from_cache_.fetch_add(1, std::memory_order_relaxed);
        return done(std::move(*r));
      }
    }
    if (consistency == Consistency::kCacheOnly) return done(NotCached());
    ReadAtLeast(ns, key, min_version, deadline, done);
  };
  if (hooks_.waits == nullptr || wait <= absl::ZeroDuration()) return after_wait(false);
  hooks_.waits->Wait(
      ns.name, key, min_version, now + wait, [cached] { return cached().has_value(); },
      std::move(after_wait));
}

void CacheService::ReadAtLeast(Namespace& ns, const std::string& key, uint64_t min_version,
                               absl::Time deadline, const ReadDone& done) {
  min_read_through_.fetch_add(1, std::memory_order_relaxed);
  if (!pool_.TrySubmit([this, &ns, key, min_version, deadline, done] {
        absl::StatusOr<std::vector<ReadResult>> r = LoadKeys(ns, {key}, deadline, false);
        if (!r.ok()) return done(r.status());
        ReadResult& answer = (*r)[0];
        if (answer.version < min_version) {
          min_out_of_range_.fetch_add(1, std::memory_order_relaxed);
          return done(absl::OutOfRangeError(absl::StrCat(
              "key '", key, "' is at version ", answer.version, " in the store, below min_version ",
              min_version, ": pass a version that a write or read of this key returned")));
        }
        done(std::move(answer));
      })) {
    done(Overloaded());
  }
}

MinVersionStats CacheService::min_version_stats() const {
  return MinVersionStats{min_from_cache_.load(std::memory_order_relaxed),
                         min_read_through_.load(std::memory_order_relaxed),
                         min_out_of_range_.load(std::memory_order_relaxed)};
}

void CacheService::BatchGetAtLeast(absl::string_view ns_name, std::vector<std::string> keys,
                                   Consistency consistency, absl::Time deadline, BatchDone done,
                                   std::vector<uint64_t> min_versions) {
  Namespace& ns = **namespaces_.Find(ns_name);  // BatchGet found it
  const bool trusted = hooks_.replication == nullptr || hooks_.replication->CacheTrusted();
  if (!trusted && consistency != Consistency::kCacheOnly) {
    bypassed_reads_.fetch_add(
        std::count_if(min_versions.begin(), min_versions.end(), [](uint64_t v) { return v > 0; }),
        std::memory_order_relaxed);
  }
  MinVersionBatch batch;
  batch.ns = &ns;
  batch.waits = hooks_.waits;
  batch.pool = &pool_;
  batch.load = [this, &ns](const std::vector<std::string>& unique, absl::Time until) {
    return LoadKeys(ns, unique, until, false);
  };
  batch.min_version_wait = limits_.min_version_wait;
  batch.max_response_bytes = limits_.max_response_bytes;
  batch.framing_bytes = KeysBytes(keys);
  batch.too_large = cache_service_internal::AnswerTooLarge(limits_.max_response_bytes);
  batch.overloaded = cache_service_internal::Overloaded();
  batch.from_cache = &min_from_cache_;
  batch.read_through = &min_read_through_;
  batch.out_of_range = &min_out_of_range_;
  batch.Run(std::move(keys), std::move(min_versions), consistency, trusted, deadline,
            std::move(done));
}

}  // namespace cachecar::service
