// Injection: what is added, what is left byte for byte, idempotence,
// overrides and their errors, and the webhook's AdmissionReview answer.
#include "inject/injector.h"

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "yaml-cpp/yaml.h"

namespace cachecar::inject {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kService[] = R"(# a comment that must survive
apiVersion: v1
kind: Service
metadata: {name: web}   # flow style kept too
spec:
  ports: [{port: 80}]
)";

constexpr char kDeployment[] = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  replicas: 2
  selector:
    matchLabels: {app: web}
  template:
    metadata:
      labels: {app: web}
      annotations:
        cachecar.io/inject: "true"
        cachecar.io/memory-limit: 1Gi
    spec:
      initContainers:
        - name: migrate
          image: busybox
      containers:
        - name: app
          image: nginx
          env:
            - name: ON
              value: "true"
            - name: PORT
              value: "8080"
)";

constexpr char kPlainDeployment[] = R"(apiVersion: apps/v1
kind: Deployment
metadata:
  name: other
spec:
  template:
    spec:
      containers: [{name: app, image: nginx}]
)";

std::string Stream(std::initializer_list<const char*> docs) {
  std::string out;
  bool first = true;
  for (const char* d : docs) {
    if (!first) out += "---\n";
    first = false;
    out += d;
  }
  return out;
}

TEST(InjectManifestsTest, AddsTheSidecarFirstAndItsVolumes) {
  auto r = InjectManifests(kDeployment);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->injected, 1);
  const YAML::Node doc = YAML::Load(r->output);
  const YAML::Node spec = doc["spec"]["template"]["spec"];
  ASSERT_EQ(spec["initContainers"].size(), 2u);
  EXPECT_EQ(spec["initContainers"][0]["name"].as<std::string>(), "cachecar");
  EXPECT_EQ(spec["initContainers"][0]["restartPolicy"].as<std::string>(), "Always");
  EXPECT_EQ(spec["initContainers"][0]["resources"]["limits"]["memory"].as<std::string>(), "1Gi");
  EXPECT_EQ(spec["initContainers"][1]["name"].as<std::string>(), "migrate");
  EXPECT_EQ(spec["volumes"].size(), 4u);
  EXPECT_EQ(r->lines, std::vector<std::string>{"deployment/web: injected"});
  // Strings stay strings: an env value "true" must not become a boolean.
  EXPECT_THAT(r->output, HasSubstr("value: \"true\""));
  EXPECT_THAT(r->output, HasSubstr("cachecar.io/inject: \"true\""));
}

// The mounts of `container` whose name is `volume`.
std::vector<YAML::Node> MountsOf(const YAML::Node& container, const std::string& volume) {
  std::vector<YAML::Node> out;
  for (const YAML::Node& m : container["volumeMounts"]) {
    if (m["name"].as<std::string>() == volume) out.push_back(m);
  }
  return out;
}

TEST(InjectManifestsTest, LocalReadsArePublishedReadWriteAndMountedReadOnlyInTheApps) {
  auto r = InjectManifests(kDeployment);
  ASSERT_TRUE(r.ok()) << r.status();
  const YAML::Node spec = YAML::Load(r->output)["spec"]["template"]["spec"];
  const YAML::Node sidecar = spec["initContainers"][0];
  bool flag = false;
  for (const YAML::Node& a : sidecar["args"]) {
    flag = flag || a.as<std::string>() == "--local-read-path=/run/cachecar-local/cache";
  }
  EXPECT_TRUE(flag);
  ASSERT_EQ(MountsOf(sidecar, "cachecar-local").size(), 1u);
  EXPECT_FALSE(MountsOf(sidecar, "cachecar-local")[0]["readOnly"]);
  const YAML::Node app = spec["containers"][0];
  ASSERT_EQ(MountsOf(app, "cachecar-local").size(), 1u);
  EXPECT_EQ(MountsOf(app, "cachecar-local")[0]["mountPath"].as<std::string>(),
            "/run/cachecar-local");
  EXPECT_TRUE(MountsOf(app, "cachecar-local")[0]["readOnly"].as<bool>());
  bool env = false;
  for (const YAML::Node& e : app["env"]) {
    env = env || (e["name"].as<std::string>() == "CACHECAR_LOCAL_READ_PATH" &&
                  e["value"].as<std::string>() == "/run/cachecar-local/cache");
  }
  EXPECT_TRUE(env);
  EXPECT_EQ(app["env"].size(), 3u) << "the app's own variables stay";
  bool volume = false;
  for (const YAML::Node& v : spec["volumes"]) {
    if (v["name"].as<std::string>() == "cachecar-local") {
      volume = v["emptyDir"]["medium"].as<std::string>() == "Memory";
    }
  }
  EXPECT_TRUE(volume);
}

TEST(InjectManifestsTest, AnAppKeepsItsOwnMountAtThePathAndItsOwnVariable) {
  std::string in = kDeployment;
  in.replace(
      in.find("          env:\n"), 0,
      "          volumeMounts:\n            - {name: mine, mountPath: /run/cachecar-local}\n");
  in.replace(in.find("            - name: ON"), 0,
             "            - {name: CACHECAR_LOCAL_READ_PATH, value: /elsewhere}\n");
  auto r = InjectManifests(in);
  ASSERT_TRUE(r.ok()) << r.status();
  const YAML::Node app = YAML::Load(r->output)["spec"]["template"]["spec"]["containers"][0];
  EXPECT_EQ(app["volumeMounts"].size(), 1u);
  EXPECT_EQ(app["env"].size(), 3u);
  EXPECT_EQ(app["env"][0]["value"].as<std::string>(), "/elsewhere");
}

TEST(InjectManifestsTest, LocalReadsCanBeTurnedOff) {
  std::string in = kDeployment;
  in.replace(in.find("        cachecar.io/memory-limit"), 0,
             "        cachecar.io/local-reads: \"false\"\n");
  auto r = InjectManifests(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->output, Not(HasSubstr("cachecar-local")));
  EXPECT_THAT(r->output, Not(HasSubstr("local-read-path")));
  EXPECT_THAT(r->output, Not(HasSubstr("CACHECAR_LOCAL_READ_PATH")));
  std::string bad = kDeployment;
  bad.replace(bad.find("        cachecar.io/memory-limit"), 0,
              "        cachecar.io/local-reads: maybe\n");
  EXPECT_THAT(InjectManifests(bad).status().message(),
              HasSubstr("cachecar.io/local-reads \"maybe\" is not true or false"));
}

TEST(InjectManifestsTest, EverythingNotAnnotatedIsCopiedByteForByte) {
  const std::string in = Stream({kService, kPlainDeployment, kDeployment});
  auto r = InjectManifests(in);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->injected, 1);
  EXPECT_EQ(r->untouched, 2);
  EXPECT_TRUE(absl::StartsWith(r->output, Stream({kService, kPlainDeployment}) + "---\n"))
      << r->output;
}

TEST(InjectManifestsTest, InjectingTwiceChangesNothing) {
  const std::string in = Stream({kService, kDeployment});
  auto once = InjectManifests(in);
  ASSERT_TRUE(once.ok());
  auto twice = InjectManifests(once->output);
  ASSERT_TRUE(twice.ok());
  EXPECT_EQ(twice->output, once->output);
  EXPECT_EQ(twice->injected, 0);
  EXPECT_EQ(twice->already, 1);
}

TEST(InjectManifestsTest, PodsJobsAndCronJobsToo) {
  const char* pod = R"(apiVersion: v1
kind: Pod
metadata:
  name: p
  annotations: {cachecar.io/inject: "true", cachecar.io/port: "6000", cachecar.io/config-map: my-cfg}
spec:
  containers: [{name: app, image: nginx}]
)";
  const char* cron = R"(apiVersion: batch/v1
kind: CronJob
metadata: {name: c}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        metadata:
          annotations: {cachecar.io/inject: "true"}
        spec:
          restartPolicy: Never
          containers: [{name: app, image: busybox}]
)";
  auto r = InjectManifests(Stream({pod, cron}));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->injected, 2);
  std::vector<YAML::Node> docs = YAML::LoadAll(r->output);
  ASSERT_EQ(docs.size(), 2u);
  const YAML::Node sidecar = docs[0]["spec"]["initContainers"][0];
  const size_t args = sidecar["args"].size();
  EXPECT_EQ(sidecar["args"][args - 2].as<std::string>(), "--listen=127.0.0.1:6000");
  EXPECT_EQ(sidecar["args"][args - 1].as<std::string>(),
            "--listen=unix:///run/cachecar/cachecar.sock")
      << "the port annotation keeps the pod's unix socket";
  bool found_config = false;
  for (const YAML::Node& v : docs[0]["spec"]["volumes"]) {
    if (v["configMap"]) found_config = v["configMap"]["name"].as<std::string>() == "my-cfg";
  }
  EXPECT_TRUE(found_config);
  EXPECT_EQ(docs[1]["spec"]["jobTemplate"]["spec"]["template"]["spec"]["initContainers"][0]["name"]
                .as<std::string>(),
            "cachecar");
}

TEST(InjectManifestsTest, BadOverridesNameTheWorkloadAndTheAnnotation) {
  std::string bad = kDeployment;
  bad.replace(bad.find("1Gi"), 3, "lots");
  auto r = InjectManifests(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("deployment/web: cachecar.io/memory-limit \"lots\""));
  auto broken = InjectManifests("kind: [unclosed");
  EXPECT_EQ(broken.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(broken.status().message(), HasSubstr("document 1: not valid YAML"));
}

std::string Review(const std::string& pod_json) {
  return R"({"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{"uid":"u-1","kind":{"group":"","version":"v1","kind":"Pod"},"object":)" +
         pod_json + "}}";
}

std::string PatchOf(const std::string& response) {
  const YAML::Node r = YAML::Load(response);
  if (!r["response"]["patch"]) return "";
  std::string patch;
  EXPECT_TRUE(absl::Base64Unescape(r["response"]["patch"].as<std::string>(), &patch));
  return patch;
}

TEST(ReviewAdmissionTest, AnnotatedPodGetsAJsonPatch) {
  auto r = ReviewAdmission(Review(
      R"({"metadata":{"name":"p","annotations":{"cachecar.io/inject":"true"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(*r, HasSubstr(R"("uid":"u-1","allowed":true,"patchType":"JSONPatch")"));
  const std::string patch = PatchOf(*r);
  EXPECT_THAT(
      patch, HasSubstr(R"({"op":"add","path":"/spec/initContainers","value":[{"name":"cachecar")"));
  EXPECT_THAT(patch, HasSubstr(R"("containerPort":50052)"));  // numbers stay numbers
  EXPECT_THAT(patch, HasSubstr(R"("readOnlyRootFilesystem":true)"));
  EXPECT_THAT(patch, HasSubstr(R"("defaultMode":292)"));  // YAML 0444 is octal
  EXPECT_THAT(patch, HasSubstr(R"({"op":"add","path":"/spec/volumes","value":[)"));
  // The app container: the published cache read-only, and its path.
  EXPECT_THAT(
      patch,
      HasSubstr(
          R"({"op":"add","path":"/spec/containers/0/volumeMounts","value":[{"name":"cachecar-local","mountPath":"/run/cachecar-local","readOnly":true}]})"));
  EXPECT_THAT(
      patch,
      HasSubstr(
          R"({"op":"add","path":"/spec/containers/0/env","value":[{"name":"CACHECAR_LOCAL_READ_PATH","value":"/run/cachecar-local/cache"}]})"));
}

TEST(ReviewAdmissionTest, AppContainersWithMountsGetThemAppended) {
  auto r = ReviewAdmission(Review(
      R"({"metadata":{"name":"p","annotations":{"cachecar.io/inject":"true"}},"spec":{"containers":[{"name":"a","volumeMounts":[{"name":"x","mountPath":"/x"}],"env":[{"name":"E","value":"1"}]},{"name":"b"}]}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string patch = PatchOf(*r);
  EXPECT_THAT(
      patch,
      HasSubstr(
          R"({"op":"add","path":"/spec/containers/0/volumeMounts/-","value":{"name":"cachecar-local")"));
  EXPECT_THAT(
      patch,
      HasSubstr(
          R"({"op":"add","path":"/spec/containers/0/env/-","value":{"name":"CACHECAR_LOCAL_READ_PATH")"));
  EXPECT_THAT(patch,
              HasSubstr(R"({"op":"add","path":"/spec/containers/1/volumeMounts","value":[)"));
}

TEST(ReviewAdmissionTest, OtherPodsAreAllowedUnchanged) {
  for (
      const char* pod :
      {R"({"metadata":{"name":"p"},"spec":{"containers":[{"name":"app"}]}})",
       R"({"metadata":{"annotations":{"cachecar.io/inject":"true"}},"spec":{"initContainers":[{"name":"cachecar"}],"containers":[{"name":"app"}]}})"}) {
    auto r = ReviewAdmission(Review(pod));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(*r, HasSubstr(R"("allowed":true)"));
    EXPECT_THAT(*r, Not(HasSubstr("patch")));
  }
}

TEST(ReviewAdmissionTest, BadAnnotationAdmitsWithAWarning) {
  auto r = ReviewAdmission(Review(
      R"({"metadata":{"annotations":{"cachecar.io/inject":"true","cachecar.io/port":"99999"}},"spec":{"containers":[{"name":"app"}]}})"));
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(*r, HasSubstr(R"("warnings":["cachecar: not injected: cachecar.io/port \"99999\")"));
  EXPECT_THAT(*r, Not(HasSubstr("patch")));
}

TEST(ReviewAdmissionTest, NotAnAdmissionReviewIsInvalidArgument) {
  EXPECT_EQ(ReviewAdmission("{\"hello\": 1}").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReviewAdmission("{{{").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReviewAdmission(R"({"request":{"uid":7}})").status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(ReviewAdmission(Review("{}") + "trailing").status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Issue #17: a ~50,000-digit quantity overflowed the stack inside std::regex
// (SIGSEGV), in the webhook and in `cachecar inject`.
TEST(ReviewAdmissionTest, AHugeQuantityIsAWarningNotACrash) {
  const std::string digits(50000, '9');
  for (const char* name :
       {"cachecar.io/memory-limit", "cachecar.io/memory-request", "cachecar.io/cpu-request"}) {
    auto r = ReviewAdmission(
        Review(absl::StrCat(R"({"metadata":{"annotations":{"cachecar.io/inject":"true",")", name,
                            R"(":")", digits, R"("}},"spec":{"containers":[{"name":"app"}]}})")));
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_THAT(*r, HasSubstr("is not a Kubernetes quantity"));
    EXPECT_THAT(*r, HasSubstr("(50000 bytes)"));  // the value is not echoed whole
    EXPECT_THAT(*r, Not(HasSubstr("patch")));
  }
}

TEST(InjectManifestsTest, AHugeQuantityIsAnErrorNotACrash) {
  std::string bad = kDeployment;
  bad.replace(bad.find("1Gi"), 3, std::string(50000, '1'));
  auto r = InjectManifests(bad);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("is not a Kubernetes quantity"));
}

// Issue #17: a 701-byte Pod with nested aliases grew inject to 1.4 GB.
TEST(InjectManifestsTest, ABillionLaughsIsRefused) {
  std::string pod =
      "kind: Pod\nmetadata:\n  name: lol\n  annotations: {cachecar.io/inject: \"true\"}\n"
      "  labels:\n    a0: &a0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]\n";
  for (int i = 1; i <= 9; ++i) {
    pod += absl::StrCat("    a", i, ": &a", i, " [");
    for (int j = 0; j < 9; ++j) absl::StrAppend(&pod, j ? "," : "", "*a", i - 1);
    pod += "]\n";
  }
  pod += "spec:\n  containers: [{name: app, image: nginx}]\n";
  auto r = InjectManifests(pod);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("document 1: not valid YAML: aliases repeat more"));
  // The alias budget is for the whole stream, not per document.
  std::string small =
      "kind: Pod\nmetadata: {name: a, annotations: {cachecar.io/inject: \"true\"}}\n"
      "spec:\n  containers: [{name: app}]\n  x: &x [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n"
      "  y: [";
  for (int j = 0; j < 999; ++j) absl::StrAppend(&small, j ? "," : "", "*x");
  small += "]\n";
  std::string many;
  for (int d = 0; d < 30; ++d) many += (d ? "---\n" : "") + small;
  auto stream = InjectManifests(many);
  EXPECT_EQ(stream.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(stream.status().message(), HasSubstr("aliases repeat more"));
  EXPECT_TRUE(InjectManifests(small).ok());  // one such document is fine
}

TEST(InjectManifestsTest, DeepNestingIsRefusedByName) {
  const std::string deep =
      "kind: Pod\nspec: " + std::string(10000, '[') + std::string(10000, ']') + "\n";
  auto r = InjectManifests(deep);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("nested more than 100 deep"));
}

// Issue #17: a 4 MiB AdmissionReview of tiny nodes cost ~1 GB per request.
TEST(ReviewAdmissionTest, TinyNodesAreRefusedBeforeADomIsBuilt) {
  std::string array = "[";
  for (int i = 0; i < 2'000'000; ++i) array += i ? ",0" : "0";
  array += "]";
  auto r = ReviewAdmission(Review(
      R"({"metadata":{"annotations":{"cachecar.io/inject":"true"}},"spec":{"containers":[],"x":)" +
      array + "}}"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("more than 100000 JSON values"));
  auto deep = ReviewAdmission(Review(std::string(100, '[') + std::string(100, ']')));
  EXPECT_THAT(deep.status().message(), HasSubstr("nested more than 64 deep"));
}

TEST(ReviewAdmissionTest, AnExistingVolumeListGetsAppendedTo) {
  auto r = ReviewAdmission(Review(
      R"({"metadata":{"annotations":{"cachecar.io/inject":"true"}},"spec":{"initContainers":[{"name":"m"}],"volumes":[{"name":"data"}],"containers":[{"name":"app"}]}})"));
  ASSERT_TRUE(r.ok()) << r.status();
  const std::string patch = PatchOf(*r);
  EXPECT_THAT(
      patch,
      HasSubstr(R"({"op":"add","path":"/spec/initContainers/0","value":{"name":"cachecar")"));
  EXPECT_THAT(patch, HasSubstr(R"({"op":"add","path":"/spec/volumes/-","value":)"));
}

// A chart-rendered sidecar (--sidecar-template): another image, a probe
// port flag and a volume of its own; annotation overrides still apply.
constexpr char kOtherSidecar[] = R"(initContainer:
  name: cachecar
  image: registry.example/cachecar:9.9.9
  restartPolicy: Always
  args: ["serve", "--config=/etc/cachecar/cachecar.yaml", "--probe-listen=0.0.0.0:6000"]
  resources: {requests: {cpu: 250m, memory: 1Gi}, limits: {memory: 2Gi}}
volumes:
  - name: cachecar-config
    configMap: {name: cachecar}
  - name: chart-extra
    emptyDir: {}
)";

class SidecarTemplateTest : public ::testing::Test {
 protected:
  void TearDown() override { ASSERT_TRUE(UseSidecarTemplate("").ok()); }
};

TEST_F(SidecarTemplateTest, AReplacedTemplateIsWhatIsInjected) {
  ASSERT_TRUE(UseSidecarTemplate(kOtherSidecar).ok());
  auto r = InjectManifests(kDeployment);
  ASSERT_TRUE(r.ok()) << r.status();
  const YAML::Node spec = YAML::Load(r->output)["spec"]["template"]["spec"];
  const YAML::Node c = spec["initContainers"][0];
  EXPECT_EQ(c["image"].as<std::string>(), "registry.example/cachecar:9.9.9");
  EXPECT_EQ(c["args"][2].as<std::string>(), "--probe-listen=0.0.0.0:6000");
  EXPECT_EQ(c["resources"]["requests"]["cpu"].as<std::string>(), "250m");
  EXPECT_EQ(c["resources"]["limits"]["memory"].as<std::string>(), "1Gi");  // the annotation's
  ASSERT_EQ(spec["volumes"].size(), 2u);
  EXPECT_EQ(spec["volumes"][1]["name"].as<std::string>(), "chart-extra");

  auto review = ReviewAdmission(Review(
      R"({"metadata":{"name":"p","annotations":{"cachecar.io/inject":"true"}},"spec":{"containers":[{"name":"app","image":"nginx"}]}})"));
  ASSERT_TRUE(review.ok()) << review.status();
  EXPECT_THAT(PatchOf(*review), HasSubstr(R"("image":"registry.example/cachecar:9.9.9")"));
  EXPECT_THAT(PatchOf(*review), HasSubstr(R"({"name":"chart-extra","emptyDir":{}})"));

  ASSERT_TRUE(UseSidecarTemplate("").ok());  // back to deploy/k8s/sidecar.yaml
  r = InjectManifests(kDeployment);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->output, HasSubstr("image: ghcr.io/cachecar/cachecar:0.1.0"));
}

TEST_F(SidecarTemplateTest, AnUnusableTemplateSaysWhyAndChangesNothing) {
  const std::pair<const char*, const char*> bad[] = {
      {"{{{", "not valid YAML"},
      {"- a list", "not a YAML mapping"},
      {"volumes: []", "initContainer is missing"},
      {"initContainer: {name: app, image: x}\nvolumes: []", "initContainer.name must be"},
      {"initContainer: {name: cachecar}\nvolumes: []", "initContainer.image is missing"},
      {"initContainer: {name: cachecar, image: x, args: serve}\nvolumes: []", "args is not"},
      {"initContainer: {name: cachecar, image: x}", "volumes is missing"},
      {"initContainer: {name: cachecar, image: x}\nvolumes: [{emptyDir: {}}]", "needs a name"},
  };
  for (const auto& [text, why] : bad) {
    const absl::Status s = UseSidecarTemplate(text);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << text;
    EXPECT_THAT(s.message(), HasSubstr(why)) << text;
  }
  auto r = InjectManifests(kDeployment);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->output, HasSubstr("image: ghcr.io/cachecar/cachecar:0.1.0"));
}

}  // namespace
}  // namespace cachecar::inject
