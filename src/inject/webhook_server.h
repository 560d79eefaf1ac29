// WebhookServer: the mutating admission webhook over HTTPS:
//   POST /mutate   AdmissionReview v1 (JSON) in, AdmissionReview response
//                  with a JSONPatch out (admission_review.h)
//   GET  /healthz  "ok", for the Deployment's readiness probe
// served by http::HttpServer (its header says why that server is our own
// and how it bounds slow and greedy clients). The API server gives the
// webhook 5 s (timeoutSeconds in the MutatingWebhookConfiguration): a
// connection must complete its TLS handshake and its request within
// request_timeout (3 s) and is answered within 4 s or dropped.
//
// The key and certificate are read from their own PEM files (a
// kubernetes.io/tls Secret mounts tls.crt and tls.key); nothing is written to
// disk, so it runs on a read-only root filesystem. Only TLS 1.2 and later.
// When either file changes (a rotated Secret, cert-manager renewal), the next
// connection uses the new pair; a pair that does not load is logged and the
// old one kept.
//
// Thread-safety: Start once; requests are served on the server's threads.
#ifndef CACHECAR_INJECT_WEBHOOK_SERVER_H_
#define CACHECAR_INJECT_WEBHOOK_SERVER_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "http/http_server.h"

typedef struct ssl_ctx_st SSL_CTX;
typedef struct ssl_st SSL;

namespace cachecar::inject {

struct WebhookOptions {
  std::string listen = "0.0.0.0:8443";  // host:port, numeric host
  std::string cert_file;                // PEM certificate (chain)
  std::string key_file;                 // PEM private key
  size_t max_body_bytes = 4 << 20;      // larger requests get 413
  size_t max_connections = 512;         // more evict the oldest still sending
  absl::Duration request_timeout = absl::Seconds(3);
  absl::Duration response_timeout = absl::Seconds(4);
};

class WebhookServer {
 public:
  static absl::StatusOr<std::unique_ptr<WebhookServer>> Start(const WebhookOptions& options);
  ~WebhookServer();  // stops serving
  WebhookServer(const WebhookServer&) = delete;
  WebhookServer& operator=(const WebhookServer&) = delete;

  int port() const { return http_->port(); }
  http::HttpServerCounters counters() const { return http_->counters(); }

 private:
  WebhookServer() = default;
  // An SSL for a new connection, from the current certificate and key
  // (reloaded first if their files changed).
  SSL* NewSsl();

  WebhookOptions options_;
  Mutex ssl_mu_;
  SSL_CTX* ssl_ ABSL_GUARDED_BY(ssl_mu_) = nullptr;
  std::string loaded_stamp_ ABSL_GUARDED_BY(ssl_mu_);  // mtimes of the pair in use
  std::unique_ptr<http::HttpServer> http_;             // last: stops before the context goes
};

// The webhook's answer to one request (what the server calls), exposed for
// tests and the fuzzer.
http::HttpResponse HandleWebhookRequest(const http::HttpRequest& request);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_WEBHOOK_SERVER_H_
