// See sidecar.h.
#include "inject/sidecar.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "inject/quantity.h"

namespace cachecar::inject {

extern const unsigned char kSidecarYaml[];
extern const size_t kSidecarYamlSize;

namespace {

const YAML::Node& Template() {
  static const YAML::Node* const node = new YAML::Node(
      YAML::Load(std::string(reinterpret_cast<const char*>(kSidecarYaml), kSidecarYamlSize)));
  return *node;
}

std::string Get(const Annotations& annotations, absl::string_view name) {
  auto it = annotations.find(name);
  return it == annotations.end() ? "" : it->second;
}

// A value for an error message, quoted and escaped, and cut short (it may be
// huge): "512Mi", or "1234567890..." (50000 bytes).
std::string Shown(const std::string& value) {
  constexpr size_t kShown = 80;
  if (value.size() <= kShown) return absl::StrCat("\"", absl::CHexEscape(value), "\"");
  return absl::StrCat("\"", absl::CHexEscape(value.substr(0, kShown)), "...\" (", value.size(),
                      " bytes)");
}

YAML::Node QuotedScalar(const std::string& text) {
  YAML::Node n(text);
  n.SetTag("!");
  return n;
}

}  // namespace

bool WantsInjection(const Annotations& annotations) {
  const std::string v = absl::AsciiStrToLower(Get(annotations, "cachecar.io/inject"));
  return v == "true" || v == "enabled";
}

absl::StatusOr<Overrides> ReadOverrides(const Annotations& annotations) {
  Overrides o;
  o.image = Get(annotations, "cachecar.io/image");
  o.config_map = Get(annotations, "cachecar.io/config-map");
  o.cpu_request = Get(annotations, "cachecar.io/cpu-request");
  o.memory_request = Get(annotations, "cachecar.io/memory-request");
  o.memory_limit = Get(annotations, "cachecar.io/memory-limit");
  const std::string port = Get(annotations, "cachecar.io/port");
  if (!o.image.empty() &&
      (o.image.find_first_of(" \t\n") != std::string::npos || o.image.size() > 512)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/image ", Shown(o.image), " is not an image name"));
  }
  if (!o.config_map.empty() && !IsDnsSubdomain(o.config_map)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/config-map ", Shown(o.config_map),
                     " is not a ConfigMap name (lower-case letters, digits, - and .)"));
  }
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"cachecar.io/cpu-request", &o.cpu_request},
        {"cachecar.io/memory-request", &o.memory_request},
        {"cachecar.io/memory-limit", &o.memory_limit}}) {
    if (!value->empty() && !IsKubernetesQuantity(*value)) {
      return absl::InvalidArgumentError(absl::StrCat(
          name, " ", Shown(*value), " is not a Kubernetes quantity (e.g. 250m, 512Mi, 1Gi)"));
    }
  }
  if (!port.empty() &&
      (port.size() > 5 || !absl::SimpleAtoi(port, &o.port) || o.port < 1 || o.port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/port ", Shown(port), " is not a port (1-65535)"));
  }
  return o;
}

YAML::Node SidecarContainer(const Overrides& o) {
  YAML::Node c = YAML::Clone(Template()["initContainer"]);
  if (!o.image.empty()) c["image"] = QuotedScalar(o.image);
  if (!o.cpu_request.empty()) c["resources"]["requests"]["cpu"] = QuotedScalar(o.cpu_request);
  if (!o.memory_request.empty()) {
    c["resources"]["requests"]["memory"] = QuotedScalar(o.memory_request);
  }
  if (!o.memory_limit.empty()) c["resources"]["limits"]["memory"] = QuotedScalar(o.memory_limit);
  if (o.port != 0) c["args"].push_back(QuotedScalar(absl::StrCat("--listen=127.0.0.1:", o.port)));
  return c;
}

std::vector<YAML::Node> SidecarVolumes(const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& v : Template()["volumes"]) {
    YAML::Node copy = YAML::Clone(v);
    if (!o.config_map.empty() && copy["configMap"]) {
      copy["configMap"]["name"] = QuotedScalar(o.config_map);
    }
    out.push_back(copy);
  }
  return out;
}

}  // namespace cachecar::inject
