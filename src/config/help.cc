// HelpText and DescribeConfig: the option table rendered for people.

#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "config/config.h"
#include "config/options.h"

namespace cachecar::config {
namespace {

constexpr size_t kWidth = 79;

constexpr char kUsage[] = R"(cachecar: a cache sidecar served over gRPC.

Usage:
  cachecar [serve] [options]   serve the cache (serve is the default)
  cachecar migrate [options]   create or update the PostgreSQL schema (tables,
                               version sequence, outbox, triggers) and exit
  cachecar check-config [opts] load and check the config as serve would (no
                               connections), print it (secrets redacted), exit
  cachecar inject -f FILE|-    add the cachecar sidecar to Kubernetes manifests
                               (see cachecar inject --help)
  cachecar webhook [options]   the sidecar-injection admission webhook (HTTPS;
                               see cachecar webhook --help)
  cachecar version             print the version and exit
  cachecar help                print this help and exit

  -h, --help                   print this help and exit
  --version                    print the version and exit

Options (each can be a flag, a CACHECAR_* environment variable, or a key in
the YAML file):
)";

constexpr char kRules[] = R"(
Precedence: flags override environment variables, which override the YAML
file (--config PATH or CACHECAR_CONFIG), which overrides the defaults. A list
given in a higher source (--listen, --namespace) replaces the lower one's.

Flags take --name=value or --name value; --listen and --namespace repeat, and
they, CACHECAR_LISTEN and CACHECAR_NAMESPACES also take comma-separated lists
(CACHECAR_NAMESPACES=sessions:30m:0.25,users). An empty variable counts as
unset. Unknown flags, YAML keys and CACHECAR_* variables are errors, except
CACHECAR_PORT* and CACHECAR_SERVICE_*, which Kubernetes sets for a Service
named cachecar.

Sizes: 1048576, 64KiB, 256MiB, 1GiB (KB/MB/GB and Ki/Mi/Gi are powers of 2).
Durations: 0, 500ms, 10s, 2m, 1h, 1h30m.
Namespaces: an empty namespace in a request means "default", which exists
even when not declared; a namespace without max_bytes_share shares what the
others leave of max_bytes. With store: postgres, a namespace in the YAML
file may name an existing table (table, key_column, value_column); migrate
adds a cachecar_version column and triggers to it. A namespace with
replicated: true (YAML only; sync: update, no ttl) is held whole by every
replica: loaded at start (readiness waits for it), kept current from the
sync topic, absent keys answered without a store read; it must fit its
share of max_bytes.

Example YAML file:
)";

// Word-wraps `text` to kWidth with every line starting with `indent`.
std::string Wrap(absl::string_view text, absl::string_view indent) {
  std::string out;
  std::string line(indent);
  for (absl::string_view word : absl::StrSplit(text, ' ', absl::SkipEmpty())) {
    if (line.size() > indent.size() && line.size() + 1 + word.size() > kWidth) {
      absl::StrAppend(&out, line, "\n");
      line = std::string(indent);
    }
    if (line.size() > indent.size()) line += ' ';
    absl::StrAppend(&line, word);
  }
  absl::StrAppend(&out, line, "\n");
  return out;
}

std::string DescribeOption(const Option& option, const Config& defaults) {
  const std::string default_text = option.show(defaults);
  std::string out = absl::StrCat("  ", option.flag, "=", ValuePlaceholder(option), "\n");
  const std::string yaml =
      absl::StrCat("yaml ", option.yaml_key.empty() ? "(none: not in the file)" : option.yaml_key,
                   ", default ", default_text.empty() ? "(none)" : default_text);
  const std::string one_line = absl::StrCat("      env ", option.env, ", ", yaml);
  if (one_line.size() <= kWidth) {
    absl::StrAppend(&out, one_line, "\n");
  } else {
    absl::StrAppend(&out, "      env ", option.env, "\n      ", yaml, "\n");
  }
  absl::StrAppend(&out, Wrap(option.help, "      "));
  return out;
}

}  // namespace

std::string HelpText() {
  const Config defaults;
  std::string out = kUsage;
  for (const Option& option : Options()) {
    absl::StrAppend(&out, "\n", DescribeOption(option, defaults));
  }
  absl::StrAppend(&out, kRules);
  for (absl::string_view line : absl::StrSplit(kExampleYaml, '\n')) {
    if (!line.empty()) absl::StrAppend(&out, "  ", line, "\n");
  }
  return out;
}

std::string DescribeConfig(const Config& config) {
  std::vector<std::string> parts;
  for (const Option& option : Options()) {
    const std::string value = option.show(config);
    if (value.empty()) continue;  // unset (no config file): nothing to say
    parts.push_back(absl::StrCat(option.name, "=", value));
  }
  return absl::StrJoin(parts, " ");
}

}  // namespace cachecar::config
