// See min_version_batch.h.
#include "service/min_version_batch.h"

#include <algorithm>
#include <memory>
#include <optional>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "service/cache_service.h"

namespace cachecar::service {
namespace {

void Count(std::atomic<uint64_t>* counter, uint64_t n = 1) {
  if (counter != nullptr && n > 0) counter->fetch_add(n, std::memory_order_relaxed);
}

// One batch in progress: the answers so far and the waits still open.
struct State : std::enable_shared_from_this<State> {
  MinVersionBatch batch;
  std::vector<std::string> keys;
  std::vector<uint64_t> min_versions;
  Consistency consistency = Consistency::kCached;
  bool trusted = true;  // the replica vouched for its cache when the batch began
  absl::Time deadline;
  MinVersionBatch::Done done;

  Mutex mu;
  std::vector<std::optional<ReadResult>> results ABSL_GUARDED_BY(mu);
  std::atomic<size_t> waiting{0};

  // The cached copy of key i, if it is new enough (no hit counted).
  std::optional<ReadResult> Cached(size_t i) const {
    std::optional<ReadResult> r = FromLookup(batch.ns->engine->Peek(keys[i]));
    if (r.has_value() && r->version >= min_versions[i]) return r;
    return std::nullopt;
  }

  // A wait ended; the last one settles the batch.
  void WaitEnded() {
    if (waiting.fetch_sub(1, std::memory_order_acq_rel) == 1) Settle();
  }

  // What the cache has now, then one store read for the rest.
  void Settle() {
    std::vector<size_t> behind;
    {
      MutexLock lock(&mu);
      for (size_t i = 0; i < keys.size(); ++i) {
        if (results[i].has_value()) continue;
        if (min_versions[i] > 0 && consistency != Consistency::kStrong && trusted) {
          if (std::optional<ReadResult> r = Cached(i)) {
            results[i] = std::move(r);
            Count(batch.from_cache);
            continue;
          }
        }
        behind.push_back(i);
      }
      if (consistency == Consistency::kCacheOnly) {
        for (size_t i : behind) results[i] = ReadResult{false, {}, 0, ReadResult::Source::kNone};
        behind.clear();
      }
    }
    if (behind.empty()) return Deliver();
    for (size_t i : behind) {
      if (min_versions[i] > 0) Count(batch.read_through);
    }
    ReadStore(std::move(behind));
  }

  // One batch read of the distinct keys at `positions`, on the pool.
  void ReadStore(std::vector<size_t> positions) {
    std::vector<std::string> unique;
    absl::flat_hash_map<std::string, size_t> index_of;
    std::vector<size_t> slot(positions.size());
    for (size_t j = 0; j < positions.size(); ++j) {
      auto [it, added] = index_of.try_emplace(keys[positions[j]], unique.size());
      if (added) unique.push_back(keys[positions[j]]);
      slot[j] = it->second;
    }
    auto self = shared_from_this();
    auto task = [self, positions = std::move(positions), slot = std::move(slot),
                 unique = std::move(unique)] {
      absl::StatusOr<std::vector<ReadResult>> read = self->batch.load(unique, self->deadline);
      if (!read.ok()) return self->done(read.status());
      absl::Status below;
      {
        MutexLock lock(&self->mu);
        for (size_t j = 0; j < positions.size() && below.ok(); ++j) {
          const size_t i = positions[j];
          const ReadResult& r = (*read)[slot[j]];
          if (r.version < self->min_versions[i]) {
            Count(self->batch.out_of_range);
            below = absl::OutOfRangeError(
                absl::StrCat("key '", self->keys[i], "' is at version ", r.version,
                             " in the store, below min_version ", self->min_versions[i],
                             ": pass a version that a write or read of this key returned"));
          } else {
            self->results[i] = r;
          }
        }
      }
      if (!below.ok()) return self->done(below);
      self->Deliver();
    };
    if (!batch.pool->TrySubmit(std::move(task))) done(batch.overloaded);
  }

  void Deliver() {
    std::vector<ReadResult> out;
    bool fits = true;
    {
      MutexLock lock(&mu);
      uint64_t bytes = batch.framing_bytes;
      out.reserve(keys.size());
      for (std::optional<ReadResult>& r : results) {
        bytes += r->value.size();
        out.push_back(std::move(*r));
      }
      fits = bytes <= batch.max_response_bytes;
    }
    if (!fits) return done(batch.too_large);
    done(std::move(out));
  }
};

}  // namespace

void MinVersionBatch::Run(std::vector<std::string> keys, std::vector<uint64_t> min_versions,
                          Consistency consistency, bool trusted, absl::Time deadline,
                          Done done) const {
  auto state = std::make_shared<State>();
  state->batch = *this;
  state->keys = std::move(keys);
  state->min_versions = std::move(min_versions);
  state->consistency = consistency;
  state->trusted = trusted;
  state->deadline = deadline;
  state->done = std::move(done);
  const size_t n = state->keys.size();
  std::vector<size_t> to_wait;
  {
    MutexLock lock(&state->mu);
    state->results.resize(n);
    // The cache answers what it has (new enough) at once, counted as reads.
    if (consistency != Consistency::kStrong && trusted) {
      for (size_t i = 0; i < n; ++i) {
        std::optional<ReadResult> r = FromLookup(ns->engine->Get(state->keys[i]));
        if (r.has_value() && r->version >= state->min_versions[i]) {
          if (state->min_versions[i] > 0) Count(from_cache);
          state->results[i] = std::move(r);
        } else if (state->min_versions[i] > 0) {
          to_wait.push_back(i);
        }
      }
    } else if (consistency == Consistency::kCacheOnly) {
      // Untrusted CACHE_ONLY: nothing may be answered, nothing read.
      for (size_t i = 0; i < n; ++i) {
        state->results[i] = ReadResult{false, {}, 0, ReadResult::Source::kNone};
      }
    }
  }
  // Leave the store read some of the call's time.
  const absl::Time now = absl::Now();
  const absl::Duration left = deadline - now;
  const absl::Duration wait =
      std::min(min_version_wait, left - std::min(left / 2, absl::Milliseconds(200)));
  if (to_wait.empty() || waits == nullptr || wait <= absl::ZeroDuration()) {
    return state->Settle();
  }
  // One more than the waits, released below: no wait that ends at once
  // (its recheck sees the version) settles the batch before all are open.
  state->waiting.store(to_wait.size() + 1, std::memory_order_release);
  for (size_t i : to_wait) {
    waits->Wait(
        ns->name, state->keys[i], state->min_versions[i], now + wait,
        [state, i] { return state->Cached(i).has_value(); }, [state](bool) { state->WaitEnded(); });
  }
  state->WaitEnded();
}

}  // namespace cachecar::service
