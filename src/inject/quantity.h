// Validation of the override annotations' values: Kubernetes resource
// quantities (cachecar.io/cpu-request, memory-request, memory-limit) and DNS
// names (cachecar.io/config-map).
//
// Hand-written and bounded rather than std::regex: the values come from
// whoever may create a Pod, and libstdc++'s regex matcher recurses once per
// input character (a ~50,000-digit quantity overflowed the stack, issue #17).
// These are linear scans that give up past a length no real value reaches.
//
// Thread-safety: pure functions.
#ifndef CACHECAR_INJECT_QUANTITY_H_
#define CACHECAR_INJECT_QUANTITY_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace cachecar::inject {

// The longest quantity accepted; Kubernetes' own canonical forms are far
// shorter (its int64 milli-units hold at most 19 digits).
inline constexpr size_t kMaxQuantityChars = 64;

// Kubernetes' quantity grammar (k8s.io/apimachinery resource.Quantity):
//   [+]<digits>[.<digits>]<suffix>   (".5" and "5." too)
//   suffix: Ki Mi Gi Ti Pi Ei | n u m k M G T P E | e<int> E<int> | none
// A sign of "-" is refused: a negative request or limit makes no sense.
bool IsKubernetesQuantity(absl::string_view text);

// An RFC 1123 subdomain as Kubernetes names ConfigMaps: at most 253
// characters of [a-z0-9.-], starting and ending with [a-z0-9].
bool IsDnsSubdomain(absl::string_view text);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_QUANTITY_H_
