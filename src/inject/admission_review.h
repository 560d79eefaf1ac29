// The webhook's JSON side: an AdmissionReview (admission.k8s.io/v1) is read
// with nlohmann-json, under bounds checked before any DOM is built, and the
// answer and its JSONPatch are built with it too. ReviewAdmission
// (injector.h) is implemented here.
//
// Why the bounds: a DOM costs far more than its text when the text is tiny
// nodes (a 4 MiB body of `[0,0,0,...]` or `{"a":0,...}` cost ~1 GB per
// request before, issue #17, against a 128 Mi limit). A SAX pass over the
// text counts nodes and nesting without allocating; only a body within
// them is parsed into a DOM. A real Pod has a few thousand nodes.
//
// Thread-safety: pure functions.
#ifndef CACHECAR_INJECT_ADMISSION_REVIEW_H_
#define CACHECAR_INJECT_ADMISSION_REVIEW_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cachecar::inject {

struct JsonBounds {
  uint64_t max_nodes = 100'000;  // values of any kind, keys not counted
  int max_depth = 64;            // objects and arrays nested in each other
};

// OK if `text` is one JSON value within `bounds`; INVALID_ARGUMENT saying
// which bound, or where the syntax broke, otherwise.
absl::Status CheckJsonBounds(absl::string_view text, const JsonBounds& bounds);

}  // namespace cachecar::inject

#endif  // CACHECAR_INJECT_ADMISSION_REVIEW_H_
