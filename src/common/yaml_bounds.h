// Limits on a YAML text before yaml-cpp builds nodes from it, for YAML that
// other people write (manifests given to `cachecar inject`, config files).
//
// yaml-cpp shares one node between an anchor and its aliases, so loading a
// "billion laughs" document is cheap; everything that walks the result
// (re-emitting it, converting it to JSON, iterating lists) expands each
// alias again, and a 701-byte Pod grew `inject` to 1.4 GB (issue #17). This
// pass reads the event stream once, without building nodes, and counts what
// a full walk would visit: every node, with each alias counted as the size
// of what it refers to. It also bounds nesting (yaml-cpp's own limit is 2000
// levels of recursion and its message is unhelpful) and the number of
// documents.
//
// Thread-safety: pure functions.
#ifndef CACHECAR_COMMON_YAML_BOUNDS_H_
#define CACHECAR_COMMON_YAML_BOUNDS_H_

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace cachecar {

struct YamlBounds {
  // Nodes that aliases repeat, over the whole stream: a full walk visits the
  // text's own nodes (bounded by its size) plus these.
  uint64_t max_alias_nodes = 1'000'000;
  // Maps and lists nested in each other.
  int max_depth = 100;
  // Documents in the stream (inject takes many; a config file one).
  size_t max_documents = 10'000;
};

struct YamlShape {
  size_t documents = 0;      // documents in the stream, empty ones too
  uint64_t nodes = 0;        // nodes written in the text
  uint64_t alias_nodes = 0;  // nodes its aliases repeat
  int depth = 0;             // the deepest nesting seen
};

// OK and the shape if `text` stays within `bounds`; INVALID_ARGUMENT naming
// the bound and the line otherwise, or for text that is not YAML (the
// message then carries yaml-cpp's, with "line L, column C").
absl::Status CheckYamlBounds(absl::string_view text, const YamlBounds& bounds,
                             YamlShape* shape = nullptr);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_YAML_BOUNDS_H_
