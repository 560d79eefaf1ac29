// See epoll_fds.h.
#include "common/epoll_fds.h"

#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/errno_text.h"

namespace cachecar {

EpollFds::~EpollFds() {
  for (int fd : {wake_fd_, epoll_fd_, spare_fd_}) {
    if (fd >= 0) close(fd);
  }
}

absl::Status EpollFds::Open(uint64_t wake_id) {
  epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  if (epoll_fd_ < 0 || wake_fd_ < 0) {
    return absl::InternalError(absl::StrCat("epoll/eventfd: ", ErrnoText(errno)));
  }
  Add(wake_fd_, EPOLLIN, wake_id);
  return absl::OkStatus();
}

void EpollFds::Add(int fd, uint32_t events, uint64_t id) {
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = id;
  epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev);
}

void EpollFds::Wake() {
  if (wake_fd_ < 0) return;
  const uint64_t one = 1;
  [[maybe_unused]] ssize_t n = write(wake_fd_, &one, sizeof(one));
}

void EpollFds::DrainWake() {
  uint64_t drained = 0;
  [[maybe_unused]] ssize_t n = read(wake_fd_, &drained, sizeof(drained));
}

bool EpollFds::ShedOne(const std::vector<int>& listen_fds) {
  if (spare_fd_ < 0) return false;
  close(spare_fd_);
  spare_fd_ = -1;
  for (int fd : listen_fds) {
    const int victim = accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (victim >= 0) {
      close(victim);
      break;
    }
  }
  spare_fd_ = open("/dev/null", O_RDONLY | O_CLOEXEC);
  return true;
}

}  // namespace cachecar
