// SingleFlight: at most one store load per (namespace, key) at a time. The
// first miss leads a flight and loads; later misses join it and are answered
// with the same result. Nothing here blocks: joiners leave a callback.
//
// The leader offers its result to the cache *before* it lands the flight, and
// a would-be leader re-checks the cache under the flight lock, so a miss that
// races with a landing finds the value instead of loading again.
//
// Thread-safety: all methods may be called concurrently. Callbacks are never
// run under the internal lock.
#ifndef CACHECAR_SERVICE_SINGLE_FLIGHT_H_
#define CACHECAR_SERVICE_SINGLE_FLIGHT_H_

#include <array>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "service/read_result.h"

namespace cachecar::service {

class SingleFlight {
 public:
  using Waiter = std::function<void(const absl::StatusOr<ReadResult>&)>;
  // Looks the key up in the cache again; nullopt on a miss.
  using Recheck = std::function<std::optional<ReadResult>()>;

  enum class Role {
    kJoined,    // a flight was under way; `waiter` will be called when it lands
    kAnswered,  // the recheck found the key; `*answer` holds it, waiter unused
    kLeader,    // a new flight; the caller must load, then Land()
  };

  // Joins the flight for (ns, key), or answers from `recheck`, or starts a
  // flight whose load should give up at `deadline` (joiners extend it).
  Role JoinOrLead(absl::string_view ns, absl::string_view key, absl::Time deadline, Waiter waiter,
                  const Recheck& recheck, std::optional<ReadResult>* answer);

  // The latest deadline among the flight's waiters (the load's own deadline).
  absl::Time Deadline(absl::string_view ns, absl::string_view key) const;

  // Ends the flight and calls every waiter with `result`.
  void Land(absl::string_view ns, absl::string_view key, const absl::StatusOr<ReadResult>& result);

  // Runs `settle` under the flight's lock; if it returns an answer, ends the
  // flight with it (waiters are called after the lock is released) and
  // returns true. Offering a load to the cache and landing its flight must
  // be one step: otherwise a Get that joins in between, after a newer write
  // returned, would be answered with the older value.
  bool LandIf(absl::string_view ns, absl::string_view key,
              const std::function<std::optional<ReadResult>()>& settle);

  // Flights under way (tests, metrics).
  size_t InFlight() const;

 private:
  struct Flight {
    absl::Time deadline;
    std::vector<Waiter> waiters;
  };
  using FlightKey = std::pair<std::string, std::string>;
  struct Shard {
    mutable Mutex mu;
    absl::flat_hash_map<FlightKey, Flight> flights ABSL_GUARDED_BY(mu);
  };
  static constexpr size_t kShards = 32;

  Shard& ShardFor(absl::string_view ns, absl::string_view key) const;

  mutable std::array<Shard, kShards> shards_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_SINGLE_FLIGHT_H_
