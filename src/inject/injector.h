// Sidecar injection: adds cachecar as a native sidecar (an init container
// with restartPolicy: Always, deploy/k8s/sidecar.yaml embedded at build
// time) to pod specs whose pod template carries cachecar.io/inject: "true".
// Used by `cachecar inject` (manifests in, manifests out) and by
// `cachecar webhook` (a Pod in, a JSONPatch out).
//
// Overrides, from the same annotations: cachecar.io/image,
// cachecar.io/config-map, cachecar.io/cpu-request,
// cachecar.io/memory-request, cachecar.io/memory-limit, cachecar.io/port,
// cachecar.io/local-reads ("false": no published cache, no cachecar-local
// volume). Every app container gets the published cache's volume mounted
// read-only and CACHECAR_LOCAL_READ_PATH, unless it has its own.
// Injection is idempotent: a pod that already has a container named
// "cachecar" is left alone.
//
// The sidecar added is the embedded one unless UseSidecarTemplate replaced
// it (`--sidecar-template FILE`: the Helm chart's ConfigMap, so a chart's
// sidecar defaults reach the webhook without rebuilding it).
//
// Thread-safety: free functions over values; safe from any thread, except
// UseSidecarTemplate, which is called once at startup before any injection.
#ifndef CACHECAR_INJECT_INJECTOR_H_
#define CACHECAR_INJECT_INJECTOR_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cachecar::inject {

inline constexpr absl::string_view kInjectAnnotation = "cachecar.io/inject";

struct InjectReport {
  std::string output;              // the manifests, changed documents re-emitted
  int injected = 0;                // workloads given the sidecar
  int already = 0;                 // annotated, but the sidecar was there
  int untouched = 0;               // documents left byte for byte as they were
  std::vector<std::string> lines;  // one per workload: "deployment/web: injected"
};

// Multi-document YAML in, the same documents out. Deployments, StatefulSets,
// DaemonSets, ReplicaSets, Jobs, CronJobs and Pods are considered; every
// other document, and every document not annotated for injection, is copied
// byte for byte. INVALID_ARGUMENT names the document and the problem (bad
// YAML, a bad override value).
absl::StatusOr<InjectReport> InjectManifests(absl::string_view yaml);

// The webhook: an AdmissionReview (v1, JSON) for a Pod in, the
// AdmissionReview response (JSON) out: allowed, with a base64 JSONPatch when
// the pod asks for injection and has no sidecar yet. INVALID_ARGUMENT when
// the request is not an AdmissionReview.
absl::StatusOr<std::string> ReviewAdmission(absl::string_view review_json);

// Replaces the embedded sidecar (deploy/k8s/sidecar.yaml) with `yaml`, a
// document of the same shape: `initContainer` (a container named
// "cachecar") and `volumes` (a list of named volumes). INVALID_ARGUMENT
// says what is missing; the template in use is then unchanged. An empty
// `yaml` restores the embedded sidecar. Not thread-safe: call before the
// first injection.
absl::Status UseSidecarTemplate(absl::string_view yaml);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_INJECTOR_H_
