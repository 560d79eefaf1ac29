#include "config/yaml_file.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <set>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/errno_text.h"
#include "common/yaml_bounds.h"
#include "config/options.h"
#include "config/values.h"
#include "yaml-cpp/yaml.h"

namespace cachecar::config {
namespace {

// A config file is a page or two; anything past this is not one
// (--config=/dev/zero was read without end, issue #17).
constexpr size_t kMaxConfigBytes = 1 << 20;

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::FILE* file = std::fopen(path.c_str(), "rb");
  if (file == nullptr) return absl::InvalidArgumentError(ErrnoText(errno));
  std::string data;
  char buffer[8192];
  size_t n = 0;
  while ((n = std::fread(buffer, 1, sizeof(buffer), file)) > 0) {
    data.append(buffer, n);
    if (data.size() > kMaxConfigBytes) {
      std::fclose(file);
      return absl::InvalidArgumentError(
          absl::StrCat("it is over ", kMaxConfigBytes >> 20, " MiB, too large for a config file"));
    }
  }
  const int error = std::ferror(file) ? errno : 0;
  std::fclose(file);
  if (error != 0) return absl::InvalidArgumentError(ErrnoText(error));
  return data;
}

// Applies one file to a Config; remembers the path for "file:line" sources.
class YamlApplier {
 public:
  YamlApplier(const std::string& path, Config& config) : path_(path), config_(config) {}

  absl::Status ApplyRoot(const YAML::Node& root) {
    if (root.IsNull()) return absl::OkStatus();  // an empty file sets nothing
    if (!root.IsMap()) {
      return absl::InvalidArgumentError(
          absl::StrCat("config: ", SourceOf(root),
                       ": expected a map of option names to values at the top level"));
    }
    std::set<std::string> seen;
    for (const auto& entry : root) {
      absl::Status status = ApplyEntry(entry.first, entry.second, seen);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

 private:
  std::string SourceOf(const YAML::Node& node) const {
    const YAML::Mark mark = node.Mark();
    if (mark.is_null()) return path_;
    return absl::StrCat(path_, ":", mark.line + 1);
  }

  static absl::string_view Shape(const YAML::Node& node) {
    if (node.IsSequence()) return "a list";
    if (node.IsMap()) return "a map";
    if (node.IsNull()) return "no value";
    return "a scalar";
  }

  absl::Status ApplyEntry(const YAML::Node& key, const YAML::Node& value,
                          std::set<std::string>& seen) {
    const std::string name = key.IsScalar() ? key.Scalar() : "";
    const Option* option = FindOptionByYamlKey(name);
    if (option == nullptr) return UnknownKey(key, name);
    if (!seen.insert(name).second) {
      return FieldError(name, SourceOf(key), "appears twice in the file");
    }
    const std::string source = SourceOf(value);
    absl::Status status = option->repeatable() ? ApplyList(*option, value, source)
                                               : ApplyScalar(*option, value, source);
    if (status.ok()) config_.sources[std::string(option->name)] = source;
    return status;
  }

  absl::Status UnknownKey(const YAML::Node& key, const std::string& name) {
    std::vector<absl::string_view> keys;
    for (const Option& option : Options()) {
      if (!option.yaml_key.empty()) keys.push_back(option.yaml_key);
    }
    return absl::InvalidArgumentError(absl::StrCat("config: unknown key ", Quote(name), " in ",
                                                   SourceOf(key), DidYouMean(name, keys),
                                                   "; see --help"));
  }

  absl::Status ApplyScalar(const Option& option, const YAML::Node& value,
                           const std::string& source) {
    if (!value.IsScalar()) {
      return FieldError(
          option.name, source,
          absl::StrCat("expected ", ExpectedForm(option.kind), ", got ", Shape(value)));
    }
    absl::Status status = option.set(config_, value.Scalar());
    if (!status.ok()) return FieldError(option.name, source, status.message());
    return absl::OkStatus();
  }

  // A list option takes a YAML list or one (comma-separated) string; a
  // property list also takes a map of name: value.
  absl::Status ApplyList(const Option& option, const YAML::Node& value, const std::string& source) {
    option.clear(config_);
    if (value.IsScalar()) return ApplyScalar(option, value, source);
    if (value.IsMap() && option.kind == ValueKind::kPropertyList) {
      for (const auto& entry : value) {
        const std::string name = entry.first.IsScalar() ? entry.first.Scalar() : "";
        if (!entry.second.IsScalar()) {
          return FieldError(absl::StrCat(option.name, ".", name), SourceOf(entry.second),
                            absl::StrCat("expected a scalar, got ", Shape(entry.second)));
        }
        absl::Status status = option.set(config_, absl::StrCat(name, "=", entry.second.Scalar()));
        if (!status.ok()) {
          return FieldError(absl::StrCat(option.name, ".", name), SourceOf(entry.first),
                            status.message());
        }
      }
      return absl::OkStatus();
    }
    if (!value.IsSequence()) {
      return FieldError(
          option.name, source,
          absl::StrCat("expected ", ExpectedForm(option.kind), ", got ", Shape(value)));
    }
    for (size_t i = 0; i < value.size(); ++i) {
      const YAML::Node item = value[i];
      const std::string field = absl::StrCat(option.name, "[", i, "]");
      absl::Status status = item.IsMap() && option.kind == ValueKind::kNamespaceList
                                ? AddNamespace(item, field)
                                : AddListItem(option, item, field);
      if (!status.ok()) return status;
    }
    return absl::OkStatus();
  }

  absl::Status AddListItem(const Option& option, const YAML::Node& item, const std::string& field) {
    if (!item.IsScalar()) {
      return FieldError(
          field, SourceOf(item),
          absl::StrCat("expected ", ExpectedForm(option.kind), ", got ", Shape(item)));
    }
    absl::Status status = option.set(config_, item.Scalar());
    if (!status.ok()) {
      return FieldError(field, SourceOf(item), status.message());
    }
    return absl::OkStatus();
  }

  // {name: users, ttl: 10m, max_bytes_share: 0.25}
  absl::Status AddNamespace(const YAML::Node& item, const std::string& field) {
    NamespaceConfig ns;
    bool has_name = false;
    for (const auto& entry : item) {
      const std::string key = entry.first.IsScalar() ? entry.first.Scalar() : "";
      const std::string key_field = absl::StrCat(field, ".", key);
      const YAML::Node& value = entry.second;
      const std::vector<absl::string_view> known = {
          "name",       "ttl",          "negative_ttl", "max_bytes_share", "table",
          "key_column", "value_column", "sync",         "replicated"};
      if (std::find(known.begin(), known.end(), key) == known.end()) {
        return FieldError(
            field, SourceOf(entry.first),
            absl::StrCat("unknown key ", Quote(key), DidYouMean(key, known),
                         "; a namespace has name, ttl, negative_ttl, max_bytes_share, "
                         "table, key_column, value_column, sync and replicated"));
      }
      if (!value.IsScalar()) {
        return FieldError(key_field, SourceOf(value),
                          absl::StrCat("expected a scalar, got ", Shape(value)));
      }
      absl::Status status = SetNamespaceField(ns, key, value.Scalar());
      if (!status.ok()) {
        return FieldError(key_field, SourceOf(value), status.message());
      }
      has_name = has_name || key == "name";
    }
    if (!has_name) {
      return FieldError(field, SourceOf(item), "a namespace needs a name");
    }
    config_.namespaces.push_back(std::move(ns));
    return absl::OkStatus();
  }

  static absl::Status SetNamespaceField(NamespaceConfig& ns, const std::string& key,
                                        const std::string& text) {
    if (key == "name") {
      ns.name = text;
    } else if (key == "table") {
      ns.table = text;
    } else if (key == "key_column") {
      ns.key_column = text;
    } else if (key == "value_column") {
      ns.value_column = text;
    } else if (key == "sync") {
      if (text != "update" && text != "invalidate") {
        return absl::InvalidArgumentError(
            absl::StrCat("sync is ", Quote(text),
                         "; use update (values travel on the topic) or "
                         "invalidate (replicas drop the key)"));
      }
      ns.sync = text;
    } else if (key == "replicated") {
      if (text != "true" && text != "false") {
        return absl::InvalidArgumentError(
            absl::StrCat("replicated is ", Quote(text), "; use true or false"));
      }
      ns.replicated = text == "true";
    } else if (key == "ttl") {
      absl::StatusOr<absl::Duration> ttl = ParseDuration(text);
      if (!ttl.ok()) return ttl.status();
      ns.ttl = *ttl;
    } else if (key == "negative_ttl") {
      absl::StatusOr<absl::Duration> ttl = ParseDuration(text);
      if (!ttl.ok()) return ttl.status();
      ns.negative_ttl = *ttl;
    } else {
      absl::StatusOr<double> share = ParseShare(text);
      if (!share.ok()) return share.status();
      ns.max_bytes_share = *share;
    }
    return absl::OkStatus();
  }

  const std::string& path_;
  Config& config_;
};

}  // namespace

absl::Status ApplyYamlFile(const std::string& path, absl::string_view path_source, Config& config) {
  absl::StatusOr<std::string> text = ReadFile(path);
  if (!text.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("config: cannot read config file ", Quote(path),
                                                   " (from ", path_source,
                                                   "): ", text.status().message()));
  }
  return ApplyYamlText(*text, path, config);
}

absl::Status ApplyYamlText(absl::string_view text, const std::string& path, Config& config) {
  // Nesting and aliases are bounded before yaml-cpp builds nodes (a file
  // nested 10,000 deep reported only "bad file").
  YamlBounds bounds;
  bounds.max_depth = 32;
  bounds.max_alias_nodes = 10'000;
  if (absl::Status s = CheckYamlBounds(text, bounds); !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("config: cannot parse config file ", path, ": ", s.message()));
  }
  try {
    const std::vector<YAML::Node> documents = YAML::LoadAll(std::string(text));
    // Options in a second document were silently ignored before.
    for (size_t i = 1; i < documents.size(); ++i) {
      if (documents[i].IsNull()) continue;
      const YAML::Mark mark = documents[i].Mark();
      return absl::InvalidArgumentError(absl::StrCat(
          "config: config file ", path, mark.is_null() ? "" : absl::StrCat(":", mark.line + 1),
          " has more than one YAML document (a \"---\" line); put every option in one"));
    }
    const YAML::Node root = documents.empty() ? YAML::Node() : documents[0];
    return YamlApplier(path, config).ApplyRoot(root);
  } catch (const YAML::Exception& e) {
    // The mark is 0-based; editors count from 1.
    const std::string where =
        e.mark.is_null() ? path : absl::StrCat(path, ":", e.mark.line + 1, ":", e.mark.column + 1);
    return absl::InvalidArgumentError(
        absl::StrCat("config: cannot parse config file ", where, ": ", e.msg));
  }
}

}  // namespace cachecar::config
