// WorkerPool: a fixed set of threads running queued tasks, with a bounded
// queue. gRPC callback handlers hand blocking work (store I/O) to it and
// return at once; when the queue is full, TrySubmit says so and the caller
// answers UNAVAILABLE instead of piling up work.
//
// Thread-safety: TrySubmit may be called from any thread. Shutdown() runs
// the tasks already queued, then joins the threads; later TrySubmit fails.
#ifndef CACHECAR_SERVICE_WORKER_POOL_H_
#define CACHECAR_SERVICE_WORKER_POOL_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "common/mutex.h"

namespace cachecar::service {

class WorkerPool {
 public:
  WorkerPool(size_t threads, size_t max_queued, const std::string& name = "worker");
  ~WorkerPool();  // calls Shutdown()
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false if the queue is full or the pool is shutting down.
  bool TrySubmit(std::function<void()> task);

  void Shutdown();

  size_t queued() const;
  size_t threads() const { return threads_.size(); }
  // Tasks finished so far (for telling a wedged pool from a busy one).
  uint64_t completed() const { return completed_.load(std::memory_order_relaxed); }

 private:
  void Run();

  const size_t max_queued_;
  std::vector<std::thread> threads_;
  mutable Mutex mu_;
  CondVar work_or_stop_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::atomic<uint64_t> completed_{0};
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_WORKER_POOL_H_
