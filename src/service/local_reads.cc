// See local_reads.h.
#include "service/local_reads.h"

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/errno_text.h"
#include "localread/layout.h"
#include "spdlog/spdlog.h"

namespace cachecar::service {
namespace {

namespace lr = localread;

// epoll user data for the two fds that are not clients.
constexpr uint64_t kListenTag = ~uint64_t{0};
constexpr uint64_t kStopTag = ~uint64_t{0} - 1;

absl::Status Errno(const std::string& what) {
  return absl::FailedPreconditionError(absl::StrCat(what, ": ", ErrnoText(errno)));
}

}  // namespace

LocalReads::LocalReads(NamespaceSet& namespaces, const Replication* replication,
                       LocalReadsOptions options)
    : namespaces_(namespaces), replication_(replication), options_(options) {}

absl::StatusOr<std::unique_ptr<LocalReads>> LocalReads::Start(NamespaceSet& namespaces,
                                                              const Replication* replication,
                                                              LocalReadsOptions options) {
  cache::Storage& storage = namespaces.storage();
  if (!storage.published()) {
    return absl::FailedPreconditionError("local reads need the cache in a published file");
  }
  std::unique_ptr<LocalReads> lr(new LocalReads(namespaces, replication, options));
  lr->socket_path_ = storage.path() + lr::kHitsSuffix;
  sockaddr_un addr{};
  if (lr->socket_path_.size() >= sizeof(addr.sun_path)) {
    return absl::InvalidArgumentError(
        absl::StrCat("local_read_path: ", lr->socket_path_, " is too long for a unix socket"));
  }
  addr.sun_family = AF_UNIX;
  std::memcpy(addr.sun_path, lr->socket_path_.data(), lr->socket_path_.size());
  lr->listen_fd_ = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (lr->listen_fd_ < 0) return Errno("local reads: socket");
  unlink(lr->socket_path_.c_str());  // a dead predecessor's (the storage holds the path's lock)
  if (bind(lr->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0) {
    return Errno(absl::StrCat("local reads: bind ", lr->socket_path_));
  }
  // Apps may run as any user; connecting needs write permission.
  chmod(lr->socket_path_.c_str(), 0666);
  if (listen(lr->listen_fd_, 64) != 0) return Errno("local reads: listen");
  lr->epoll_fd_ = epoll_create1(EPOLL_CLOEXEC);
  lr->stop_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (lr->epoll_fd_ < 0 || lr->stop_fd_ < 0) return Errno("local reads: epoll");
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u64 = kListenTag;
  epoll_ctl(lr->epoll_fd_, EPOLL_CTL_ADD, lr->listen_fd_, &ev);
  ev.data.u64 = kStopTag;
  epoll_ctl(lr->epoll_fd_, EPOLL_CTL_ADD, lr->stop_fd_, &ev);
  lr->PublishNow();
  lr->thread_ = std::thread([p = lr.get()] { p->Loop(); });
  return lr;
}

LocalReads::~LocalReads() {
  Stop();
  if (epoll_fd_ >= 0) close(epoll_fd_);
  if (stop_fd_ >= 0) close(stop_fd_);
}

void LocalReads::Serving() { namespaces_.storage().SetServing(); }

void LocalReads::Stop() {
  if (stopped_) return;
  stopped_ = true;
  namespaces_.storage().Retire();  // readers fall back from here on
  if (thread_.joinable()) {
    const uint64_t one = 1;
    if (write(stop_fd_, &one, sizeof(one)) != sizeof(one)) spdlog::warn("local reads: stop");
    thread_.join();
  }
  if (listen_fd_ >= 0) {
    close(listen_fd_);
    listen_fd_ = -1;
    unlink(socket_path_.c_str());
  }
}

void LocalReads::PublishNow() {
  namespaces_.storage().SetTrustedUntil(replication_ != nullptr ? replication_->TrustedUntil()
                                                                : absl::InfiniteFuture());
}

void LocalReads::Loop() {
  const int timeout_ms = std::max<int>(1, absl::ToInt64Milliseconds(options_.publish_period));
  epoll_event events[64];
  absl::Time next_publish = absl::Now();
  for (;;) {
    const int n = epoll_wait(epoll_fd_, events, 64, timeout_ms);
    for (int i = 0; i < n; ++i) {
      const uint64_t tag = events[i].data.u64;
      if (tag == kStopTag) {
        // Their hits have no file to go to any more.
        while (!client_fds_.empty()) Close(*client_fds_.begin());
        return;
      }
      if (tag == kListenTag) {
        AcceptClients();
      } else if ((events[i].events & (EPOLLHUP | EPOLLERR)) != 0 ||
                 !ReadClient(static_cast<int>(tag))) {
        Close(static_cast<int>(tag));
      }
    }
    const absl::Time now = absl::Now();
    if (now >= next_publish) {
      PublishNow();
      next_publish = now + options_.publish_period;
    }
  }
}

void LocalReads::AcceptClients() {
  for (;;) {
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;
    if (clients_.load(std::memory_order_relaxed) >= options_.max_clients) {
      close(fd);
      clients_refused_.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = static_cast<uint64_t>(fd);
    if (epoll_ctl(epoll_fd_, EPOLL_CTL_ADD, fd, &ev) != 0) {
      close(fd);
      continue;
    }
    client_fds_.insert(fd);
    clients_.fetch_add(1, std::memory_order_relaxed);
  }
}

void LocalReads::Close(int fd) {
  epoll_ctl(epoll_fd_, EPOLL_CTL_DEL, fd, nullptr);
  close(fd);
  client_fds_.erase(fd);
  clients_.fetch_sub(1, std::memory_order_relaxed);
}

bool LocalReads::ReadClient(int fd) {
  char message[lr::kHitsMaxMessage + 1];
  for (size_t i = 0; i < options_.messages_per_round; ++i) {
    const ssize_t n = recv(fd, message, sizeof(message), MSG_DONTWAIT);
    if (n > 0) {
      HandleReport(message, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return true;
    return false;  // 0: the client closed; else an error
  }
  return true;  // the rest waits for the next round (level-triggered)
}

void LocalReads::HandleReport(const char* message, size_t bytes) {
  lr::HitsMessageHeader header;
  if (bytes < sizeof(header)) {
    reports_rejected_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(&header, message, sizeof(header));
  if (header.magic != lr::kHitsMagic || header.version != lr::kHitsVersion || header.count == 0 ||
      header.count > lr::kHitsMaxRecords ||
      bytes != sizeof(header) + size_t{header.count} * sizeof(lr::HitRecord)) {
    reports_rejected_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  if (header.instance_id != namespaces_.storage().instance_id()) {
    reports_other_file_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  reports_.fetch_add(1, std::memory_order_relaxed);
  for (uint16_t i = 0; i < header.count; ++i) {
    lr::HitRecord record;
    std::memcpy(&record, message + sizeof(header) + i * sizeof(record), sizeof(record));
    Namespace* ns = namespaces_.At(record.ns);
    const uint32_t hits = std::min<uint32_t>(std::max<uint32_t>(record.hits, 1), 3);
    if (ns != nullptr && ns->engine->TouchHashed(record.hash, hits)) {
      touches_.fetch_add(1, std::memory_order_relaxed);
    } else {
      touches_missed_.fetch_add(1, std::memory_order_relaxed);
    }
  }
}

LocalReadsStats LocalReads::stats() const {
  LocalReadsStats s;
  s.clients = clients_.load(std::memory_order_relaxed);
  s.clients_refused = clients_refused_.load(std::memory_order_relaxed);
  s.reports = reports_.load(std::memory_order_relaxed);
  s.reports_rejected = reports_rejected_.load(std::memory_order_relaxed);
  s.reports_other_file = reports_other_file_.load(std::memory_order_relaxed);
  s.touches = touches_.load(std::memory_order_relaxed);
  s.touches_missed = touches_missed_.load(std::memory_order_relaxed);
  return s;
}

}  // namespace cachecar::service
