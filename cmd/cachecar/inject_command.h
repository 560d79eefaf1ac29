// `cachecar inject` and `cachecar webhook`: argument parsing and I/O around
// src/inject. Return the process exit code.
#ifndef CACHECAR_CMD_CACHECAR_INJECT_COMMAND_H_
#define CACHECAR_CMD_CACHECAR_INJECT_COMMAND_H_

#include <string>
#include <vector>

namespace cachecar {

// cachecar inject -f FILE|- : manifests in, manifests with the sidecar out
// (stdout); one line per workload on stderr.
int RunInject(const std::vector<std::string>& args);

// cachecar webhook --webhook-listen=ADDR --webhook-tls-cert=PEM
// --webhook-tls-key=PEM : the mutating admission webhook over HTTPS.
int RunWebhook(const std::vector<std::string>& args);

}  // namespace cachecar

#endif  // CACHECAR_CMD_CACHECAR_INJECT_COMMAND_H_
