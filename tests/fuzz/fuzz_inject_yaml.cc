// Fuzz target: `cachecar inject`'s YAML path (manifests in, manifests with
// the sidecar out). Injecting the output again must change nothing.
#include <cstddef>
#include <cstdint>
#include <cstdlib>

#include "inject/injector.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view yaml(reinterpret_cast<const char*>(data), size);
  absl::StatusOr<cachecar::inject::InjectReport> once = cachecar::inject::InjectManifests(yaml);
  if (!once.ok() || once->injected == 0) return 0;
  absl::StatusOr<cachecar::inject::InjectReport> twice =
      cachecar::inject::InjectManifests(once->output);
  if (twice.ok() && twice->injected != 0) std::abort();  // not idempotent
  return 0;
}
