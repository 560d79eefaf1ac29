// The reader's hit reports (docs/LOCAL_READS.md "Hit reports"): the hits
// Lookup counted (Reader::CountHit, inline in reader.cc) sent in batches
// over the file's ".hits" socket, never waiting for it. Part of Reader
// (reader.h); split from reader.cc to keep one job per file.
//
// Thread-safety: one sender at a time (reporting_); the counts are relaxed
// atomics that racing threads may skew, never corrupt beyond a client's own
// hit counts.
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "localread/cpu_relax.h"
#include "localread/layout.h"
#include "localread/reader.h"

namespace cachecar::localread {
namespace {

constexpr int64_t kReconnectNs = 1'000'000'000;

}  // namespace

void Reader::SendDueHits(int64_t now) {
  if (reporting_.exchange(true, std::memory_order_acquire)) return;  // another thread sends
  next_report_ns_.store(now + options_.report_interval_ns, std::memory_order_relaxed);
  if (current_.load(std::memory_order_acquire) != nullptr) {
    SendHits(report_instance_id_.load(std::memory_order_relaxed));
  }
  reporting_.store(false, std::memory_order_release);
}

void Reader::FlushHits() {
  while (reporting_.exchange(true, std::memory_order_acquire)) CpuRelax();
  if (current_.load(std::memory_order_acquire) != nullptr) {
    SendHits(report_instance_id_.load(std::memory_order_relaxed));
  }
  reporting_.store(false, std::memory_order_release);
}

void Reader::SendHits(uint64_t instance_id) {
  if (socket_fd_ < 0) {
    const int64_t now = Now();
    if (now < next_connect_ns_) {
      reports_dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    next_connect_ns_ = now + kReconnectNs;
    const std::string path = options_.path + kHitsSuffix;
    sockaddr_un addr{};
    if (path.size() >= sizeof(addr.sun_path)) return;
    addr.sun_family = AF_UNIX;
    std::memcpy(addr.sun_path, path.data(), path.size());
    const int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    if (connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 &&
        errno != EINPROGRESS) {
      close(fd);
      reports_dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    socket_fd_ = fd;
  }
  char message[kHitsMaxMessage];
  auto* header = reinterpret_cast<HitsMessageHeader*>(message);
  auto* records = reinterpret_cast<HitRecord*>(message + sizeof(HitsMessageHeader));
  size_t count = 0;
  auto send_batch = [&] {
    if (count == 0) return;
    *header =
        HitsMessageHeader{kHitsMagic, kHitsVersion, static_cast<uint16_t>(count), instance_id};
    const size_t bytes = sizeof(HitsMessageHeader) + count * sizeof(HitRecord);
    count = 0;
    if (socket_fd_ < 0) return;
    if (send(socket_fd_, message, bytes, MSG_DONTWAIT | MSG_NOSIGNAL) ==
        static_cast<ssize_t>(bytes)) {
      reports_sent_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    reports_dropped_.fetch_add(1, std::memory_order_relaxed);
    if (errno != EAGAIN && errno != EWOULDBLOCK) {  // gone (cachecar restarted): reconnect later
      close(socket_fd_);
      socket_fd_ = -1;
    }
  };
  for (size_t i = 0; i < kHitSlots; ++i) {
    // Most slots are empty: look before the (locked) exchange.
    if (hit_slots_[i].hits.load(std::memory_order_relaxed) == 0) continue;
    const uint32_t hits = hit_slots_[i].hits.exchange(0, std::memory_order_relaxed);
    if (hits == 0) continue;
    records[count++] = HitRecord{hit_slots_[i].hash.load(std::memory_order_relaxed),
                                 hit_slots_[i].ns.load(std::memory_order_relaxed), hits};
    if (count == kHitsMaxRecords) send_batch();
  }
  send_batch();
}

}  // namespace cachecar::localread
