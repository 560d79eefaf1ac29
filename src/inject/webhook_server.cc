// See webhook_server.h.
#include "inject/webhook_server.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "inject/injector.h"
#include "spdlog/spdlog.h"

namespace cachecar::inject {
namespace {

constexpr int kMaxConnections = 32;
constexpr int kIoTimeoutSeconds = 10;
constexpr size_t kMaxHeaderBytes = 16 << 10;

std::string SslError() {
  char error[256];
  ERR_error_string_n(ERR_get_error(), error, sizeof(error));
  return error;
}

struct Request {
  std::string method, path, body;
};

// Reads one request; returns an HTTP status (0 = ok) and a message otherwise.
int ReadRequest(SSL* ssl, size_t max_body, Request& req, std::string& why) {
  std::string data;
  char buffer[16384];
  size_t header_end = std::string::npos;
  while ((header_end = data.find("\r\n\r\n")) == std::string::npos) {
    if (data.size() > kMaxHeaderBytes) {
      why = "headers too large";
      return 431;
    }
    const int n = SSL_read(ssl, buffer, sizeof(buffer));
    if (n <= 0) {
      why = "connection closed before the request ended";
      return -1;
    }
    data.append(buffer, static_cast<size_t>(n));
  }
  std::vector<std::string> lines = absl::StrSplit(data.substr(0, header_end), "\r\n");
  std::vector<std::string> first = absl::StrSplit(lines[0], ' ');
  if (first.size() < 3) {
    why = "not an HTTP request";
    return 400;
  }
  req.method = first[0];
  req.path = first[1].substr(0, first[1].find('?'));
  size_t length = 0;
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t colon = lines[i].find(':');
    if (colon == std::string::npos) continue;
    const std::string name = absl::AsciiStrToLower(lines[i].substr(0, colon));
    const std::string value(absl::StripAsciiWhitespace(lines[i].substr(colon + 1)));
    if (name == "content-length" && !absl::SimpleAtoi(value, &length)) {
      why = "bad Content-Length";
      return 400;
    }
    if (name == "transfer-encoding") {
      why = "chunked bodies are not supported; send Content-Length";
      return 411;
    }
  }
  if (length > max_body) {
    why = absl::StrCat("body over ", max_body, " bytes");
    return 413;
  }
  req.body = data.substr(header_end + 4);
  while (req.body.size() < length) {
    const int n = SSL_read(ssl, buffer, sizeof(buffer));
    if (n <= 0) {
      why = "connection closed before the body ended";
      return -1;
    }
    req.body.append(buffer, static_cast<size_t>(n));
  }
  req.body.resize(length);
  return 0;
}

void Reply(SSL* ssl, int code, absl::string_view reason, absl::string_view type,
           const std::string& body) {
  const std::string head =
      absl::StrCat("HTTP/1.1 ", code, " ", reason, "\r\nContent-Type: ", type,
                   "\r\nContent-Length: ", body.size(), "\r\nConnection: close\r\n\r\n");
  const std::string all = head + body;
  SSL_write(ssl, all.data(), static_cast<int>(all.size()));
}

absl::string_view Reason(int code) {
  switch (code) {
    case 200:
      return "OK";
    case 400:
      return "Bad Request";
    case 404:
      return "Not Found";
    case 405:
      return "Method Not Allowed";
    case 411:
      return "Length Required";
    case 413:
      return "Payload Too Large";
    case 431:
      return "Request Header Fields Too Large";
  }
  return "Error";
}

// "<cert mtime>/<key mtime>" in nanoseconds; "" if either is missing.
std::string FileStamp(const WebhookOptions& o) {
  struct stat a {
  }, b{};
  if (stat(o.cert_file.c_str(), &a) != 0 || stat(o.key_file.c_str(), &b) != 0) return "";
  return absl::StrCat(a.st_mtim.tv_sec, ".", a.st_mtim.tv_nsec, "/", b.st_mtim.tv_sec, ".",
                      b.st_mtim.tv_nsec);
}

// A TLS server context with the pair in `o`, or the reason it did not load.
absl::StatusOr<SSL_CTX*> LoadContext(const WebhookOptions& o) {
  SSL_CTX* ctx = SSL_CTX_new(TLS_server_method());
  SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
  if (SSL_CTX_use_certificate_chain_file(ctx, o.cert_file.c_str()) != 1) {
    const std::string error = SslError();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot use certificate ", o.cert_file, ": ", error));
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, o.key_file.c_str(), SSL_FILETYPE_PEM) != 1 ||
      SSL_CTX_check_private_key(ctx) != 1) {
    const std::string error = SslError();
    SSL_CTX_free(ctx);
    return absl::InvalidArgumentError(
        absl::StrCat("cannot use private key ", o.key_file, " with ", o.cert_file, ": ", error));
  }
  return ctx;
}

}  // namespace

SSL* WebhookServer::NewSsl() {
  MutexLock lock(&ssl_mu_);
  const std::string stamp = FileStamp(options_);
  if (!stamp.empty() && stamp != loaded_stamp_) {
    absl::StatusOr<SSL_CTX*> fresh = LoadContext(options_);
    if (fresh.ok()) {
      SSL_CTX_free(ssl_);  // connections still using it hold a reference
      ssl_ = *fresh;
      spdlog::info("webhook: loaded the rotated certificate {}", options_.cert_file);
    } else {
      spdlog::error("webhook: keeping the old certificate: {}",
                    std::string(fresh.status().message()));
    }
    loaded_stamp_ = stamp;  // do not retry a bad pair on every connection
  }
  return SSL_new(ssl_);
}

absl::StatusOr<std::unique_ptr<WebhookServer>> WebhookServer::Start(const WebhookOptions& options) {
  if (options.cert_file.empty() || options.key_file.empty()) {
    return absl::InvalidArgumentError(
        "the webhook serves HTTPS only: give --webhook-tls-cert and --webhook-tls-key "
        "(PEM files, e.g. a kubernetes.io/tls Secret's tls.crt and tls.key)");
  }
  auto server = std::unique_ptr<WebhookServer>(new WebhookServer());
  server->options_ = options;
  {
    MutexLock lock(&server->ssl_mu_);
    server->loaded_stamp_ = FileStamp(options);
    absl::StatusOr<SSL_CTX*> ctx = LoadContext(options);
    if (!ctx.ok()) return ctx.status();
    server->ssl_ = *ctx;
  }

  const size_t colon = options.listen.rfind(':');
  std::string host = colon == std::string::npos ? "" : options.listen.substr(0, colon);
  const std::string port =
      colon == std::string::npos ? options.listen : options.listen.substr(colon + 1);
  if (absl::StartsWith(host, "[") && absl::EndsWith(host, "]"))
    host = host.substr(1, host.size() - 2);
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST;
  addrinfo* found = nullptr;
  if (getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &found) != 0 ||
      found == nullptr) {
    return absl::InvalidArgumentError(
        absl::StrCat("--webhook-listen ", options.listen, ": want host:port, e.g. 0.0.0.0:8443"));
  }
  const int fd = socket(found->ai_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  const int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (fd < 0 || bind(fd, found->ai_addr, found->ai_addrlen) != 0 || listen(fd, 128) != 0) {
    const std::string error = std::strerror(errno);
    freeaddrinfo(found);
    if (fd >= 0) close(fd);
    return absl::UnavailableError(absl::StrCat("cannot listen on ", options.listen, ": ", error));
  }
  freeaddrinfo(found);
  sockaddr_storage bound{};
  socklen_t len = sizeof(bound);
  getsockname(fd, reinterpret_cast<sockaddr*>(&bound), &len);
  server->port_ =
      ntohs(bound.ss_family == AF_INET6 ? reinterpret_cast<sockaddr_in6*>(&bound)->sin6_port
                                        : reinterpret_cast<sockaddr_in*>(&bound)->sin_port);
  server->listen_fd_ = fd;
  WebhookServer* raw = server.get();
  server->acceptor_ = std::thread([raw] { raw->AcceptLoop(); });
  return server;
}

void WebhookServer::AcceptLoop() {
  while (!stopping_.load()) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (poll(&p, 1, 200) <= 0) continue;  // wakes to notice stopping_
    {
      MutexLock lock(&mu_);
      while (active_ >= kMaxConnections && !stopping_.load()) idle_.Wait(&mu_);
      if (stopping_.load()) return;
    }
    const int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    timeval timeout{kIoTimeoutSeconds, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof(timeout));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof(timeout));
    {
      MutexLock lock(&mu_);
      ++active_;
    }
    std::thread([this, fd] {
      Serve(fd);
      close(fd);
      MutexLock lock(&mu_);
      --active_;
      idle_.SignalAll();
    }).detach();
  }
}

void WebhookServer::Serve(int fd) {
  SSL* ssl = NewSsl();
  SSL_set_fd(ssl, fd);
  if (SSL_accept(ssl) != 1) {
    spdlog::debug("webhook: TLS handshake failed: {}", SslError());
    SSL_free(ssl);
    return;
  }
  Request req;
  std::string why;
  const int bad = ReadRequest(ssl, options_.max_body_bytes, req, why);
  if (bad > 0) {
    Reply(ssl, bad, Reason(bad), "text/plain", why + "\n");
  } else if (bad == 0) {
    if (req.path == "/healthz") {
      Reply(ssl, 200, "OK", "text/plain", "ok\n");
    } else if (req.path != "/mutate") {
      Reply(ssl, 404, Reason(404), "text/plain", "POST /mutate or GET /healthz\n");
    } else if (req.method != "POST") {
      Reply(ssl, 405, Reason(405), "text/plain", "POST an AdmissionReview to /mutate\n");
    } else {
      absl::StatusOr<std::string> response = ReviewAdmission(req.body);
      if (response.ok()) {
        Reply(ssl, 200, "OK", "application/json", *response);
      } else {
        spdlog::warn("webhook: bad request: {}", std::string(response.status().message()));
        Reply(ssl, 400, Reason(400), "text/plain", absl::StrCat(response.status().message(), "\n"));
      }
    }
  }
  SSL_shutdown(ssl);
  SSL_free(ssl);
}

WebhookServer::~WebhookServer() {
  stopping_.store(true);
  {
    MutexLock lock(&mu_);
    idle_.SignalAll();
  }
  if (acceptor_.joinable()) acceptor_.join();
  {
    // Connections in flight end within the I/O timeout.
    MutexLock lock(&mu_);
    while (active_ > 0) idle_.Wait(&mu_);
  }
  if (listen_fd_ >= 0) close(listen_fd_);
  MutexLock lock(&ssl_mu_);
  if (ssl_ != nullptr) SSL_CTX_free(ssl_);
}

}  // namespace cachecar::inject
