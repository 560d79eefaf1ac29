// See yaml_bounds.h.
#include "common/yaml_bounds.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "yaml-cpp/eventhandler.h"
#include "yaml-cpp/exceptions.h"
#include "yaml-cpp/mark.h"
#include "yaml-cpp/parser.h"

namespace cachecar {
namespace {

// Thrown out of the event handler to stop the parse at the first bound hit.
struct BoundHit {
  std::string message;
};

// Counts the nodes a full walk visits: a collection's count is itself plus
// its children's, and an alias counts what its anchor's node counted.
// yaml-cpp reports an anchor's node before any alias to it, so one pass
// suffices.
class Counter final : public YAML::EventHandler {
 public:
  explicit Counter(const YamlBounds& bounds) : bounds_(bounds) {}

  void OnDocumentStart(const YAML::Mark& mark) override {
    if (++shape_.documents > bounds_.max_documents) {
      Hit(mark, absl::StrCat("more than ", bounds_.max_documents, " documents"));
    }
    anchors_.clear();
    stack_.clear();
  }
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark&, YAML::anchor_t anchor) override { Leaf(anchor); }
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t anchor,
                const std::string&) override {
    Leaf(anchor);
  }
  void OnAlias(const YAML::Mark& mark, YAML::anchor_t anchor) override {
    auto it = anchors_.find(anchor);
    // An alias to an anchor still open (a node containing itself) is a
    // cycle: a walk would never end.
    if (it == anchors_.end()) Hit(mark, "an alias refers to a node that contains it");
    shape_.alias_nodes += it->second;
    if (shape_.alias_nodes > bounds_.max_alias_nodes) {
      Hit(mark, absl::StrCat("aliases repeat more than ", bounds_.max_alias_nodes,
                             " nodes (is this a \"billion laughs\"?)"));
    }
    if (!stack_.empty()) stack_.back().nodes += it->second;
  }
  void OnSequenceStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnSequenceEnd() override { Close(); }
  void OnMapStart(const YAML::Mark& mark, const std::string&, YAML::anchor_t anchor,
                  YAML::EmitterStyle::value) override {
    Open(mark, anchor);
  }
  void OnMapEnd() override { Close(); }

  const YamlShape& shape() const { return shape_; }

 private:
  struct Frame {
    YAML::anchor_t anchor;
    uint64_t nodes;
    YAML::Mark mark;
  };

  [[noreturn]] static void Hit(const YAML::Mark& mark, const std::string& what) {
    throw BoundHit{mark.is_null() ? what : absl::StrCat(what, " (at line ", mark.line + 1, ")")};
  }

  // A scalar or null: one node, counted towards its parent's total.
  void Leaf(YAML::anchor_t anchor) {
    ++shape_.nodes;
    if (anchor != 0) anchors_[anchor] = 1;
    if (!stack_.empty()) stack_.back().nodes += 1;
  }

  void Open(const YAML::Mark& mark, YAML::anchor_t anchor) {
    ++shape_.nodes;
    stack_.push_back(Frame{anchor, 1, mark});
    shape_.depth = std::max(shape_.depth, static_cast<int>(stack_.size()));
    if (static_cast<int>(stack_.size()) > bounds_.max_depth) {
      Hit(mark, absl::StrCat("maps and lists nested more than ", bounds_.max_depth, " deep"));
    }
  }

  void Close() {
    if (stack_.empty()) return;
    const Frame done = stack_.back();
    stack_.pop_back();
    if (done.anchor != 0) anchors_[done.anchor] = done.nodes;
    if (!stack_.empty()) stack_.back().nodes += done.nodes;
  }

  const YamlBounds& bounds_;
  YamlShape shape_;
  std::unordered_map<YAML::anchor_t, uint64_t> anchors_;  // this document's
  std::vector<Frame> stack_;
};

}  // namespace

absl::Status CheckYamlBounds(absl::string_view text, const YamlBounds& bounds, YamlShape* shape) {
  std::istringstream in{std::string(text)};
  Counter counter(bounds);
  try {
    YAML::Parser parser(in);
    while (parser.HandleNextDocument(counter)) {
    }
  } catch (const BoundHit& hit) {
    return absl::InvalidArgumentError(hit.message);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(e.what());
  }
  if (shape != nullptr) *shape = counter.shape();
  return absl::OkStatus();
}

}  // namespace cachecar
