// yaml-cpp helpers for manifests: re-emitting a document without turning a
// quoted "true" into a boolean, and rendering a document as JSON the way
// Kubernetes reads YAML (plain true/false/null/numbers typed, quoted
// scalars strings, 0444 octal).
#ifndef CACHECAR_INJECT_YAML_TEXT_H_
#define CACHECAR_INJECT_YAML_TEXT_H_

#include <string>

#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace cachecar::inject {

// Block-style YAML for `node`; scalars that were quoted stay quoted.
std::string EmitYaml(const YAML::Node& node);

// `node` as JSON (keys in the document's order).
nlohmann::ordered_json ToJson(const YAML::Node& node);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_YAML_TEXT_H_
