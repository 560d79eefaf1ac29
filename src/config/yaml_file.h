// Internal to src/config: applies a YAML config file to a Config. Keys are
// the option table's yaml_key; unknown keys, duplicate keys and values of the
// wrong shape are errors that name the key, the file and the line.
//
// Thread-safety: no shared state.
#ifndef CACHECAR_CONFIG_YAML_FILE_H_
#define CACHECAR_CONFIG_YAML_FILE_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "config/config.h"

namespace cachecar::config {

// Reads `path` and applies every key in it to `config`, recording
// "path:line" in config.sources. `path_source` says where the path came from
// ("--config" or "CACHECAR_CONFIG") for errors about reading the file.
absl::Status ApplyYamlFile(const std::string& path, absl::string_view path_source, Config& config);

// The same for a file's text already read; `path` names it in errors (the
// fuzz target drives this).
absl::Status ApplyYamlText(absl::string_view text, const std::string& path, Config& config);

}  // namespace cachecar::config

#endif  // CACHECAR_CONFIG_YAML_FILE_H_
