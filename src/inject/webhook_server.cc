// See webhook_server.h.
#include "inject/webhook_server.h"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <sys/stat.h>

#include <string>

#include "absl/strings/str_cat.h"
#include "inject/injector.h"
#include "spdlog/spdlog.h"

namespace cachecar::inject {
namespace {

std::string SslError() {
  char error[256];
  ERR_error_string_n(ERR_get_error(), error, sizeof(error));
  return error;
}

http::HttpResponse Text(int code, absl::string_view text) {
  return http::HttpResponse{code, "text/plain", absl::StrCat(text, "\n")};
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

http::HttpResponse HandleWebhookRequest(const http::HttpRequest& request) {
  if (request.path == "/healthz") return Text(200, "ok");
  if (request.path != "/mutate") return Text(404, "POST /mutate or GET /healthz");
  if (request.method != "POST") return Text(405, "POST an AdmissionReview to /mutate");
  absl::StatusOr<std::string> response = ReviewAdmission(request.body);
  if (!response.ok()) {
    spdlog::warn("webhook: bad request: {}", std::string(response.status().message()));
    return Text(400, response.status().message());
  }
  return http::HttpResponse{200, "application/json", *std::move(response)};
}

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
  http::HttpServerOptions http;
  http.name = "webhook";
  http.listen = options.listen;
  WebhookServer* raw = server.get();
  http.new_ssl = [raw] { return raw->NewSsl(); };
  http.max_connections = options.max_connections;
  http.request_timeout = options.request_timeout;
  http.response_timeout = options.response_timeout;
  http.limits.max_body_bytes = options.max_body_bytes;
  // Four bodies of the largest size at once; each costs a bounded DOM too
  // (admission_review.h), so this keeps the process well inside the
  // Deployment's 128 Mi.
  http.max_buffered_bytes = 4 * options.max_body_bytes;
  http.workers = 2;
  absl::StatusOr<std::unique_ptr<http::HttpServer>> started =
      http::HttpServer::Start(std::move(http), HandleWebhookRequest);
  if (!started.ok()) {
    return absl::Status(started.status().code(),
                        absl::StrCat("--webhook-listen: ", started.status().message()));
  }
  server->http_ = *std::move(started);
  return server;
}

WebhookServer::~WebhookServer() {
  http_.reset();  // no connection uses the context after this
  MutexLock lock(&ssl_mu_);
  if (ssl_ != nullptr) SSL_CTX_free(ssl_);
}

}  // namespace cachecar::inject
