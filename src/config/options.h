// Internal to src/config: the option table. One row per option says how it is
// spelled as a flag, an environment variable and a YAML key, how its value is
// parsed and printed, and what --help says about it. Loading, --help and the
// tests all walk this table, so a new Config field needs one new row.
//
// Thread-safety: the table is immutable after first use.
#ifndef CACHECAR_CONFIG_OPTIONS_H_
#define CACHECAR_CONFIG_OPTIONS_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "config/config.h"

namespace cachecar::config {

enum class ValueKind {
  kText,           // free text; Validate checks the allowed values
  kPath,           // a file path
  kAddressList,    // repeatable; comma-separated in one value
  kBytes,          // ParseBytes forms
  kCount,          // a whole number
  kDuration,       // ParseDuration forms
  kNamespaceList,  // repeatable; name[:ttl[:share]], comma-separated
  kBool,           // true|false; a bare flag means true
  kSecret,         // text shown redacted (a DSN)
  kPropertyList,   // repeatable; name=value, comma-separated; YAML map too
};

struct Option {
  absl::string_view name;      // in errors and Config::sources
  absl::string_view flag;      // "--max-bytes"
  absl::string_view env;       // "CACHECAR_MAX_BYTES"
  absl::string_view yaml_key;  // "max_bytes"; empty: not settable in the file
  ValueKind kind;
  absl::string_view placeholder;  // "s3fifo|lru"; empty: by kind ("SIZE")
  absl::string_view help;         // one line for --help
  // Parses `text` into the config (repeatable options append). Errors carry
  // the reason only; the caller adds the field and source.
  absl::Status (*set)(Config& config, absl::string_view text);
  // The current value as text `set` accepts; --help shows it for Config{}.
  std::string (*show)(const Config& config);
  // Repeatable options only, else null: empties the field before a source's
  // values apply, so a higher-precedence source replaces, not extends.
  void (*clear)(Config& config);

  bool repeatable() const { return clear != nullptr; }
};

// Every option, in --help order.
const std::vector<Option>& Options();

// Lookups; null when there is no such option.
const Option* FindOptionByFlag(absl::string_view flag);
const Option* FindOptionByEnv(absl::string_view env);
const Option* FindOptionByYamlKey(absl::string_view key);

// What the value looks like: "SIZE" for --help, and the form for errors.
absl::string_view ValuePlaceholder(const Option& option);
absl::string_view ExpectedForm(ValueKind kind);

// " (did you mean --max-bytes?)" when one of `candidates` is close enough to
// `word` to be a typo of it; empty otherwise.
std::string DidYouMean(absl::string_view word, const std::vector<absl::string_view>& candidates);

// "config: max_bytes (from CACHECAR_MAX_BYTES): <reason>" as InvalidArgument;
// the "(from ...)" part is left out when `source` is empty.
std::string FieldErrorText(absl::string_view field, absl::string_view source,
                           absl::string_view reason);
absl::Status FieldError(absl::string_view field, absl::string_view source,
                        absl::string_view reason);

// The example file in --help; the tests load it.
extern const char kExampleYaml[];

}  // namespace cachecar::config

#endif  // CACHECAR_CONFIG_OPTIONS_H_
