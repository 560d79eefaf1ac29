// LoadConfig: gathers flags and CACHECAR_* variables, applies the layers from
// lowest to highest precedence (defaults, file, env, flags), then validates.

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/errno_text.h"
#include "config/config.h"
#include "config/options.h"
#include "config/values.h"
#include "config/yaml_file.h"

extern char** environ;

namespace cachecar::config {
namespace {

constexpr absl::string_view kEnvPrefix = "CACHECAR_";

// One value for one option, before it is applied.
struct Setting {
  const Option* option;
  std::string text;
  std::string source;  // "--max-bytes" or "CACHECAR_MAX_BYTES"
};

std::string SuggestOption(absl::string_view word, absl::string_view Option::*spelling) {
  std::vector<absl::string_view> names;
  for (const Option& option : Options()) names.push_back(option.*spelling);
  return DidYouMean(word, names);
}

bool IsHelp(absl::string_view arg) { return arg == "--help" || arg == "-h"; }
bool IsVersion(absl::string_view arg) { return arg == "--version"; }

absl::StatusOr<std::vector<Setting>> ReadFlags(const std::vector<std::string>& argv) {
  std::vector<Setting> settings;
  for (size_t i = 0; i < argv.size(); ++i) {
    const std::string& arg = argv[i];
    if (arg == "--" && i + 1 == argv.size()) break;
    if (arg.size() < 2 || arg[0] != '-' || arg == "--") {
      const std::string& positional = arg == "--" ? argv[i + 1] : arg;
      return absl::InvalidArgumentError(
          absl::StrCat("config: unexpected argument ", Quote(positional),
                       " (a subcommand goes first: cachecar serve [options]); see --help"));
    }
    const size_t equals = arg.find('=');
    const std::string name = arg.substr(0, equals);
    const Option* option = FindOptionByFlag(name);
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat(
          "config: unknown flag ", name, SuggestOption(name, &Option::flag), "; see --help"));
    }
    std::string value;
    if (equals != std::string::npos) {
      value = arg.substr(equals + 1);
    } else if (option->kind == ValueKind::kBool) {
      // A bare boolean flag means true; "--migrate false" also works.
      const bool next_is_bool =
          i + 1 < argv.size() && (argv[i + 1] == "true" || argv[i + 1] == "false");
      value = next_is_bool ? argv[++i] : "true";
    } else if (i + 1 < argv.size() && !absl::StartsWith(argv[i + 1], "--")) {
      value = argv[++i];
    } else {
      return FieldError(option->name, name,
                        absl::StrCat("needs a value: ", name, "=", ValuePlaceholder(*option),
                                     " or ", name, " ", ValuePlaceholder(*option)));
    }
    settings.push_back({option, std::move(value), name});
  }
  return settings;
}

// Kubernetes sets service-link variables for every Service in the pod's
// namespace: a Service named "cachecar" or "cachecar-injector" gives
// CACHECAR_PORT, CACHECAR_INJECTOR_SERVICE_HOST, CACHECAR_INJECTOR_PORT_443_TCP
// and so on. They are not ours and must not stop start-up.
bool IsServiceLinkVariable(absl::string_view name) {
  if (absl::StrContains(name, "_SERVICE_HOST") || absl::StrContains(name, "_SERVICE_PORT") ||
      absl::EndsWith(name, "_PORT")) {
    return true;
  }
  // ..._PORT_<number>_<TCP|UDP|SCTP>[_PROTO|_PORT|_ADDR]
  const size_t at = name.rfind("_PORT_");
  if (at == absl::string_view::npos) return false;
  absl::string_view rest = name.substr(at + 6);
  size_t digits = 0;
  while (digits < rest.size() && absl::ascii_isdigit(static_cast<unsigned char>(rest[digits]))) {
    ++digits;
  }
  if (digits == 0) return false;
  rest.remove_prefix(digits);
  for (absl::string_view proto : {"_TCP", "_UDP", "_SCTP"}) {
    if (!absl::StartsWith(rest, proto)) continue;
    rest.remove_prefix(proto.size());
    return rest.empty() || rest == "_PROTO" || rest == "_PORT" || rest == "_ADDR";
  }
  return false;
}

absl::StatusOr<std::vector<Setting>> ReadEnv(const std::map<std::string, std::string>& env) {
  std::vector<Setting> settings;
  for (const auto& [name, value] : env) {
    if (!absl::StartsWith(name, kEnvPrefix)) continue;
    const Option* option = FindOptionByEnv(name);
    // Not options: Kubernetes service links, and the test-only fault point.
    if (option == nullptr && (IsServiceLinkVariable(name) || name == "CACHECAR_FAULT_POINT")) {
      continue;
    }
    if (option == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("config: unknown environment variable ", name,
                                                     SuggestOption(name, &Option::env),
                                                     "; see --help"));
    }
    // VAR= in a manifest usually means "not set", not "set to nothing".
    if (absl::StripAsciiWhitespace(value).empty()) continue;
    settings.push_back({option, value, name});
  }
  return settings;
}

// Applies one source's settings. A repeatable option is emptied on its first
// setting here, so this source's list replaces a lower source's list.
absl::Status ApplySettings(const std::vector<Setting>& settings, Config& config) {
  std::vector<const Option*> cleared;
  for (const Setting& s : settings) {
    const Option& option = *s.option;
    if (option.repeatable() &&
        std::find(cleared.begin(), cleared.end(), &option) == cleared.end()) {
      option.clear(config);
      cleared.push_back(&option);
    }
    absl::Status status = option.set(config, s.text);
    if (!status.ok()) {
      return FieldError(option.name, s.source, status.message());
    }
    config.sources[std::string(option.name)] = s.source;
  }
  return absl::OkStatus();
}

// The last --config wins over CACHECAR_CONFIG; null if neither is set.
const Setting* FindConfigFile(const std::vector<Setting>& flags, const std::vector<Setting>& env) {
  const Option* config_option = FindOptionByFlag("--config");
  for (const auto* settings : {&flags, &env}) {
    for (auto it = settings->rbegin(); it != settings->rend(); ++it) {
      if (it->option == config_option) return &*it;
    }
  }
  return nullptr;
}

// postgres_dsn_file: the DSN comes from a file (a mounted Secret); trailing
// whitespace and newlines are dropped.
absl::Status ReadDsnFile(Config& config) {
  if (config.postgres_dsn_file.empty()) return absl::OkStatus();
  const std::string& source = config.sources["postgres_dsn_file"];
  if (!config.postgres_dsn.empty()) {
    return FieldError("postgres_dsn_file", source,
                      absl::StrCat("postgres_dsn is also set (from ",
                                   config.sources["postgres_dsn"], "); set only one"));
  }
  std::FILE* file = std::fopen(config.postgres_dsn_file.c_str(), "rb");
  if (file == nullptr) {
    return FieldError(
        "postgres_dsn_file", source,
        absl::StrCat("cannot read ", Quote(config.postgres_dsn_file), ": ", ErrnoText(errno)));
  }
  std::string text;
  char buffer[4096];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) text.append(buffer, n);
  std::fclose(file);
  config.postgres_dsn = std::string(absl::StripAsciiWhitespace(text));
  if (config.postgres_dsn.empty()) {
    return FieldError("postgres_dsn_file", source,
                      absl::StrCat(Quote(config.postgres_dsn_file), " is empty"));
  }
  config.sources["postgres_dsn"] = config.postgres_dsn_file;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<LoadResult> LoadConfig(const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env) {
  LoadResult result;
  for (const std::string& arg : argv) {
    if (arg == "--") break;
    result.help = result.help || IsHelp(arg);
    result.version = result.version || IsVersion(arg);
  }
  if (result.help || result.version) return result;

  absl::StatusOr<std::vector<Setting>> flags = ReadFlags(argv);
  if (!flags.ok()) return flags.status();
  absl::StatusOr<std::vector<Setting>> env_settings = ReadEnv(env);
  if (!env_settings.ok()) return env_settings.status();

  Config& config = result.config;
  for (const Option& option : Options()) {
    config.sources[std::string(option.name)] = "default";
  }
  if (const Setting* file = FindConfigFile(*flags, *env_settings)) {
    absl::Status status =
        ApplyYamlFile(std::string(absl::StripAsciiWhitespace(file->text)), file->source, config);
    if (!status.ok()) return status;
  }
  for (const auto* settings : {&*env_settings, &*flags}) {
    absl::Status status = ApplySettings(*settings, config);
    if (!status.ok()) return status;
  }
  if (absl::Status s = ReadDsnFile(config); !s.ok()) return s;
  absl::Status status = Validate(config);
  if (!status.ok()) return status;
  return result;
}

std::map<std::string, std::string> ProcessEnvironment() {
  std::map<std::string, std::string> env;
  for (char** entry = environ; entry != nullptr && *entry != nullptr; ++entry) {
    const absl::string_view text(*entry);
    const size_t equals = text.find('=');
    if (equals == absl::string_view::npos) continue;
    env.emplace(text.substr(0, equals), text.substr(equals + 1));
  }
  return env;
}

}  // namespace cachecar::config
