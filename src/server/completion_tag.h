// The pieces every call of cachecar's completion-queue server is made of.
//
// Tag: what gRPC hands back on a completion queue; the polling thread that
// takes it calls Proceed(ok) (docs/BENCHMARKS.md, "Serving core", says why
// the server runs on completion queues and its own threads).
// EventTag: a Tag member that forwards to one method of its owner, so a call
// with several operations in flight has one tag per kind of operation.
// CallCounter: how many call objects are alive; shutdown waits for none
// before it shuts the completion queues (a call finished by a worker after
// that would post to a dead queue).
//
// Thread-safety: a Tag is called by one polling thread at a time per
// operation; CallCounter may be used from any thread.
#ifndef CACHECAR_SERVER_COMPLETION_TAG_H_
#define CACHECAR_SERVER_COMPLETION_TAG_H_

#include <cstdint>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace cachecar::server {

class Tag {
 public:
  virtual void Proceed(bool ok) = 0;

 protected:
  ~Tag() = default;
};

// Final, and Tag's destructor is protected: nobody deletes one through a Tag
// (clang-tidy-14 flags the public destructor of a final class all the same).
template <class Owner, void (Owner::*kMethod)(bool)>
class EventTag final : public Tag {  // NOLINT(cppcoreguidelines-virtual-class-destructor)
 public:
  explicit EventTag(Owner* owner) : owner_(owner) {}
  void Proceed(bool ok) override { (owner_->*kMethod)(ok); }

 private:
  Owner* const owner_;
};

class CallCounter {
 public:
  void Add() {
    absl::MutexLock lock(&mu_);
    ++live_;
  }
  void Remove() {
    absl::MutexLock lock(&mu_);
    --live_;
  }
  // Waits until no call object is alive, at most until `deadline`; true if
  // none is.
  bool AwaitNone(absl::Time deadline) {
    absl::MutexLock lock(&mu_);
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return live_ == 0; };
    return mu_.AwaitWithDeadline(absl::Condition(&none), deadline);
  }

 private:
  absl::Mutex mu_;
  int64_t live_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_COMPLETION_TAG_H_
