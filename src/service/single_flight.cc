// See single_flight.h.
#include "service/single_flight.h"

#include "absl/hash/hash.h"

namespace cachecar::service {

SingleFlight::Shard& SingleFlight::ShardFor(absl::string_view ns, absl::string_view key) const {
  return shards_[absl::HashOf(ns, key) % kShards];
}

SingleFlight::Role SingleFlight::JoinOrLead(absl::string_view ns, absl::string_view key,
                                            absl::Time deadline, Waiter waiter,
                                            const Recheck& recheck,
                                            std::optional<ReadResult>* answer) {
  Shard& shard = ShardFor(ns, key);
  MutexLock lock(&shard.mu);
  auto it = shard.flights.find(FlightKey(ns, key));
  if (it != shard.flights.end()) {
    it->second.deadline = std::max(it->second.deadline, deadline);
    it->second.waiters.push_back(std::move(waiter));
    return Role::kJoined;
  }
  if (recheck) {
    *answer = recheck();
    if (answer->has_value()) return Role::kAnswered;
  }
  Flight& flight = shard.flights[FlightKey(ns, key)];
  flight.deadline = deadline;
  flight.waiters.push_back(std::move(waiter));
  return Role::kLeader;
}

absl::Time SingleFlight::Deadline(absl::string_view ns, absl::string_view key) const {
  Shard& shard = ShardFor(ns, key);
  MutexLock lock(&shard.mu);
  auto it = shard.flights.find(FlightKey(ns, key));
  return it == shard.flights.end() ? absl::InfinitePast() : it->second.deadline;
}

void SingleFlight::Land(absl::string_view ns, absl::string_view key,
                        const absl::StatusOr<ReadResult>& result) {
  std::vector<Waiter> waiters;
  {
    Shard& shard = ShardFor(ns, key);
    MutexLock lock(&shard.mu);
    auto it = shard.flights.find(FlightKey(ns, key));
    if (it == shard.flights.end()) return;
    waiters = std::move(it->second.waiters);
    shard.flights.erase(it);
  }
  for (Waiter& w : waiters) w(result);
}

bool SingleFlight::LandIf(absl::string_view ns, absl::string_view key,
                          const std::function<std::optional<ReadResult>()>& settle) {
  std::vector<Waiter> waiters;
  std::optional<ReadResult> answer;
  {
    Shard& shard = ShardFor(ns, key);
    MutexLock lock(&shard.mu);
    answer = settle();
    if (!answer.has_value()) return false;
    auto it = shard.flights.find(FlightKey(ns, key));
    if (it != shard.flights.end()) {
      waiters = std::move(it->second.waiters);
      shard.flights.erase(it);
    }
  }
  for (Waiter& w : waiters) w(*answer);
  return true;
}

size_t SingleFlight::InFlight() const {
  size_t n = 0;
  for (const Shard& shard : shards_) {
    MutexLock lock(&shard.mu);
    n += shard.flights.size();
  }
  return n;
}

}  // namespace cachecar::service
