// See admission_review.h.
#include "inject/admission_review.h"

#include <set>
#include <string>
#include <vector>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "inject/injector.h"
#include "inject/sidecar.h"
#include "inject/yaml_text.h"
#include "nlohmann/json.hpp"

namespace cachecar::inject {
namespace {

using Json = nlohmann::json;
using OrderedJson = nlohmann::ordered_json;

// Counts values and nesting; stops the parse (returns false) at a bound.
class BoundsCounter final : public nlohmann::json_sax<Json> {
 public:
  explicit BoundsCounter(const JsonBounds& bounds) : bounds_(bounds) {}

  bool null() override { return Value(); }
  bool boolean(bool) override { return Value(); }
  bool number_integer(number_integer_t) override { return Value(); }
  bool number_unsigned(number_unsigned_t) override { return Value(); }
  bool number_float(number_float_t, const string_t&) override { return Value(); }
  bool string(string_t&) override { return Value(); }
  bool binary(binary_t&) override { return Value(); }
  bool start_object(std::size_t) override { return Open(); }
  bool key(string_t&) override { return true; }
  bool end_object() override { return Close(); }
  bool start_array(std::size_t) override { return Open(); }
  bool end_array() override { return Close(); }
  bool parse_error(std::size_t position, const std::string&,
                   const nlohmann::detail::exception& e) override {
    error_ = absl::StrCat("not JSON at byte ", position, ": ", e.what());
    return false;
  }

  const std::string& error() const { return error_; }

 private:
  bool Value() {
    if (++nodes_ <= bounds_.max_nodes) return true;
    error_ = absl::StrCat("more than ", bounds_.max_nodes, " JSON values");
    return false;
  }
  bool Open() {
    if (!Value()) return false;
    if (++depth_ <= bounds_.max_depth) return true;
    error_ = absl::StrCat("objects and arrays nested more than ", bounds_.max_depth, " deep");
    return false;
  }
  bool Close() {
    --depth_;
    return true;
  }

  const JsonBounds& bounds_;
  uint64_t nodes_ = 0;
  int depth_ = 0;
  std::string error_;
};

// j[key] if j is an object that has it, else null (never throws).
const Json& Member(const Json& j, const char* key) {
  static const Json* const kNull = new Json();
  if (!j.is_object()) return *kNull;
  auto it = j.find(key);
  return it == j.end() ? *kNull : *it;
}

Annotations AnnotationsOf(const Json& annotations) {
  Annotations out;
  if (!annotations.is_object()) return out;
  for (auto it = annotations.begin(); it != annotations.end(); ++it) {
    if (it.value().is_string()) out.emplace(it.key(), it.value().get<std::string>());
  }
  return out;
}

bool HasNamed(const Json& list, absl::string_view name) {
  if (!list.is_array()) return false;
  for (const Json& item : list) {
    const Json& n = Member(item, "name");
    if (n.is_string() && n.get_ref<const std::string&>() == name) return true;
  }
  return false;
}

bool NonEmptyArray(const Json& j) { return j.is_array() && !j.empty(); }

// A list's objects' string values of `field`, into `out`.
void StringsOf(const Json& list, const char* field, std::set<std::string, std::less<>>& out) {
  if (!list.is_array()) return;
  for (const Json& item : list) {
    const Json& v = Member(item, field);
    if (v.is_string()) out.insert(v.get<std::string>());
  }
}

AppContainerHas HasOf(const Json& container) {
  AppContainerHas has;
  StringsOf(Member(container, "volumeMounts"), "name", has.mount_names);
  StringsOf(Member(container, "volumeMounts"), "mountPath", has.mount_paths);
  StringsOf(Member(container, "env"), "name", has.env_names);
  return has;
}

// Appends `items` to /spec/containers/i/field (creating the list when the
// container has none).
void AddToList(const Json& container, const std::string& at, const char* field,
               const std::vector<YAML::Node>& items, OrderedJson& ops) {
  if (items.empty()) return;
  if (NonEmptyArray(Member(container, field))) {
    for (const YAML::Node& item : items) {
      ops.push_back({{"op", "add"}, {"path", at + "/" + field + "/-"}, {"value", ToJson(item)}});
    }
    return;
  }
  OrderedJson list = OrderedJson::array();
  for (const YAML::Node& item : items) list.push_back(ToJson(item));
  ops.push_back({{"op", "add"}, {"path", at + "/" + field}, {"value", std::move(list)}});
}

// Every app container gets the published cache's mount (read-only) and its
// path in the environment, unless it mounts that name or path, or sets that
// variable, itself.
void AddAppMounts(const Json& spec, const Overrides& o, OrderedJson& ops) {
  const Json& containers = Member(spec, "containers");
  if (!containers.is_array()) return;
  for (size_t i = 0; i < containers.size(); ++i) {
    const Json& c = containers[i];
    if (!c.is_object()) continue;
    const AppContainerHas has = HasOf(c);
    const std::vector<YAML::Node> missing_mounts = MissingAppMounts(has, o);
    const std::vector<YAML::Node> missing_env = MissingAppEnv(has, o);
    const std::string at = absl::StrCat("/spec/containers/", i);
    AddToList(c, at, "volumeMounts", missing_mounts, ops);
    AddToList(c, at, "env", missing_env, ops);
  }
}

// The JSONPatch that adds the sidecar (first init container) and the
// volumes the pod does not have yet.
OrderedJson SidecarPatch(const Json& spec, const Overrides& o) {
  OrderedJson ops = OrderedJson::array();
  const OrderedJson container = ToJson(SidecarContainer(o));
  if (NonEmptyArray(Member(spec, "initContainers"))) {
    ops.push_back({{"op", "add"}, {"path", "/spec/initContainers/0"}, {"value", container}});
  } else {
    ops.push_back({{"op", "add"},
                   {"path", "/spec/initContainers"},
                   {"value", OrderedJson::array({container})}});
  }
  OrderedJson volumes = OrderedJson::array();
  for (const YAML::Node& v : SidecarVolumes(o)) {
    if (!HasNamed(Member(spec, "volumes"), v["name"].Scalar())) volumes.push_back(ToJson(v));
  }
  if (NonEmptyArray(Member(spec, "volumes"))) {
    for (OrderedJson& v : volumes) {
      ops.push_back({{"op", "add"}, {"path", "/spec/volumes/-"}, {"value", std::move(v)}});
    }
  } else if (!volumes.empty()) {
    ops.push_back({{"op", "add"}, {"path", "/spec/volumes"}, {"value", std::move(volumes)}});
  }
  AddAppMounts(spec, o, ops);
  return ops;
}

std::string Dump(const OrderedJson& j) {
  // Strings came from parsed (valid UTF-8) JSON or our own ASCII; replace
  // rather than throw should anything else slip in.
  return j.dump(-1, ' ', false, nlohmann::detail::error_handler_t::replace);
}

}  // namespace

absl::Status CheckJsonBounds(absl::string_view text, const JsonBounds& bounds) {
  BoundsCounter counter(bounds);
  const bool ok = Json::sax_parse(text.begin(), text.end(), &counter);
  if (ok) return absl::OkStatus();
  return absl::InvalidArgumentError(counter.error().empty() ? "not JSON" : counter.error());
}

absl::StatusOr<std::string> ReviewAdmission(absl::string_view review_json) {
  if (absl::Status s = CheckJsonBounds(review_json, JsonBounds{}); !s.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("request body: ", s.message()));
  }
  const Json review = Json::parse(review_json.begin(), review_json.end(), nullptr,
                                  /*allow_exceptions=*/false);
  const Json& request = Member(review, "request");
  const Json& uid = Member(request, "uid");
  if (!uid.is_string()) {
    return absl::InvalidArgumentError(
        "request body is not an AdmissionReview (admission.k8s.io/v1) with request.uid");
  }
  const Json& api_version = Member(review, "apiVersion");
  OrderedJson response = {{"uid", uid}, {"allowed", true}};
  const Json& pod = Member(request, "object");
  const Json& spec = Member(pod, "spec");
  const Annotations annotations = AnnotationsOf(Member(Member(pod, "metadata"), "annotations"));
  const bool injected = HasNamed(Member(spec, "initContainers"), kSidecarName) ||
                        HasNamed(Member(spec, "containers"), kSidecarName);
  if (spec.is_object() && WantsInjection(annotations) && !injected) {
    absl::StatusOr<Overrides> o = ReadOverrides(annotations);
    if (!o.ok()) {
      // Admit the pod unchanged and say why: a bad annotation must not
      // block a deployment (failurePolicy is Ignore for the same reason).
      response["warnings"] =
          OrderedJson::array({absl::StrCat("cachecar: not injected: ", o.status().message())});
    } else {
      response["patchType"] = "JSONPatch";
      response["patch"] = absl::Base64Escape(Dump(SidecarPatch(spec, *o)));
    }
  }
  const OrderedJson out = {
      {"apiVersion", api_version.is_string() ? api_version.get<std::string>()
                                             : std::string("admission.k8s.io/v1")},
      {"kind", "AdmissionReview"},
      {"response", std::move(response)}};
  return Dump(out);
}

}  // namespace cachecar::inject
