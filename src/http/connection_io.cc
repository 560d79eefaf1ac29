// See server_loop.h. One connection's reads, writes and TLS, and what is
// written on the wire.
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/str_cat.h"
#include "http/server_loop.h"

namespace cachecar::http {
namespace {

constexpr size_t kReadChunk = 16 << 10;

// Consumes a SIGPIPE a TLS write raised while blocked in this thread.
void DrainSigpipe() {
  sigset_t pipe;
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  timespec zero{0, 0};
  while (sigtimedwait(&pipe, nullptr, &zero) > 0) {
  }
}

}  // namespace

std::string SerializeResponse(const HttpResponse& r) {
  return absl::StrCat("HTTP/1.1 ", r.code, " ", ReasonPhrase(r.code),
                      "\r\nContent-Type: ", r.content_type, "\r\nContent-Length: ", r.body.size(),
                      "\r\nConnection: close\r\n\r\n", r.body);
}

HttpResponse PlainResponse(int code, absl::string_view text) {
  return HttpResponse{code, "text/plain", absl::StrCat(text, "\n")};
}

void HttpServer::Loop::CloseSocket(Conn& c) {
  if (c.ssl != nullptr) {
    if (c.phase == Phase::kWriting && c.written == c.out.size()) {
      SSL_shutdown(c.ssl);  // best effort: one non-blocking try
      DrainSigpipe();
    }
    SSL_free(c.ssl);
    c.ssl = nullptr;
  }
  if (c.fd >= 0) close(c.fd);
  c.fd = -1;
}

void HttpServer::Loop::Close(uint64_t id) {
  auto it = conns_.find(id);
  if (it == conns_.end()) return;
  Conn& c = *it->second;
  buffered_ -= c.counted;
  by_age_.erase(id);
  CloseSocket(c);
  conns_.erase(it);
}

// Which events to wait for; none takes the socket out of the epoll set
// (a hung-up peer would otherwise be reported again and again).
void HttpServer::Loop::SetInterest(Conn& c, uint32_t events) {
  if (c.registered && c.interest == events) return;
  epoll_event ev{};
  ev.events = events;
  ev.data.u64 = c.id;
  if (events == 0) {
    if (c.registered) epoll_ctl(fds_.epoll_fd(), EPOLL_CTL_DEL, c.fd, nullptr);
    c.registered = false;
  } else {
    epoll_ctl(fds_.epoll_fd(), c.registered ? EPOLL_CTL_MOD : EPOLL_CTL_ADD, c.fd, &ev);
    c.registered = true;
  }
  c.interest = events;
}

// Answers without calling the handler (errors, timeouts, overload). `c`
// may be gone when this returns (written and closed).
void HttpServer::Loop::Answer(Conn& c, const HttpResponse& response) {
  buffered_ -= c.counted;
  c.counted = 0;
  c.reader = RequestReader(options_.limits);  // frees what it held
  c.phase = Phase::kWriting;
  c.out = SerializeResponse(response);
  c.written = 0;
  by_age_.erase(c.id);  // no longer evictable
  WriteSome(c);
}

// A TLS call returned `r`: true if it should be retried when the socket is
// ready (interest set), false if the connection failed.
bool HttpServer::Loop::TlsRetry(Conn& c, int r) {
  const int error = SSL_get_error(c.ssl, r);
  if (error == SSL_ERROR_WANT_READ) {
    SetInterest(c, EPOLLIN | EPOLLRDHUP);
    return true;
  }
  if (error == SSL_ERROR_WANT_WRITE) {
    SetInterest(c, EPOLLOUT);
    return true;
  }
  DrainSigpipe();
  ERR_clear_error();
  return false;
}

// Advances a connection as far as its socket allows.
void HttpServer::Loop::Step(Conn& c) {
  if (c.phase == Phase::kHandshake) {
    const int r = SSL_accept(c.ssl);
    if (r != 1) {
      if (!TlsRetry(c, r)) {
        Count(&HttpServerCounters::failed);
        Close(c.id);
      }
      return;
    }
    c.phase = Phase::kReading;
    SetInterest(c, EPOLLIN | EPOLLRDHUP);
  }
  if (c.phase == Phase::kReading) return ReadSome(c);
  if (c.phase == Phase::kWriting) return WriteSome(c);
}

void HttpServer::Loop::ReadSome(Conn& c) {
  char buffer[kReadChunk];
  while (c.phase == Phase::kReading) {
    ssize_t n;
    if (c.ssl != nullptr) {
      const int r = SSL_read(c.ssl, buffer, sizeof(buffer));
      if (r <= 0) {
        if (TlsRetry(c, r)) return;
        Count(&HttpServerCounters::failed);
        return Close(c.id);
      }
      n = r;
    } else {
      n = recv(c.fd, buffer, sizeof(buffer), 0);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
      if (n <= 0) {
        Count(&HttpServerCounters::failed);
        return Close(c.id);
      }
    }
    const RequestReader::State state =
        c.reader.Feed(absl::string_view(buffer, static_cast<size_t>(n)));
    buffered_ = buffered_ - c.counted + c.reader.buffered();
    c.counted = c.reader.buffered();
    if (state == RequestReader::State::kError) {
      return Answer(c, PlainResponse(c.reader.error_code(), c.reader.error()));
    }
    if (state == RequestReader::State::kDone) return Dispatch(c);
    const uint64_t id = c.id;
    while (buffered_ > options_.max_buffered_bytes) {
      Conn* victim = OldestEvictable(0);
      if (victim == nullptr) break;
      const bool self = victim->id == id;
      Evict(*victim, absl::StrCat("over ", options_.max_buffered_bytes, " bytes of requests held"));
      if (self) return;
    }
  }
}

void HttpServer::Loop::Dispatch(Conn& c) {
  by_age_.erase(c.id);
  bool queued = false;
  {
    MutexLock lock(&mu_);
    if (queue_.size() < options_.max_queued) {
      queue_.push_back({c.id, c.reader.TakeRequest()});
      queue_cv_.Signal();
      queued = true;
    }
  }
  if (!queued)
    return Answer(c, PlainResponse(503, "server busy (too many requests in progress); retry"));
  buffered_ -= c.counted;
  c.counted = 0;
  c.phase = Phase::kProcessing;
  SetInterest(c, 0);  // until the answer is ready
}

void HttpServer::Loop::WriteSome(Conn& c) {
  while (c.written < c.out.size()) {
    const size_t left = c.out.size() - c.written;
    if (c.ssl != nullptr) {
      const int r = SSL_write(c.ssl, c.out.data() + c.written,
                              static_cast<int>(std::min<size_t>(left, 1 << 20)));
      if (r <= 0) {
        if (TlsRetry(c, r)) return;
        Count(&HttpServerCounters::failed);
        return Close(c.id);
      }
      c.written += static_cast<size_t>(r);
    } else {
      const ssize_t n = send(c.fd, c.out.data() + c.written, left, MSG_NOSIGNAL);
      if (n < 0 && (errno == EAGAIN || errno == EINTR)) {
        SetInterest(c, EPOLLOUT);
        return;
      }
      if (n <= 0) {
        Count(&HttpServerCounters::failed);
        return Close(c.id);
      }
      c.written += static_cast<size_t>(n);
    }
  }
  Count(&HttpServerCounters::answered);
  Close(c.id);
}

}  // namespace cachecar::http
