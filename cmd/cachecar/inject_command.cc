// See inject_command.h.
#include "cmd/cachecar/inject_command.h"

#include <signal.h>
#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "absl/status/statusor.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "app/stop_signals.h"
#include "common/errno_text.h"
#include "common/fd_limit.h"
#include "inject/injector.h"
#include "inject/webhook_server.h"
#include "spdlog/spdlog.h"

namespace cachecar {
namespace {

constexpr char kInjectHelp[] = R"(cachecar inject: add the cachecar sidecar to Kubernetes manifests.

Usage:
  cachecar inject -f app.yaml > app-injected.yaml
  kubectl get deploy web -o yaml | cachecar inject -f - | kubectl apply -f -

Reads Deployments, StatefulSets, DaemonSets, ReplicaSets, Jobs, CronJobs and
Pods (multi-document YAML) and adds cachecar as a native sidecar (an init
container with restartPolicy: Always; Kubernetes 1.29+) to those whose pod
template is annotated cachecar.io/inject: "true". Every other document is
copied byte for byte; injecting twice changes nothing.

Overrides (pod template annotations): cachecar.io/image,
cachecar.io/config-map (default "cachecar"), cachecar.io/cpu-request,
cachecar.io/memory-request, cachecar.io/memory-limit, cachecar.io/port.

  -f, --filename FILE        the manifests; - for stdin
  --sidecar-template=FILE    the sidecar to add instead of the built-in one
                             (deploy/k8s/sidecar.yaml's shape: initContainer
                             and volumes; the Helm chart renders one)
)";

constexpr char kWebhookHelp[] =
    R"(cachecar webhook: the sidecar-injection admission webhook (HTTPS).

Usage:
  cachecar webhook --webhook-tls-cert=/tls/tls.crt --webhook-tls-key=/tls/tls.key

Serves POST /mutate (AdmissionReview v1 in, JSONPatch out; the same injection
as `cachecar inject`) and GET /healthz. See deploy/k8s/injector/.

  --webhook-listen=HOST:PORT   default 0.0.0.0:8443
  --webhook-tls-cert=FILE      PEM certificate chain
  --webhook-tls-key=FILE       PEM private key
  --sidecar-template=FILE      the sidecar to inject instead of the built-in
                               one (deploy/k8s/sidecar.yaml's shape; the Helm
                               chart mounts its rendering here); read once at
                               start, restart to apply a change

Limits (a slow or greedy client cannot starve the API server's 5 s): a
connection has 3 s for its TLS handshake and whole request and is answered
within 4 s or dropped; bodies over 4 MiB get 413, reviews of more than
100,000 JSON values or nested over 64 deep get 400; at 512 connections the
oldest one still sending is closed for a new one.
)";

// The largest manifest stream inject reads (`-f /dev/zero` must not grow
// without end).
constexpr size_t kMaxManifestBytes = 64 << 20;

// Reads all of `in` up to kMaxManifestBytes; the error says what is wrong.
absl::StatusOr<std::string> ReadAll(std::istream& in, const std::string& name) {
  std::string text;
  char buffer[65536];
  while (in.read(buffer, sizeof(buffer)) || in.gcount() > 0) {
    text.append(buffer, static_cast<size_t>(in.gcount()));
    if (text.size() > kMaxManifestBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " is over ", kMaxManifestBytes >> 20,
                       " MiB; split the manifests into smaller files"));
    }
  }
  if (in.bad()) return absl::InvalidArgumentError(absl::StrCat("cannot read ", name));
  return text;
}

// The manifests named by -f: a regular file (or a device or pipe), or stdin.
absl::StatusOr<std::string> ReadManifests(const std::string& file) {
  if (file == "-") return ReadAll(std::cin, "stdin");
  struct stat st {};
  if (stat(file.c_str(), &st) != 0) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", file, ": ", ErrnoText(errno)));
  }
  if (S_ISDIR(st.st_mode)) {
    return absl::InvalidArgumentError(absl::StrCat(file,
                                                   " is a directory; give one file (e.g. cat ",
                                                   file, "/*.yaml | cachecar inject -f -)"));
  }
  std::ifstream in(file, std::ios::binary);
  if (!in) {
    return absl::InvalidArgumentError(absl::StrCat("cannot read ", file, ": ", ErrnoText(errno)));
  }
  return ReadAll(in, file);
}

// "--name=value" or "--name value"; advances i.
bool TakeValue(const std::vector<std::string>& args, size_t& i, const std::string& name,
               std::string& value) {
  const std::string& arg = args[i];
  if (absl::StartsWith(arg, name + "=")) {
    value = arg.substr(name.size() + 1);
    return true;
  }
  if (arg == name && i + 1 < args.size()) {
    value = args[++i];
    return true;
  }
  return false;
}

// Reads FILE and makes it the sidecar that injection adds; "" keeps the
// built-in one. False (and a message on stderr) when it cannot be used.
bool LoadSidecarTemplate(const std::string& command, const std::string& file) {
  if (file.empty()) return true;
  absl::StatusOr<std::string> text = ReadManifests(file);
  if (!text.ok()) {
    std::cerr << "cachecar " << command << ": --sidecar-template: " << text.status().message()
              << "\n";
    return false;
  }
  const absl::Status status = inject::UseSidecarTemplate(*text);
  if (!status.ok()) {
    std::cerr << "cachecar " << command << ": " << file << ": " << status.message() << "\n";
    return false;
  }
  return true;
}

}  // namespace

int RunInject(const std::vector<std::string>& args) {
  std::string file;
  std::string sidecar_template;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kInjectHelp;
      return 0;
    }
    if (TakeValue(args, i, "-f", file) || TakeValue(args, i, "--filename", file) ||
        TakeValue(args, i, "--sidecar-template", sidecar_template)) {
      continue;
    }
    std::cerr << "cachecar inject: unexpected argument \"" << args[i] << "\"; see --help\n";
    return 2;
  }
  if (file.empty()) {
    std::cerr << "cachecar inject: say which manifests: -f FILE (or -f - for stdin)\n";
    return 2;
  }
  if (!LoadSidecarTemplate("inject", sidecar_template)) return 1;
  absl::StatusOr<std::string> text = ReadManifests(file);
  if (!text.ok()) {
    std::cerr << "cachecar inject: " << text.status().message() << "\n";
    return 1;
  }
  absl::StatusOr<inject::InjectReport> report = inject::InjectManifests(*text);
  if (!report.ok()) {
    std::cerr << "cachecar inject: " << report.status().message() << "\n";
    return 1;
  }
  std::cout << report->output;
  for (const std::string& line : report->lines) std::cerr << line << "\n";
  return 0;
}

int RunWebhook(const std::vector<std::string>& args) {
  inject::WebhookOptions options;
  std::string sidecar_template;
  for (size_t i = 0; i < args.size(); ++i) {
    if (args[i] == "-h" || args[i] == "--help") {
      std::cout << kWebhookHelp;
      return 0;
    }
    if (TakeValue(args, i, "--webhook-listen", options.listen) ||
        TakeValue(args, i, "--webhook-tls-cert", options.cert_file) ||
        TakeValue(args, i, "--webhook-tls-key", options.key_file) ||
        TakeValue(args, i, "--sidecar-template", sidecar_template)) {
      continue;
    }
    std::cerr << "cachecar webhook: unexpected argument \"" << args[i] << "\"; see --help\n";
    return 2;
  }
  // A peer that goes away must never end the process (the server's own
  // writes are safe already; this covers anything else that writes).
  signal(SIGPIPE, SIG_IGN);
  const FdLimit fds = RaiseFdLimit();
  if (fds.now < options.max_connections + 64) {
    options.max_connections = fds.now > 96 ? static_cast<size_t>(fds.now - 64) : 32;
  }
  if (!LoadSidecarTemplate("webhook", sidecar_template)) return 1;
  const sigset_t stop = app::BlockStopSignals();
  absl::StatusOr<std::unique_ptr<inject::WebhookServer>> server =
      inject::WebhookServer::Start(options);
  if (!server.ok()) {
    std::cerr << "cachecar webhook: " << server.status().message() << "\n";
    return 1;
  }
  spdlog::info("webhook serving https on {} (port {}): POST /mutate, GET /healthz", options.listen,
               (*server)->port());
  app::WaitForStopSignal(stop);
  spdlog::info("webhook: stopping");
  server->reset();
  return 0;
}

}  // namespace cachecar
