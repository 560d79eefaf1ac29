// See worker_pool.h.
#include "service/worker_pool.h"

#include <pthread.h>

namespace cachecar::service {

WorkerPool::WorkerPool(size_t threads, size_t max_queued, const std::string& name)
    : max_queued_(max_queued) {
  threads_.reserve(threads);
  for (size_t i = 0; i < threads; ++i) {
    threads_.emplace_back([this] { Run(); });
    // Thread names show up in top/perf/gdb; Linux allows 15 characters.
    pthread_setname_np(threads_.back().native_handle(),
                       (name + "-" + std::to_string(i)).substr(0, 15).c_str());
  }
}

WorkerPool::~WorkerPool() { Shutdown(); }

bool WorkerPool::TrySubmit(std::function<void()> task) {
  {
    MutexLock lock(&mu_);
    if (stopping_ || queue_.size() >= max_queued_) return false;
    queue_.push_back(std::move(task));
  }
  work_or_stop_.Signal();
  return true;
}

void WorkerPool::Shutdown() {
  {
    MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
  }
  work_or_stop_.SignalAll();
  for (std::thread& t : threads_) t.join();
}

size_t WorkerPool::queued() const {
  MutexLock lock(&mu_);
  return queue_.size();
}

void WorkerPool::Run() {
  for (;;) {
    std::function<void()> task;
    {
      MutexLock lock(&mu_);
      while (!stopping_ && queue_.empty()) work_or_stop_.Wait(&mu_);
      if (queue_.empty()) return;  // stopping, and everything queued has run
      task = std::move(queue_.front());
      queue_.pop_front();
    }
    task();
    completed_.fetch_add(1, std::memory_order_relaxed);
  }
}

}  // namespace cachecar::service
