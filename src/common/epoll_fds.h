// EpollFds: the descriptors an accept loop on epoll needs, shared by the
// HTTP server (src/http) and the gRPC connection gate (src/server): the
// epoll set, an eventfd that wakes the loop from other threads, and a spare
// descriptor kept so that, out of descriptors (EMFILE), the loop can still
// accept and close the waiting connection instead of spinning on it.
//
// Thread-safety: Open before the loop thread starts; Wake from any thread;
// everything else on the loop thread. The destructor closes all three.
#ifndef CACHECAR_COMMON_EPOLL_FDS_H_
#define CACHECAR_COMMON_EPOLL_FDS_H_

#include <cstdint>
#include <vector>

#include "absl/status/status.h"

namespace cachecar {

class EpollFds {
 public:
  EpollFds() = default;
  ~EpollFds();
  EpollFds(const EpollFds&) = delete;
  EpollFds& operator=(const EpollFds&) = delete;

  // Makes the epoll set, the wake eventfd (registered for EPOLLIN under
  // `wake_id`) and the spare descriptor.
  absl::Status Open(uint64_t wake_id);

  int epoll_fd() const { return epoll_fd_; }
  // Adds `fd` to the set for `events`, reported under `id`.
  void Add(int fd, uint32_t events, uint64_t id);
  // Wakes the loop's epoll_wait (no-op before Open).
  void Wake();
  // Consumes the wake-ups (call when `wake_id` is reported).
  void DrainWake();
  // Out of descriptors: frees the spare, accepts and closes one waiting
  // connection of the first of `listen_fds` that has one, and takes the
  // spare again. False if there was no spare to free.
  bool ShedOne(const std::vector<int>& listen_fds);

 private:
  int epoll_fd_ = -1;
  int wake_fd_ = -1;
  int spare_fd_ = -1;
};

}  // namespace cachecar

#endif  // CACHECAR_COMMON_EPOLL_FDS_H_
