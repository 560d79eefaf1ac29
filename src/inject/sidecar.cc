// See sidecar.h.
#include "inject/sidecar.h"

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/yaml_bounds.h"
#include "inject/injector.h"
#include "inject/quantity.h"

namespace cachecar::inject {

extern const unsigned char kSidecarYaml[];
extern const size_t kSidecarYamlSize;

namespace {

YAML::Node EmbeddedTemplate() {
  return YAML::Load(std::string(reinterpret_cast<const char*>(kSidecarYaml), kSidecarYamlSize));
}

// The sidecar in use: the embedded one, or UseSidecarTemplate's.
YAML::Node& Template() {
  static YAML::Node* const node = new YAML::Node(EmbeddedTemplate());
  return *node;
}

// Why `t` cannot serve as the sidecar template, or "" when it can.
std::string TemplateProblem(const YAML::Node& t) {
  if (!t.IsMap()) return "not a YAML mapping with initContainer and volumes";
  const YAML::Node c = t["initContainer"];
  if (!c || !c.IsMap()) return "initContainer is missing or not a mapping";
  if (!c["name"] || !c["name"].IsScalar() || c["name"].Scalar() != kSidecarName) {
    return absl::StrCat("initContainer.name must be \"", kSidecarName,
                        "\" (that name is how a second injection is recognised)");
  }
  if (!c["image"] || !c["image"].IsScalar() || c["image"].Scalar().empty()) {
    return "initContainer.image is missing";
  }
  if (c["args"] && !c["args"].IsSequence()) return "initContainer.args is not a list";
  const YAML::Node v = t["volumes"];
  if (!v || !v.IsSequence()) return "volumes is missing or not a list";
  for (const YAML::Node& volume : v) {
    if (!volume.IsMap() || !volume["name"] || !volume["name"].IsScalar()) {
      return "every entry of volumes needs a name";
    }
  }
  return "";
}

// Where the sidecar's emptyDir (cachecar-run) puts the API's unix socket.
constexpr absl::string_view kPodSocket = "unix:///run/cachecar/cachecar.sock";

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
  const std::string local = absl::AsciiStrToLower(Get(annotations, "cachecar.io/local-reads"));
  if (local == "false" || local == "disabled") {
    o.local_reads = false;
  } else if (!local.empty() && local != "true" && local != "enabled") {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/local-reads ", Shown(local), " is not true or false"));
  }
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
  if (o.port != 0) {
    // --listen replaces the ConfigMap's list: keep the pod's unix socket
    // (the faster transport, docs/BENCHMARKS.md) beside the TCP port.
    c["args"].push_back(QuotedScalar(absl::StrCat("--listen=127.0.0.1:", o.port)));
    c["args"].push_back(QuotedScalar(absl::StrCat("--listen=", kPodSocket)));
  }
  if (!o.local_reads) {
    YAML::Node args(YAML::NodeType::Sequence);
    for (const YAML::Node& a : c["args"]) {
      if (!a.IsScalar() || !absl::StartsWith(a.Scalar(), kLocalFlag)) args.push_back(a);
    }
    c["args"] = args;
    YAML::Node mounts(YAML::NodeType::Sequence);
    for (const YAML::Node& m : c["volumeMounts"]) {
      if (!m.IsMap() || !m["name"] || !m["name"].IsScalar() || m["name"].Scalar() != kLocalVolume) {
        mounts.push_back(m);
      }
    }
    c["volumeMounts"] = mounts;
  }
  return c;
}

std::vector<YAML::Node> SidecarVolumes(const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& v : Template()["volumes"]) {
    if (!o.local_reads && v["name"].Scalar() == kLocalVolume) continue;
    YAML::Node copy = YAML::Clone(v);
    if (!o.config_map.empty() && copy["configMap"]) {
      copy["configMap"]["name"] = QuotedScalar(o.config_map);
    }
    out.push_back(copy);
  }
  return out;
}

namespace {

// The template's list `field` (appVolumeMounts, appEnv) of mappings with a
// scalar name, with local reads; entries that are not are skipped.
std::vector<YAML::Node> AppTemplateList(const char* field, const Overrides& o) {
  std::vector<YAML::Node> out;
  const YAML::Node list = Template()[field];
  if (!o.local_reads || !list || !list.IsSequence()) return out;
  for (const YAML::Node& item : list) {
    if (item.IsMap() && item["name"] && item["name"].IsScalar()) out.push_back(YAML::Clone(item));
  }
  return out;
}

}  // namespace

std::vector<YAML::Node> MissingAppMounts(const AppContainerHas& has, const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& m : AppTemplateList("appVolumeMounts", o)) {
    const bool has_path = m["mountPath"] && m["mountPath"].IsScalar() &&
                          has.mount_paths.count(m["mountPath"].Scalar()) > 0;
    if (has.mount_names.count(m["name"].Scalar()) == 0 && !has_path) out.push_back(m);
  }
  return out;
}

std::vector<YAML::Node> MissingAppEnv(const AppContainerHas& has, const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& e : AppTemplateList("appEnv", o)) {
    if (has.env_names.count(e["name"].Scalar()) == 0) out.push_back(e);
  }
  return out;
}

absl::Status UseSidecarTemplate(absl::string_view yaml) {
  if (yaml.empty()) {
    Template().reset(EmbeddedTemplate());
    return absl::OkStatus();
  }
  // The operator's file, but still bounded like any YAML we read.
  if (absl::Status bounded = CheckYamlBounds(yaml, YamlBounds{}); !bounded.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("sidecar template: not valid YAML: ", bounded.message()));
  }
  YAML::Node t;
  try {
    t = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("sidecar template: not valid YAML: ", e.what()));
  }
  const std::string problem = TemplateProblem(t);
  if (!problem.empty()) {
    return absl::InvalidArgumentError(absl::StrCat("sidecar template: ", problem));
  }
  Template().reset(t);
  return absl::OkStatus();
}

}  // namespace cachecar::inject
