// Internal to cache/: the scoped lock a shard takes on its absl::Mutex.
// It is absl::MutexLock plus, in ThreadSanitizer builds, the TSan mutex
// annotations that abseil would make itself if it were compiled with
// -fsanitize=thread. Debian's prebuilt libabsl_synchronization is not, so
// TSan cannot see Lock/Unlock synchronize and would report every access to
// a guarded member as a race.
//
// Thread-safety: as absl::Mutex; the clang analysis sees an ordinary scoped
// exclusive lock.
#ifndef CACHECAR_CACHE_SHARD_LOCK_H_
#define CACHECAR_CACHE_SHARD_LOCK_H_

#include "absl/base/config.h"
#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

#ifdef ABSL_HAVE_THREAD_SANITIZER
#include <sanitizer/tsan_interface.h>
#endif

namespace cachecar::cache::internal {

class ABSL_SCOPED_LOCKABLE ShardLock {
 public:
  explicit ShardLock(absl::Mutex* mu) ABSL_EXCLUSIVE_LOCK_FUNCTION(mu) : mu_(mu) {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_mutex_pre_lock(mu_, 0);
    mu_->Lock();
    __tsan_mutex_post_lock(mu_, 0, 0);
#else
    mu_->Lock();
#endif
  }
  ~ShardLock() ABSL_UNLOCK_FUNCTION() {
#ifdef ABSL_HAVE_THREAD_SANITIZER
    __tsan_mutex_pre_unlock(mu_, 0);
    mu_->Unlock();
    __tsan_mutex_post_unlock(mu_, 0);
#else
    mu_->Unlock();
#endif
  }
  ShardLock(const ShardLock&) = delete;
  ShardLock& operator=(const ShardLock&) = delete;

 private:
  absl::Mutex* const mu_;
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_SHARD_LOCK_H_
