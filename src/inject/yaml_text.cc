// See yaml_text.h.
#include "inject/yaml_text.h"

#include <cstdint>
#include <cstdlib>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/logging.h"

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
std::string PlainScalarJson(const std::string& s) {
  if (s.empty() || s == "~" || s == "null" || s == "Null" || s == "NULL") return "null";
  if (s == "true" || s == "True" || s == "TRUE") return "true";
  if (s == "false" || s == "False" || s == "FALSE") return "false";
  bool digits = !s.empty();
  size_t start = (s[0] == '-' || s[0] == '+') ? 1 : 0;
  if (start == s.size()) digits = false;
  for (size_t i = start; i < s.size() && digits; ++i) digits = absl::ascii_isdigit(s[i]);
  if (digits) {
    const std::string body = s.substr(start);
    const bool negative = s[0] == '-';
    if (body.size() > 1 && body[0] == '0') {  // YAML 1.1 octal: 0444
      bool octal = true;
      for (char c : body) octal = octal && c >= '0' && c <= '7';
      if (octal) {
        const long long v = std::strtoll(body.c_str(), nullptr, 8);
        return absl::StrCat(negative ? -v : v);
      }
      return JsonString(s);
    }
    int64_t v = 0;
    if (absl::SimpleAtoi(s, &v)) return absl::StrCat(v);
    return JsonString(s);
  }
  double d = 0;
  const bool float_like = s.find_first_of(".eE") != std::string::npos &&
                          s.find_first_not_of("0123456789+-.eE") == std::string::npos;
  if (float_like && absl::SimpleAtod(s, &d)) return s[0] == '.' ? absl::StrCat("0", s) : s;
  return JsonString(s);
}

void Json(const YAML::Node& n, std::string& out) {
  switch (n.Type()) {
    case YAML::NodeType::Undefined:
    case YAML::NodeType::Null:
      out += "null";
      break;
    case YAML::NodeType::Scalar:
      out += Quoted(n) ? JsonString(n.Scalar()) : PlainScalarJson(n.Scalar());
      break;
    case YAML::NodeType::Sequence: {
      out += '[';
      bool first = true;
      for (const YAML::Node& item : n) {
        if (!first) out += ',';
        first = false;
        Json(item, out);
      }
      out += ']';
      break;
    }
    case YAML::NodeType::Map: {
      out += '{';
      bool first = true;
      for (const auto& kv : n) {
        if (!first) out += ',';
        first = false;
        out += JsonString(kv.first.Scalar());
        out += ':';
        Json(kv.second, out);
      }
      out += '}';
      break;
    }
  }
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

std::string ToJson(const YAML::Node& node) {
  std::string out;
  Json(node, out);
  return out;
}

std::string JsonString(const std::string& text) {
  return absl::StrCat("\"", JsonEscape(text), "\"");
}

}  // namespace cachecar::inject
