// See yaml_text.h.
#include "inject/yaml_text.h"

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"

namespace cachecar::inject {
namespace {

bool Quoted(const YAML::Node& n) { return n.Tag() == "!"; }

void Emit(YAML::Emitter& out, const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out << YAML::Null;
      break;
    case YAML::NodeType::Scalar:
      if (Quoted(n)) {
        out << YAML::DoubleQuoted << n.Scalar();
      } else {
        out << n.Scalar();
      }
      break;
    case YAML::NodeType::Sequence:
      out << YAML::BeginSeq;
      for (const YAML::Node& item : n) Emit(out, item);
      out << YAML::EndSeq;
      break;
    case YAML::NodeType::Map:
      out << YAML::BeginMap;
      for (const auto& kv : n) {
        out << YAML::Key;
        Emit(out, kv.first);
        out << YAML::Value;
        Emit(out, kv.second);
      }
      out << YAML::EndMap;
      break;
  }
}

// A plain scalar as JSON: what a YAML 1.1 reader (Kubernetes') makes of it.
nlohmann::ordered_json PlainScalarJson(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  bool digits = !s.empty();
  size_t start = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (start == s.size()) digits = false;
  for (size_t i = start; i < s.size() && digits; ++i) digits = absl::ascii_isdigit(s[i]);
  if (digits) {
    const std::string body = s.substr(start);
    const bool negative = s[0] == '-';
    if (body.size() > 1 && body[0] == '0') {  // YAML 1.1 octal: 0444
      bool octal = body.size() <= 21;
      for (char c : body) octal = octal && c >= '0' && c <= '7';
      if (octal) {
        errno = 0;
        const long long v = std::strtoll(body.c_str(), nullptr, 8);
        if (errno == 0) return negative ? -v : v;
      }
      return s;
    }
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) return v;
    return s;
  }
  double d = 0;
  const bool float_like = s.find_first_of(".eE") != std::string::npos &&
                          s.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (float_like && absl::SimpleAtod(s, &d) && std::isfinite(d)) return d;
  return s;
}

nlohmann::ordered_json Json(const YAML::Node& n) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      return nullptr;
    case YAML::NodeType::Scalar:
      return Quoted(n) ? nlohmann::ordered_json(n.Scalar()) : PlainScalarJson(n.Scalar());
    case YAML::NodeType::Sequence: {
      nlohmann::ordered_json out = nlohmann::ordered_json::array();
      for (const YAML::Node& item : n) out.push_back(Json(item));
      return out;
    }
    case YAML::NodeType::Map: {
      nlohmann::ordered_json out = nlohmann::ordered_json::object();
      for (const auto& kv : n) out[kv.first.Scalar()] = Json(kv.second);
      return out;
    }
  }
  return nullptr;
}

}  // namespace

std::string EmitYaml(const YAML::Node& node) {
  YAML::Emitter out;
  out.SetIndent(2);
  out.SetSeqFormat(YAML::Block);
  out.SetMapFormat(YAML::Block);
  Emit(out, node);
  return std::string(out.c_str()) + "\n";
}

nlohmann::ordered_json ToJson(const YAML::Node& node) { return Json(node); }

}  // namespace cachecar::inject
