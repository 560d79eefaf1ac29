// YAML bounds: aliases counted as what they repeat, nesting, documents, and
// that ordinary manifests pass untouched.
#include "common/yaml_bounds.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar {
namespace {

using ::testing::HasSubstr;

// The 701-byte Pod: nine levels of ten aliases each, 10^9 leaves.
std::string BillionLaughs() {
  std::string text =
      "a0: &a0 [\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\",\"lol\"]\n";
  for (int i = 1; i <= 9; ++i) {
    const std::string prev = "*a" + std::to_string(i - 1);
    text += "a" + std::to_string(i) + ": &a" + std::to_string(i) + " [";
    for (int j = 0; j < 9; ++j) text += (j ? "," : "") + prev;
    text += "]\n";
  }
  return "kind: Pod\nmetadata: {name: lol}\nspec:\n  containers: []\n" + text;
}

TEST(YamlBoundsTest, AnOrdinaryManifestPasses) {
  YamlShape shape;
  ASSERT_TRUE(CheckYamlBounds("kind: Pod\nmetadata: {name: a}\nspec:\n  containers:\n"
                              "    - {name: app, image: nginx}\n---\nkind: Service\n",
                              YamlBounds{}, &shape)
                  .ok());
  EXPECT_EQ(shape.documents, 2u);
  EXPECT_EQ(shape.depth, 4);  // root map, spec, containers, the container
}

TEST(YamlBoundsTest, CountsAliasesAsWhatTheyRepeat) {
  YamlShape shape;
  ASSERT_TRUE(
      CheckYamlBounds("a: &x [1, 2, 3]\nb: [*x, *x, {c: &y [*x]}]\nd: *y\n", YamlBounds{}, &shape)
          .ok());
  // Written: the root, keys a b c d, [1,2,3] (4), [..], {c: ..}, [*x]: 12.
  EXPECT_EQ(shape.nodes, 12u);
  // *x three times (4 each), and *y repeats [*x] (1 + 4).
  EXPECT_EQ(shape.alias_nodes, 17u);
}

TEST(YamlBoundsTest, RefusesTheBillionLaughs) {
  const absl::Status s = CheckYamlBounds(BillionLaughs(), YamlBounds{});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("aliases repeat more than 1000000 nodes"));
}

TEST(YamlBoundsTest, RefusesDeepNesting) {
  const std::string deep = std::string(10000, '[') + std::string(10000, ']');
  const absl::Status s = CheckYamlBounds(deep, YamlBounds{});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("nested more than 100 deep (at line 1)"));
}

TEST(YamlBoundsTest, RefusesTooManyDocuments) {
  YamlBounds bounds;
  bounds.max_documents = 2;
  const absl::Status s = CheckYamlBounds("a: 1\n---\nb: 2\n---\nc: 3\n", bounds);
  EXPECT_THAT(s.message(), HasSubstr("more than 2 documents"));
}

TEST(YamlBoundsTest, ReportsSyntaxErrors) {
  const absl::Status s = CheckYamlBounds("a: [1, 2\nb: 3\n", YamlBounds{});
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("line"));
}

TEST(YamlBoundsTest, UndefinedAliasIsAnError) {
  EXPECT_FALSE(CheckYamlBounds("a: *nothing\n", YamlBounds{}).ok());
  // Anchors do not carry over into the next document.
  EXPECT_FALSE(CheckYamlBounds("a: &x [1]\n---\nb: *x\n", YamlBounds{}).ok());
}

TEST(YamlBoundsTest, ANodeThatContainsItsOwnAliasIsRefused) {
  EXPECT_FALSE(CheckYamlBounds("a: &x [1, *x]\n", YamlBounds{}).ok());
}

}  // namespace
}  // namespace cachecar
