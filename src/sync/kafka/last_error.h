// LastError: the Kafka adapter's most recent error, which SyncStats reports.
// Set by the producer's delivery reports, the consumer and the probe thread.
//
// Thread-safety: safe to use from any thread.
#ifndef CACHECAR_SYNC_KAFKA_LAST_ERROR_H_
#define CACHECAR_SYNC_KAFKA_LAST_ERROR_H_

#include <string>
#include <utility>

#include "common/mutex.h"

namespace cachecar::sync::kafka {

class LastError {
 public:
  void Set(std::string error) {
    MutexLock lock(&mu_);
    last_ = std::move(error);
  }
  std::string Get() const {
    MutexLock lock(&mu_);
    return last_;
  }

 private:
  mutable Mutex mu_;
  std::string last_ ABSL_GUARDED_BY(mu_);
};

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_LAST_ERROR_H_
