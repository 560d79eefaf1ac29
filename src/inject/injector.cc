// See injector.h.
#include "inject/injector.h"

#include <regex>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "inject/yaml_text.h"
#include "yaml-cpp/yaml.h"

namespace cachecar::inject {

extern const unsigned char kSidecarYaml[];
extern const size_t kSidecarYamlSize;

namespace {

constexpr absl::string_view kSidecarName = "cachecar";
// The published cache's volume and the flag that turns local reads on
// (docs/LOCAL_READS.md); cachecar.io/local-reads: "false" leaves them out.
constexpr absl::string_view kLocalVolume = "cachecar-local";
constexpr absl::string_view kLocalFlag = "--local-read-path";

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

struct Overrides {
  std::string image, config_map, cpu_request, memory_request, memory_limit;
  int port = 0;
  bool local_reads = true;
};

// n[key], or a null node when n is not a map or has no such key (yaml-cpp
// would hand back an "invalid" node that throws on the next access).
YAML::Node Child(const YAML::Node& n, const std::string& key) {
  if (!n || !n.IsMap()) return YAML::Node();
  const YAML::Node c = n[key];
  return c ? c : YAML::Node();
}

std::string Annotation(const YAML::Node& annotations, const std::string& name) {
  const YAML::Node v = Child(annotations, name);
  return v.IsScalar() ? v.Scalar() : "";
}

absl::StatusOr<Overrides> ReadOverrides(const YAML::Node& annotations) {
  static const std::regex kQuantity("^[0-9]+(\\.[0-9]+)?(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$");
  static const std::regex kDnsName("^[a-z0-9]([-a-z0-9.]{0,251}[a-z0-9])?$");
  Overrides o;
  o.image = Annotation(annotations, "cachecar.io/image");
  o.config_map = Annotation(annotations, "cachecar.io/config-map");
  o.cpu_request = Annotation(annotations, "cachecar.io/cpu-request");
  o.memory_request = Annotation(annotations, "cachecar.io/memory-request");
  o.memory_limit = Annotation(annotations, "cachecar.io/memory-limit");
  const std::string port = Annotation(annotations, "cachecar.io/port");
  const std::string local =
      absl::AsciiStrToLower(Annotation(annotations, "cachecar.io/local-reads"));
  if (local == "false" || local == "disabled") {
    o.local_reads = false;
  } else if (!local.empty() && local != "true" && local != "enabled") {
    return absl::InvalidArgumentError(absl::StrCat(
        "cachecar.io/local-reads \"", absl::CHexEscape(local), "\" is not true or false"));
  }
  if (!o.image.empty() &&
      (o.image.find_first_of(" \t\n") != std::string::npos || o.image.size() > 512)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/image \"", absl::CHexEscape(o.image), "\" is not an image name"));
  }
  if (!o.config_map.empty() && !std::regex_match(o.config_map, kDnsName)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/config-map \"", absl::CHexEscape(o.config_map),
                     "\" is not a ConfigMap name (lower-case letters, digits, - and .)"));
  }
  for (const auto& [name, value] :
       {std::pair<const char*, const std::string*>{"cachecar.io/cpu-request", &o.cpu_request},
        {"cachecar.io/memory-request", &o.memory_request},
        {"cachecar.io/memory-limit", &o.memory_limit}}) {
    if (!value->empty() && !std::regex_match(*value, kQuantity)) {
      return absl::InvalidArgumentError(
          absl::StrCat(name, " \"", absl::CHexEscape(*value),
                       "\" is not a Kubernetes quantity (e.g. 250m, 512Mi, 1Gi)"));
    }
  }
  if (!port.empty() && (!absl::SimpleAtoi(port, &o.port) || o.port < 1 || o.port > 65535)) {
    return absl::InvalidArgumentError(
        absl::StrCat("cachecar.io/port \"", absl::CHexEscape(port), "\" is not a port (1-65535)"));
  }
  return o;
}

YAML::Node QuotedScalar(const std::string& text) {
  YAML::Node n(text);
  n.SetTag("!");
  return n;
}

// Where the sidecar's emptyDir (cachecar-run) puts the API's unix socket.
constexpr absl::string_view kPodSocket = "unix:///run/cachecar/cachecar.sock";

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
      if (!absl::StartsWith(a.Scalar(), kLocalFlag)) args.push_back(a);
    }
    c["args"] = args;
    YAML::Node mounts(YAML::NodeType::Sequence);
    for (const YAML::Node& m : c["volumeMounts"]) {
      if (m["name"].Scalar() != kLocalVolume) mounts.push_back(m);
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

// What every app container gets: the published cache mounted read-only and
// its path in the environment (the client libraries' default).
std::vector<YAML::Node> AppVolumeMounts(const Overrides& o) {
  std::vector<YAML::Node> out;
  if (!o.local_reads) return out;
  for (const YAML::Node& m : Template()["appVolumeMounts"]) out.push_back(YAML::Clone(m));
  return out;
}
std::vector<YAML::Node> AppEnv(const Overrides& o) {
  std::vector<YAML::Node> out;
  if (!o.local_reads) return out;
  for (const YAML::Node& e : Template()["appEnv"]) out.push_back(YAML::Clone(e));
  return out;
}

bool HasNamed(const YAML::Node& list, absl::string_view name) {
  if (!list || !list.IsSequence()) return false;
  for (const YAML::Node& item : list) {
    if (item.IsMap() && item["name"] && item["name"].IsScalar() && item["name"].Scalar() == name) {
      return true;
    }
  }
  return false;
}

bool HasMountPath(const YAML::Node& mounts, absl::string_view path) {
  if (!mounts || !mounts.IsSequence()) return false;
  for (const YAML::Node& m : mounts) {
    if (m.IsMap() && m["mountPath"] && m["mountPath"].IsScalar() &&
        m["mountPath"].Scalar() == path) {
      return true;
    }
  }
  return false;
}

// The app mounts and env vars `container` lacks (an app that mounts
// something else at the same path, or sets the variable itself, keeps its own).
std::vector<YAML::Node> MissingMounts(const YAML::Node& container, const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& m : AppVolumeMounts(o)) {
    if (!HasNamed(container["volumeMounts"], m["name"].Scalar()) &&
        !HasMountPath(container["volumeMounts"], m["mountPath"].Scalar())) {
      out.push_back(m);
    }
  }
  return out;
}
std::vector<YAML::Node> MissingEnv(const YAML::Node& container, const Overrides& o) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& e : AppEnv(o)) {
    if (!HasNamed(container["env"], e["name"].Scalar())) out.push_back(e);
  }
  return out;
}

bool AlreadyInjected(const YAML::Node& spec) {
  return HasNamed(spec["initContainers"], kSidecarName) ||
         HasNamed(spec["containers"], kSidecarName);
}

bool Wants(const YAML::Node& annotations) {
  const std::string v =
      absl::AsciiStrToLower(Annotation(annotations, std::string(kInjectAnnotation)));
  return v == "true" || v == "enabled";
}

// Where a workload keeps its pod template: {metadata, spec} nodes.
struct PodTemplate {
  YAML::Node metadata;
  YAML::Node spec;
  bool found = false;
};

PodTemplate FindPodTemplate(YAML::Node doc) {
  PodTemplate t;
  if (!doc.IsMap() || !doc["kind"] || !doc["kind"].IsScalar()) return t;
  const std::string kind = doc["kind"].Scalar();
  YAML::Node holder;
  if (kind == "Pod") {
    holder = doc;
  } else if (kind == "Deployment" || kind == "StatefulSet" || kind == "DaemonSet" ||
             kind == "ReplicaSet" || kind == "Job") {
    if (doc["spec"] && doc["spec"]["template"]) holder = doc["spec"]["template"];
  } else if (kind == "CronJob") {
    if (doc["spec"] && doc["spec"]["jobTemplate"] && doc["spec"]["jobTemplate"]["spec"] &&
        doc["spec"]["jobTemplate"]["spec"]["template"]) {
      holder = doc["spec"]["jobTemplate"]["spec"]["template"];
    }
  }
  if (!holder || !holder.IsMap() || !holder["spec"] || !holder["spec"].IsMap()) return t;
  t.metadata = Child(holder, "metadata");
  t.spec = holder["spec"];
  t.found = true;
  return t;
}

std::string Describe(const YAML::Node& doc) {
  std::string name = "?";
  if (doc["metadata"] && doc["metadata"]["name"] && doc["metadata"]["name"].IsScalar()) {
    name = doc["metadata"]["name"].Scalar();
  }
  return absl::StrCat(absl::AsciiStrToLower(doc["kind"].Scalar()), "/", name);
}

// Splits a multi-document stream at "---" lines, keeping every byte: each
// part but the first starts with its separator line.
std::vector<std::string> SplitDocuments(absl::string_view text) {
  std::vector<std::string> parts(1);
  size_t i = 0;
  while (i < text.size()) {
    size_t end = text.find('\n', i);
    end = end == absl::string_view::npos ? text.size() : end + 1;
    const absl::string_view line = text.substr(i, end - i);
    const bool separator =
        line.substr(0, 3) == "---" && (line.size() == 3 || line[3] == '\n' || line[3] == ' ' ||
                                       line[3] == '\r' || line[3] == '\t');
    if (separator) parts.emplace_back();
    parts.back().append(line.data(), line.size());
    i = end;
  }
  return parts;
}

// The separator line a part starts with ("---\n"), or "".
std::string SeparatorOf(const std::string& part) {
  if (part.rfind("---", 0) != 0) return "";
  const size_t nl = part.find('\n');
  return nl == std::string::npos ? part + "\n" : part.substr(0, nl + 1);
}

}  // namespace

// The bodies; yaml-cpp throws on shapes they did not expect.
static absl::StatusOr<InjectReport> InjectManifestsOrThrow(absl::string_view yaml);
static absl::StatusOr<std::string> ReviewAdmissionOrThrow(absl::string_view review_json);

absl::StatusOr<InjectReport> InjectManifests(absl::string_view yaml) {
  try {
    return InjectManifestsOrThrow(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("manifest has an unexpected shape: ", e.what()));
  }
}

absl::StatusOr<std::string> ReviewAdmission(absl::string_view review_json) {
  try {
    return ReviewAdmissionOrThrow(review_json);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrCat("AdmissionReview has an unexpected shape: ", e.what()));
  }
}

absl::Status UseSidecarTemplate(absl::string_view yaml) {
  if (yaml.empty()) {
    Template().reset(EmbeddedTemplate());
    return absl::OkStatus();
  }
  YAML::Node t;
  try {
    t = YAML::Load(std::string(yaml));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("sidecar template: not valid YAML: ", e.what()));
  }
  const std::string problem = TemplateProblem(t);
  if (!problem.empty())
    return absl::InvalidArgumentError(absl::StrCat("sidecar template: ", problem));
  Template().reset(t);
  return absl::OkStatus();
}

static absl::StatusOr<InjectReport> InjectManifestsOrThrow(absl::string_view yaml) {
  InjectReport report;
  const std::vector<std::string> parts = SplitDocuments(yaml);
  for (size_t p = 0; p < parts.size(); ++p) {
    const std::string& part = parts[p];
    YAML::Node doc;
    try {
      doc = YAML::Load(part);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("document ", p + 1, ": not valid YAML: ", e.what()));
    }
    PodTemplate t = FindPodTemplate(doc);
    YAML::Node annotations = t.found ? Child(t.metadata, "annotations") : YAML::Node();
    if (t.found && !Wants(annotations)) {
      annotations = Child(Child(doc, "metadata"), "annotations");  // the workload's own
    }
    if (!t.found || !Wants(annotations)) {
      report.output += part;
      ++report.untouched;
      continue;
    }
    const std::string who = Describe(doc);
    if (AlreadyInjected(t.spec)) {
      report.output += part;
      ++report.already;
      report.lines.push_back(absl::StrCat(who, ": already has the cachecar sidecar"));
      continue;
    }
    absl::StatusOr<Overrides> o = ReadOverrides(annotations);
    if (!o.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(who, ": ", o.status().message()));
    }
    YAML::Node init(YAML::NodeType::Sequence);
    init.push_back(SidecarContainer(*o));
    if (t.spec["initContainers"] && t.spec["initContainers"].IsSequence()) {
      for (const YAML::Node& c : t.spec["initContainers"]) init.push_back(c);
    }
    t.spec["initContainers"] = init;
    for (const YAML::Node& v : SidecarVolumes(*o)) {
      if (HasNamed(t.spec["volumes"], v["name"].Scalar())) continue;
      t.spec["volumes"].push_back(v);
    }
    if (t.spec["containers"] && t.spec["containers"].IsSequence()) {
      for (YAML::Node c : t.spec["containers"]) {
        if (!c.IsMap()) continue;
        for (const YAML::Node& m : MissingMounts(c, *o)) c["volumeMounts"].push_back(m);
        for (const YAML::Node& e : MissingEnv(c, *o)) c["env"].push_back(e);
      }
    }
    report.output += SeparatorOf(part) + EmitYaml(doc);
    ++report.injected;
    report.lines.push_back(absl::StrCat(who, ": injected"));
  }
  return report;
}

static absl::StatusOr<std::string> ReviewAdmissionOrThrow(absl::string_view review_json) {
  YAML::Node review;
  try {
    review = YAML::Load(std::string(review_json));
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("request body is not JSON: ", e.what()));
  }
  const YAML::Node request = review.IsMap() ? review["request"] : YAML::Node();
  if (!request || !request.IsMap() || !request["uid"] || !request["uid"].IsScalar()) {
    return absl::InvalidArgumentError(
        "request body is not an AdmissionReview (admission.k8s.io/v1) with request.uid");
  }
  const std::string uid = request["uid"].Scalar();
  const std::string api_version = review["apiVersion"] && review["apiVersion"].IsScalar()
                                      ? review["apiVersion"].Scalar()
                                      : "admission.k8s.io/v1";
  std::string response = absl::StrCat("\"uid\":", JsonString(uid), ",\"allowed\":true");
  const YAML::Node pod = request["object"];
  const bool is_pod = pod && pod.IsMap() && pod["spec"] && pod["spec"].IsMap();
  const YAML::Node annotations = Child(Child(pod, "metadata"), "annotations");
  if (is_pod && Wants(annotations) && !AlreadyInjected(pod["spec"])) {
    absl::StatusOr<Overrides> o = ReadOverrides(annotations);
    if (!o.ok()) {
      // Admit the pod unchanged and say why: a bad annotation must not
      // block a deployment (failurePolicy is Ignore for the same reason).
      absl::StrAppend(&response, ",\"warnings\":[",
                      JsonString(absl::StrCat("cachecar: not injected: ", o.status().message())),
                      "]");
    } else {
      std::vector<std::string> ops;
      const YAML::Node spec = pod["spec"];
      const std::string container = ToJson(SidecarContainer(*o));
      if (spec["initContainers"] && spec["initContainers"].IsSequence() &&
          spec["initContainers"].size() > 0) {
        ops.push_back(absl::StrCat(R"({"op":"add","path":"/spec/initContainers/0","value":)",
                                   container, "}"));
      } else {
        ops.push_back(absl::StrCat(R"({"op":"add","path":"/spec/initContainers","value":[)",
                                   container, "]}"));
      }
      std::vector<std::string> volumes;
      for (const YAML::Node& v : SidecarVolumes(*o)) {
        if (!HasNamed(spec["volumes"], v["name"].Scalar())) volumes.push_back(ToJson(v));
      }
      if (spec["volumes"] && spec["volumes"].IsSequence() && spec["volumes"].size() > 0) {
        for (const std::string& v : volumes) {
          ops.push_back(absl::StrCat(R"({"op":"add","path":"/spec/volumes/-","value":)", v, "}"));
        }
      } else if (!volumes.empty()) {
        ops.push_back(absl::StrCat(R"({"op":"add","path":"/spec/volumes","value":[)",
                                   absl::StrJoin(volumes, ","), "]}"));
      }
      // The app containers: the published cache read-only, and its path.
      if (spec["containers"] && spec["containers"].IsSequence()) {
        for (size_t i = 0; i < spec["containers"].size(); ++i) {
          const YAML::Node c = spec["containers"][i];
          if (!c.IsMap()) continue;
          const std::string at = absl::StrCat("/spec/containers/", i);
          for (const auto& [field, items] : {std::pair<const char*, std::vector<YAML::Node>>{
                                                 "volumeMounts", MissingMounts(c, *o)},
                                             {"env", MissingEnv(c, *o)}}) {
            if (items.empty()) continue;
            if (c[field] && c[field].IsSequence() && c[field].size() > 0) {
              for (const YAML::Node& item : items) {
                ops.push_back(absl::StrCat(R"({"op":"add","path":")", at, "/", field,
                                           R"(/-","value":)", ToJson(item), "}"));
              }
            } else {
              std::vector<std::string> json;
              for (const YAML::Node& item : items) json.push_back(ToJson(item));
              ops.push_back(absl::StrCat(R"({"op":"add","path":")", at, "/", field,
                                         R"(","value":[)", absl::StrJoin(json, ","), "]}"));
            }
          }
        }
      }
      const std::string patch = absl::StrCat("[", absl::StrJoin(ops, ","), "]");
      absl::StrAppend(&response, R"(,"patchType":"JSONPatch","patch":")", absl::Base64Escape(patch),
                      "\"");
    }
  }
  return absl::StrCat("{\"apiVersion\":", JsonString(api_version),
                      ",\"kind\":\"AdmissionReview\",\"response\":{", response, "}}");
}

}  // namespace cachecar::inject
