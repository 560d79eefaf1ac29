// See injector.h. The manifest path; the webhook's is admission_review.cc.
#include "inject/injector.h"

#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/yaml_bounds.h"
#include "inject/sidecar.h"
#include "inject/yaml_text.h"
#include "yaml-cpp/yaml.h"

namespace cachecar::inject {
namespace {

// n[key], or a null node when n is not a map or has no such key (yaml-cpp
// would hand back an "invalid" node that throws on the next access).
YAML::Node Child(const YAML::Node& n, const std::string& key) {
  if (!n || !n.IsMap()) return YAML::Node();
  const YAML::Node c = n[key];
  return c ? c : YAML::Node();
}

Annotations AnnotationsOf(const YAML::Node& annotations) {
  Annotations out;
  if (!annotations || !annotations.IsMap()) return out;
  for (const auto& kv : annotations) {
    if (kv.first.IsScalar() && kv.second.IsScalar()) {
      out.emplace(kv.first.Scalar(), kv.second.Scalar());
    }
  }
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

// A list's mappings' scalar values of `field`, into `out`.
void ScalarsOf(const YAML::Node& list, const char* field, std::set<std::string, std::less<>>& out) {
  if (!list || !list.IsSequence()) return;
  for (const YAML::Node& item : list) {
    if (item.IsMap() && item[field] && item[field].IsScalar()) out.insert(item[field].Scalar());
  }
}

AppContainerHas HasOf(const YAML::Node& container) {
  AppContainerHas has;
  ScalarsOf(container["volumeMounts"], "name", has.mount_names);
  ScalarsOf(container["volumeMounts"], "mountPath", has.mount_paths);
  ScalarsOf(container["env"], "name", has.env_names);
  return has;
}

bool AlreadyInjected(const YAML::Node& spec) {
  return HasNamed(spec["initContainers"], kSidecarName) ||
         HasNamed(spec["containers"], kSidecarName);
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
  if (!absl::StartsWith(part, "---")) return "";
  const size_t nl = part.find('\n');
  return nl == std::string::npos ? part + "\n" : part.substr(0, nl + 1);
}

// What walking the manifests may cost beyond their own size: they come from
// other people (a 701-byte "billion laughs" Pod grew inject to 1.4 GB,
// issue #17). Nodes repeated by aliases, over the whole stream.
constexpr uint64_t kMaxAliasNodes = 200'000;

}  // namespace

// The body; yaml-cpp throws on shapes it did not expect.
static absl::StatusOr<InjectReport> InjectManifestsOrThrow(absl::string_view yaml);

absl::StatusOr<InjectReport> InjectManifests(absl::string_view yaml) {
  try {
    return InjectManifestsOrThrow(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat("manifest has an unexpected shape: ", e.what()));
  }
}

// One function on purpose: one pass over the documents, each either passed
// through or injected, keeping their separators and order in `report`;
// split up, the pieces would share every local.
static absl::StatusOr<InjectReport> InjectManifestsOrThrow(  // NOLINT(readability-function-size)
    absl::string_view yaml) {
  InjectReport report;
  const std::vector<std::string> parts = SplitDocuments(yaml);
  YamlBounds bounds;
  bounds.max_alias_nodes = kMaxAliasNodes;
  for (size_t p = 0; p < parts.size(); ++p) {
    const std::string& part = parts[p];
    YamlShape shape;
    if (absl::Status bounded = CheckYamlBounds(part, bounds, &shape); !bounded.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("document ", p + 1, ": not valid YAML: ", bounded.message()));
    }
    bounds.max_alias_nodes -= shape.alias_nodes;  // what the later documents may still repeat
    YAML::Node doc;
    try {
      doc = YAML::Load(part);
    } catch (const YAML::Exception& e) {
      return absl::InvalidArgumentError(
          absl::StrCat("document ", p + 1, ": not valid YAML: ", e.what()));
    }
    PodTemplate t = FindPodTemplate(doc);
    Annotations annotations =
        t.found ? AnnotationsOf(Child(t.metadata, "annotations")) : Annotations();
    if (t.found && !WantsInjection(annotations)) {
      annotations = AnnotationsOf(Child(Child(doc, "metadata"), "annotations"));  // the workload's
    }
    if (!t.found || !WantsInjection(annotations)) {
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
    // The app containers: the published cache read-only, and its path.
    if (t.spec["containers"] && t.spec["containers"].IsSequence()) {
      for (YAML::Node c : t.spec["containers"]) {
        if (!c.IsMap()) continue;
        const AppContainerHas has = HasOf(c);
        for (const YAML::Node& m : MissingAppMounts(has, *o)) c["volumeMounts"].push_back(m);
        for (const YAML::Node& e : MissingAppEnv(has, *o)) c["env"].push_back(e);
      }
    }
    report.output += SeparatorOf(part) + EmitYaml(doc);
    ++report.injected;
    report.lines.push_back(absl::StrCat(who, ": injected"));
  }
  return report;
}

}  // namespace cachecar::inject
