// yaml-cpp helpers for manifests: re-emitting a document without turning a
// quoted "true" into a boolean, and rendering a document as JSON the way
// Kubernetes reads YAML (plain true/false/null/numbers typed, quoted
// scalars strings, 0444 octal).
#ifndef CACHECAR_INJECT_YAML_TEXT_H_
#define CACHECAR_INJECT_YAML_TEXT_H_

#include <string>

#include "yaml-cpp/yaml.h"

namespace cachecar::inject {

// Block-style YAML for `node`; scalars that were quoted stay quoted.
std::string EmitYaml(const YAML::Node& node);

// Compact JSON for `node`.
std::string ToJson(const YAML::Node& node);

// A JSON string literal for `text`, quotes included.
std::string JsonString(const std::string& text);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_YAML_TEXT_H_
