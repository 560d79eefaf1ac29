// VersionWaits: reads waiting for a key to reach a version (min-version
// reads, GetRequest.min_version). A read whose cached copy is older than the
// version it asks for registers here; the sync's consumer tells it of every
// key it applies an event for (Notify), and a timer thread ends waits whose
// time ran out. Each waiter's `done` is called exactly once: with true when
// an event at or above its version arrived (or `recheck` says the engine
// has it already), with false when its time ran out or a flush dropped the
// namespace (the caller then reads the store). `done` runs on the notifying
// thread (the consumer, a worker, or the timer) and must not block.
//
// Thread-safety: all methods may be called from any thread.
#ifndef CACHECAR_SERVICE_VERSION_WAITS_H_
#define CACHECAR_SERVICE_VERSION_WAITS_H_

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/mutex.h"

namespace cachecar::service {

class VersionWaits {
 public:
  using Done = std::function<void(bool reached)>;

  VersionWaits();
  ~VersionWaits();  // Shutdown()
  // Ends every wait with false (their reads go to the store) and every
  // later Wait at once; call when shutdown begins, while the waiters'
  // callers still exist. Idempotent.
  void Shutdown();
  VersionWaits(const VersionWaits&) = delete;
  VersionWaits& operator=(const VersionWaits&) = delete;

  // Waits until `key` of `ns` reaches `min_version` or `until` passes.
  // `recheck` is called once the waiter is registered (so an event applied
  // between the caller's look and the registration is not missed): true
  // ends the wait at once with `done(true)`.
  void Wait(absl::string_view ns, absl::string_view key, uint64_t min_version, absl::Time until,
            const std::function<bool()>& recheck, Done done);

  // An event at `version` reached `key` (applied or not).
  void Notify(absl::string_view ns, absl::string_view key, uint64_t version);
  // The namespace was flushed ("" = all): every wait in it ends with false.
  void NotifyFlush(absl::string_view ns);

  size_t waiting() const;

 private:
  struct Waiter {
    std::string ns, key;
    uint64_t min_version = 0;
    absl::Time until;
    Done done;
  };
  using Id = uint64_t;
  void TimerLoop();
  // Removes waiter `id` if still there; its `done`, or null.
  Done Take(Id id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  CondVar changed_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  Id next_id_ ABSL_GUARDED_BY(mu_) = 1;
  absl::flat_hash_map<Id, Waiter> waiters_ ABSL_GUARDED_BY(mu_);
  // (ns, key) → waiter ids; deadline → waiter id.
  absl::flat_hash_map<std::pair<std::string, std::string>, std::vector<Id>> by_key_
      ABSL_GUARDED_BY(mu_);
  std::multimap<absl::Time, Id> by_deadline_ ABSL_GUARDED_BY(mu_);
  std::thread timer_;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_VERSION_WAITS_H_
