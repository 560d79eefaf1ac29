// WebhookServer: the mutating admission webhook over HTTPS (OpenSSL and a
// small HTTP/1.1 reader: Debian's civetweb cannot load OpenSSL 3):
//   POST /mutate   AdmissionReview v1 (JSON) in, AdmissionReview response
//                  with a JSONPatch out (see injector.h)
//   GET  /healthz  "ok", for the Deployment's readiness probe
// The key and certificate are read from their own PEM files (a
// kubernetes.io/tls Secret mounts tls.crt and tls.key); nothing is written to
// disk, so it runs on a read-only root filesystem. Only TLS 1.2 and later.
// When either file changes (a rotated Secret, cert-manager renewal), the next
// connection uses the new pair; a pair that does not load is logged and the
// old one kept.
//
// One request per connection (Connection: close), a thread per connection
// (at most 32 at once; more wait in the listen backlog), 10 s to send a
// request.
//
// Thread-safety: Start once; requests are served on the server's threads.
#ifndef CACHECAR_INJECT_WEBHOOK_SERVER_H_
#define CACHECAR_INJECT_WEBHOOK_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "common/mutex.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace cachecar::inject {

struct WebhookOptions {
  std::string listen = "0.0.0.0:8443";  // host:port
  std::string cert_file;                // PEM certificate (chain)
  std::string key_file;                 // PEM private key
  size_t max_body_bytes = 4 << 20;      // larger requests get 413
};

class WebhookServer {
 public:
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Start(const WebhookOptions& options);
  ~WebhookServer();  // stops serving
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  int port() const { return port_; }

 private:
  WebhookServer() = default;
  void AcceptLoop();
  void Serve(int fd);
  // An SSL for a new connection, from the current certificate and key
  // (reloaded first if their files changed).
  SSL* NewSsl();

  WebhookOptions options_;
  Mutex ssl_mu_;
  SSL_CTX* ssl_ ABSL_GUARDED_BY(ssl_mu_) = nullptr;
  std::string loaded_stamp_ ABSL_GUARDED_BY(ssl_mu_);  // mtimes of the pair in use
  int listen_fd_ = -1;
  int port_ = 0;
  std::atomic<bool> stopping_{false};
  std::thread acceptor_;
  Mutex mu_;
  CondVar idle_;
  int active_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_WEBHOOK_SERVER_H_
