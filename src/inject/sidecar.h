// Internal to src/inject: what the manifest path (injector.cc) and the
// webhook path (admission_review.cc) share: the override annotations, their
// validation, and the sidecar container and volumes built from the embedded
// template (deploy/k8s/sidecar.yaml) as yaml-cpp nodes.
//
// Thread-safety: pure functions; the template is parsed once, thread-safely.
#ifndef CACHECAR_INJECT_SIDECAR_H_
#define CACHECAR_INJECT_SIDECAR_H_

#include <map>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "yaml-cpp/yaml.h"

namespace cachecar::inject {

inline constexpr absl::string_view kSidecarName = "cachecar";
// The published cache's volume and the flag that turns local reads on
// (docs/LOCAL_READS.md); cachecar.io/local-reads: "false" leaves them out.
inline constexpr absl::string_view kLocalVolume = "cachecar-local";
inline constexpr absl::string_view kLocalFlag = "--local-read-path";

// A pod template's annotations whose values are strings (others are left
// out: Kubernetes only has string annotations).
using Annotations = std::map<std::string, std::string, std::less<>>;

struct Overrides {
  std::string image, config_map, cpu_request, memory_request, memory_limit;
  int port = 0;
  bool local_reads = true;
};

// cachecar.io/inject is "true" or "enabled" (any case).
bool WantsInjection(const Annotations& annotations);

// The overrides, or INVALID_ARGUMENT naming the bad annotation and what a
// good value looks like.
absl::StatusOr<Overrides> ReadOverrides(const Annotations& annotations);

// The sidecar (an init container with restartPolicy: Always) and the volumes
// it mounts, with the overrides applied.
YAML::Node SidecarContainer(const Overrides& o);
std::vector<YAML::Node> SidecarVolumes(const Overrides& o);

// What an app container already has: the names and paths of its
// volumeMounts and the names of its env, read from YAML (injector.cc) or
// JSON (admission_review.cc).
struct AppContainerHas {
  std::set<std::string, std::less<>> mount_names, mount_paths, env_names;
};

// With local reads, the template's appVolumeMounts (the published cache,
// read-only) and appEnv (CACHECAR_LOCAL_READ_PATH) that the container lacks:
// one that mounts something else at the same name or path, or sets the
// variable itself, keeps its own. Empty without local reads.
std::vector<YAML::Node> MissingAppMounts(const AppContainerHas& has, const Overrides& o);
std::vector<YAML::Node> MissingAppEnv(const AppContainerHas& has, const Overrides& o);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_SIDECAR_H_
