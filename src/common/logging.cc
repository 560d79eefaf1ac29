#include "common/logging.h"

#include <array>
#include <utility>

#include "absl/strings/str_cat.h"
#include "spdlog/pattern_formatter.h"
#include "spdlog/sinks/stdout_sinks.h"
#include "spdlog/spdlog.h"

namespace cachecar {
namespace {

// The message text as a JSON string body. The level and timestamp come from
// spdlog's own flags and never need escaping.
class JsonMessageFlag final : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    const std::string escaped =
        JsonEscape(std::string_view(msg.payload.data(), msg.payload.size()));
    dest.append(escaped.data(), escaped.data() + escaped.size());
  }
  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonMessageFlag>();
  }
};

constexpr char kJsonMessageFlag = '*';
constexpr char kJsonLogPattern[] = R"({"ts":"%Y-%m-%dT%H:%M:%S.%e%z","level":"%l","msg":"%*"})";

// Length of the well-formed UTF-8 sequence starting at s[i], or 0 if the
// bytes there are not one (RFC 3629: no overlongs or surrogates, at most
// U+10FFFF).
size_t Utf8SequenceLength(std::string_view s, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const auto cont = [&](size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
    return k < s.size() && byte(k) >= lo && byte(k) <= hi;
  };
  const unsigned b = byte(i);
  if (b < 0x80) return 1;
  if (b >= 0xC2 && b <= 0xDF) return cont(i + 1) ? 2 : 0;
  if (b >= 0xE0 && b <= 0xEF) {
    const unsigned lo = b == 0xE0 ? 0xA0 : 0x80;
    const unsigned hi = b == 0xED ? 0x9F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) ? 3 : 0;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    const unsigned lo = b == 0xF0 ? 0x90 : 0x80;
    const unsigned hi = b == 0xF4 ? 0x8F : 0xBF;
    return cont(i + 1, lo, hi) && cont(i + 2) && cont(i + 3) ? 4 : 0;
  }
  return 0;
}

void AppendEscapedAscii(char c, std::string& out) {
  switch (c) {
    case '"':
      out += "\\\"";
      return;
    case '\\':
      out += "\\\\";
      return;
    case '\b':
      out += "\\b";
      return;
    case '\f':
      out += "\\f";
      return;
    case '\n':
      out += "\\n";
      return;
    case '\r':
      out += "\\r";
      return;
    case '\t':
      out += "\\t";
      return;
    default:
      break;
  }
  const auto u = static_cast<unsigned char>(c);
  if (u < 0x20 || u == 0x7F) {
    static constexpr char kHex[] = "0123456789abcdef";
    out += "\\u00";
    out += kHex[u >> 4];
    out += kHex[u & 0xF];
    return;
  }
  out += c;
}

}  // namespace

bool IsValidLogLevel(std::string_view level) {
  static constexpr std::array<std::string_view, 9> kNames = {
      "trace", "debug", "info", "warning", "warn", "error", "err", "critical", "off"};
  for (std::string_view name : kNames) {
    if (level == name) return true;
  }
  return false;
}

std::string JsonEscape(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 8);
  for (size_t i = 0; i < text.size();) {
    const size_t n = Utf8SequenceLength(text, i);
    if (n == 1) {
      AppendEscapedAscii(text[i], out);
      i += 1;
    } else if (n > 1) {
      out.append(text.substr(i, n));
      i += n;
    } else {
      out += "\\ufffd";  // not UTF-8: keep the line valid JSON
      i += 1;
    }
  }
  return out;
}

absl::StatusOr<std::unique_ptr<spdlog::formatter>> MakeLogFormatter(std::string_view format) {
  if (format == "text") {
    return std::unique_ptr<spdlog::formatter>(
        std::make_unique<spdlog::pattern_formatter>(kTextLogPattern));
  }
  if (format == "json") {
    auto formatter = std::make_unique<spdlog::pattern_formatter>();
    formatter->add_flag<JsonMessageFlag>(kJsonMessageFlag).set_pattern(kJsonLogPattern);
    return std::unique_ptr<spdlog::formatter>(std::move(formatter));
  }
  return absl::InvalidArgumentError(absl::StrCat("log format must be text or json, got \"",
                                                 absl::string_view(format.data(), format.size()),
                                                 "\""));
}

absl::Status InitLogging(const std::string& level, const std::string& format) {
  if (!IsValidLogLevel(level)) {
    return absl::InvalidArgumentError(
        absl::StrCat("log level must be one of trace, debug, info, warning, error, "
                     "critical, off; got \"",
                     level, "\""));
  }
  absl::StatusOr<std::unique_ptr<spdlog::formatter>> formatter = MakeLogFormatter(format);
  if (!formatter.ok()) return formatter.status();

  // Not registered by name, so a second InitLogging (tests) cannot collide.
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  auto logger = std::make_shared<spdlog::logger>("cachecar", std::move(sink));
  logger->set_formatter(*std::move(formatter));
  logger->set_level(spdlog::level::from_str(level));  // sink flushes lines
  spdlog::set_default_logger(std::move(logger));
  return absl::OkStatus();
}

}  // namespace cachecar
