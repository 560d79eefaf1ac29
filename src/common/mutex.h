// Mutex, MutexLock and CondVar: std::mutex / std::condition_variable_any with
// clang thread-safety annotations. Used where threads hand work to each other
// (worker pool, singleflight, batch results). Unlike Debian's prebuilt
// absl::Mutex, pthread-based locks are visible to ThreadSanitizer, so TSan
// builds check these hand-offs without false reports.
//
// Thread-safety: as std::mutex.
#ifndef CACHECAR_COMMON_MUTEX_H_
#define CACHECAR_COMMON_MUTEX_H_

#include <chrono>
#include <condition_variable>
#include <mutex>

#include "absl/base/thread_annotations.h"
#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace cachecar {

class ABSL_LOCKABLE Mutex {
 public:
  void Lock() ABSL_EXCLUSIVE_LOCK_FUNCTION() { mu_.lock(); }
  void Unlock() ABSL_UNLOCK_FUNCTION() { mu_.unlock(); }

 private:
  friend class CondVar;
  std::mutex mu_;
};

class ABSL_SCOPED_LOCKABLE MutexLock {
 public:
  explicit MutexLock(Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) { mu_->Lock(); }
  ~MutexLock() ABSL_UNLOCK_FUNCTION() { mu_->Unlock(); }
  MutexLock(const MutexLock&) = delete;
  MutexLock& operator=(const MutexLock&) = delete;

 private:
  Mutex* const mu_;
};

class CondVar {
 public:
  // Atomically releases `mu`, waits for a signal, re-acquires `mu`.
  void Wait(Mutex* mu) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    cv_.wait(lock);
    lock.release();  // still held; the caller's MutexLock unlocks it
  }
  // As Wait, but gives up at `deadline`; false if it timed out.
  bool WaitUntil(Mutex* mu, std::chrono::system_clock::time_point deadline)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu) {
    std::unique_lock<std::mutex> lock(mu->mu_, std::adopt_lock);
    const bool signalled = cv_.wait_until(lock, deadline) == std::cv_status::no_timeout;
    lock.release();
    return signalled;
  }
  void Signal() { cv_.notify_one(); }
  void SignalAll() { cv_.notify_all(); }

 private:
  std::condition_variable cv_;
};

// A one-shot event, like absl::Notification but visible to TSan.
class Notification {
 public:
  // Signals under the lock: a waiter that wakes may destroy the
  // Notification as soon as the lock is released.
  void Notify() {
    MutexLock lock(&mu_);
    notified_ = true;
    cv_.SignalAll();
  }
  bool HasBeenNotified() {
    MutexLock lock(&mu_);
    return notified_;
  }
  void WaitForNotification() {
    MutexLock lock(&mu_);
    while (!notified_) cv_.Wait(&mu_);
  }
  // Waits until notified or `timeout` has passed; true if notified. A
  // periodic thread sleeps between rounds with this, and a Notify() from its
  // owner's destructor wakes it at once.
  bool WaitForNotificationWithTimeout(absl::Duration timeout) {
    const auto deadline = absl::ToChronoTime(absl::Now() + timeout);
    MutexLock lock(&mu_);
    while (!notified_) {
      if (!cv_.WaitUntil(&mu_, deadline) && !notified_) return false;
    }
    return true;
  }

 private:
  Mutex mu_;
  CondVar cv_;
  bool notified_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace cachecar

#endif  // CACHECAR_COMMON_MUTEX_H_
