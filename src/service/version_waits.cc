// See version_waits.h.
#include "service/version_waits.h"

#include <algorithm>
#include <vector>

namespace cachecar::service {

VersionWaits::VersionWaits() : timer_([this] { TimerLoop(); }) {}

VersionWaits::~VersionWaits() { Shutdown(); }

void VersionWaits::Shutdown() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    changed_.SignalAll();
  }
  timer_.join();
  std::vector<Done> left;
  {
    MutexLock lock(&mu_);
    for (auto& [id, w] : waiters_) left.push_back(std::move(w.done));
    waiters_.clear();
    by_key_.clear();
    by_deadline_.clear();
  }
  for (Done& d : left) d(false);
}

VersionWaits::Done VersionWaits::Take(Id id) {
  auto it = waiters_.find(id);
  if (it == waiters_.end()) return nullptr;
  Done done = std::move(it->second.done);
  auto key_it = by_key_.find(std::make_pair(it->second.ns, it->second.key));
  if (key_it != by_key_.end()) {
    std::vector<Id>& ids = key_it->second;
    ids.erase(std::remove(ids.begin(), ids.end(), id), ids.end());
    if (ids.empty()) by_key_.erase(key_it);
  }
  for (auto d = by_deadline_.lower_bound(it->second.until);
       d != by_deadline_.end() && d->first == it->second.until; ++d) {
    if (d->second == id) {
      by_deadline_.erase(d);
      break;
    }
  }
  waiters_.erase(it);
  return done;
}

void VersionWaits::Wait(absl::string_view ns, absl::string_view key, uint64_t min_version,
                        absl::Time until, const std::function<bool()>& recheck, Done done) {
  Id id;
  {
    MutexLock lock(&mu_);
    if (stopping_) {
      done(false);
      return;
    }
    id = next_id_++;
    waiters_.emplace(
        id, Waiter{std::string(ns), std::string(key), min_version, until, std::move(done)});
    by_key_[std::make_pair(std::string(ns), std::string(key))].push_back(id);
    const bool earliest = by_deadline_.empty() || until < by_deadline_.begin()->first;
    by_deadline_.emplace(until, id);
    if (earliest) changed_.SignalAll();
  }
  if (recheck && recheck()) {
    Done mine;
    {
      MutexLock lock(&mu_);
      mine = Take(id);
    }
    if (mine) mine(true);  // else a Notify or the timer already ended it
  }
}

void VersionWaits::Notify(absl::string_view ns, absl::string_view key, uint64_t version) {
  std::vector<Done> ready;
  {
    MutexLock lock(&mu_);
    if (by_key_.empty()) return;
    auto it = by_key_.find(std::make_pair(std::string(ns), std::string(key)));
    if (it == by_key_.end()) return;
    std::vector<Id> ids = it->second;
    for (Id id : ids) {
      auto w = waiters_.find(id);
      if (w != waiters_.end() && w->second.min_version <= version) ready.push_back(Take(id));
    }
  }
  for (Done& d : ready) d(true);
}

void VersionWaits::NotifyFlush(absl::string_view ns) {
  std::vector<Done> ended;
  {
    MutexLock lock(&mu_);
    std::vector<Id> ids;
    for (const auto& [id, w] : waiters_) {
      if (ns.empty() || w.ns == ns) ids.push_back(id);
    }
    for (Id id : ids) ended.push_back(Take(id));
  }
  for (Done& d : ended) d(false);
}

size_t VersionWaits::waiting() const {
  MutexLock lock(&mu_);
  return waiters_.size();
}

void VersionWaits::TimerLoop() {
  for (;;) {
    std::vector<Done> expired;
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = absl::Now();
      while (!by_deadline_.empty() && by_deadline_.begin()->first <= now) {
        expired.push_back(Take(by_deadline_.begin()->second));
      }
      if (expired.empty()) {
        if (by_deadline_.empty()) {
          changed_.Wait(&mu_);
        } else {
          changed_.WaitUntil(&mu_, absl::ToChronoTime(by_deadline_.begin()->first));
        }
        continue;
      }
    }
    for (Done& d : expired) {
      if (d) d(false);
    }
  }
}

}  // namespace cachecar::service
