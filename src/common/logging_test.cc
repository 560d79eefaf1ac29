#include "common/logging.h"

#include <optional>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "spdlog/logger.h"
#include "spdlog/sinks/ostream_sink.h"
#include "spdlog/spdlog.h"

namespace cachecar {
namespace {

using Fields = std::vector<std::pair<std::string, std::string>>;

void AppendUtf8(uint32_t cp, std::string& out) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

// A strict reader for a JSON string literal starting at s[pos] (RFC 8259:
// raw control characters are not allowed, escapes are).
std::optional<std::string> ReadJsonString(const std::string& s, size_t& pos) {
  if (pos >= s.size() || s[pos] != '"') return std::nullopt;
  std::string out;
  for (++pos; pos < s.size(); ++pos) {
    const char c = s[pos];
    if (c == '"') {
      ++pos;
      return out;
    }
    if (static_cast<unsigned char>(c) < 0x20) return std::nullopt;
    if (c != '\\') {
      out += c;
      continue;
    }
    if (++pos >= s.size()) return std::nullopt;
    switch (s[pos]) {
      case '"':
        out += '"';
        break;
      case '\\':
        out += '\\';
        break;
      case '/':
        out += '/';
        break;
      case 'b':
        out += '\b';
        break;
      case 'f':
        out += '\f';
        break;
      case 'n':
        out += '\n';
        break;
      case 'r':
        out += '\r';
        break;
      case 't':
        out += '\t';
        break;
      case 'u': {
        if (pos + 4 >= s.size()) return std::nullopt;
        const uint32_t cp = std::stoul(s.substr(pos + 1, 4), nullptr, 16);
        pos += 4;
        if (cp >= 0xD800 && cp <= 0xDFFF) return std::nullopt;  // not emitted
        AppendUtf8(cp, out);
        break;
      }
      default:
        return std::nullopt;
    }
  }
  return std::nullopt;
}

// Parses one line holding a flat JSON object of string values.
std::optional<Fields> ParseJsonLine(const std::string& line) {
  size_t pos = 0;
  if (line.empty() || line[pos++] != '{') return std::nullopt;
  Fields fields;
  while (true) {
    auto key = ReadJsonString(line, pos);
    if (!key || pos >= line.size() || line[pos++] != ':') return std::nullopt;
    auto value = ReadJsonString(line, pos);
    if (!value || pos >= line.size()) return std::nullopt;
    fields.emplace_back(*key, *value);
    const char next = line[pos++];
    if (next == '}') break;
    if (next != ',') return std::nullopt;
  }
  if (line.substr(pos) != "\n") return std::nullopt;
  return fields;
}

// A logger writing into a string with the formatter for `format`.
class CapturedLog {
 public:
  explicit CapturedLog(std::string_view format) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    logger_ = std::make_shared<spdlog::logger>("test", std::move(sink));
    auto formatter = MakeLogFormatter(format);
    EXPECT_TRUE(formatter.ok()) << formatter.status();
    logger_->set_formatter(*std::move(formatter));
    logger_->set_level(spdlog::level::trace);
  }
  spdlog::logger& logger() { return *logger_; }
  std::string text() const { return out_.str(); }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::logger> logger_;
};

// ISO 8601 with milliseconds and the UTC offset, e.g.
// 2024-05-01T12:00:00.123+02:00. (No std::regex: GCC 12 warns inside it
// under the sanitizers.)
bool IsTimestamp(std::string_view text) {
  constexpr std::string_view kShape = "0000-00-00T00:00:00.000+00:00";
  if (text.size() != kShape.size()) return false;
  for (size_t i = 0; i < text.size(); ++i) {
    const char c = text[i];
    const bool ok = kShape[i] == '0'   ? c >= '0' && c <= '9'
                    : kShape[i] == '+' ? c == '+' || c == '-'
                                       : c == kShape[i];
    if (!ok) return false;
  }
  return true;
}

TEST(JsonEscapeTest, PlainTextUnchanged) {
  EXPECT_EQ(JsonEscape(""), "");
  EXPECT_EQ(JsonEscape("hello, world {} 100%"), "hello, world {} 100%");
}

TEST(JsonEscapeTest, QuotesAndBackslashes) {
  EXPECT_EQ(JsonEscape(R"(say "hi")"), R"(say \"hi\")");
  EXPECT_EQ(JsonEscape(R"(C:\path\)"), R"(C:\\path\\)");
}

TEST(JsonEscapeTest, ControlCharacters) {
  EXPECT_EQ(JsonEscape("a\nb\tc\rd\be\ff"), R"(a\nb\tc\rd\be\ff)");
  EXPECT_EQ(JsonEscape(std::string("\0\x01\x1f\x7f", 4)), R"(\u0000\u0001\u001f\u007f)");
}

TEST(JsonEscapeTest, Utf8PassesThrough) {
  EXPECT_EQ(JsonEscape("héllo ключ 鍵 \xF0\x9F\x94\x91"), "héllo ключ 鍵 \xF0\x9F\x94\x91");
}

TEST(JsonEscapeTest, InvalidUtf8BecomesReplacementCharacter) {
  EXPECT_EQ(JsonEscape("a\xFF"
                       "b"),
            R"(a\ufffdb)");
  EXPECT_EQ(JsonEscape("\xC3"), R"(\ufffd)");                      // truncated
  EXPECT_EQ(JsonEscape("\xC0\xAF"), R"(\ufffd\ufffd)");            // overlong
  EXPECT_EQ(JsonEscape("\xED\xA0\x80"), R"(\ufffd\ufffd\ufffd)");  // surrogate
  EXPECT_EQ(JsonEscape("\xF4\x90\x80\x80"),                        // > U+10FFFF
            R"(\ufffd\ufffd\ufffd\ufffd)");
}

TEST(JsonLogTest, LineParsesAsExpectedObject) {
  CapturedLog log("json");
  const std::string message = "key \"a\\b\"\nline two\t\x01 ключ";
  log.logger().info("{}", message);

  const std::string line = log.text();
  const std::optional<Fields> fields = ParseJsonLine(line);
  ASSERT_TRUE(fields.has_value()) << line;
  ASSERT_EQ(fields->size(), 3u) << line;
  EXPECT_EQ((*fields)[0].first, "ts");
  EXPECT_TRUE(IsTimestamp((*fields)[0].second)) << (*fields)[0].second;
  EXPECT_EQ((*fields)[1].first, "level");
  EXPECT_EQ((*fields)[1].second, "info");
  EXPECT_EQ((*fields)[2].first, "msg");
  EXPECT_EQ((*fields)[2].second, message);
}

TEST(JsonLogTest, OneObjectPerLineAndLevelNames) {
  CapturedLog log("json");
  log.logger().warn("first");
  log.logger().error("second {}", 2);

  std::istringstream lines(log.text());
  std::string line;
  std::vector<Fields> parsed;
  while (std::getline(lines, line)) {
    auto fields = ParseJsonLine(line + "\n");
    ASSERT_TRUE(fields.has_value()) << line;
    parsed.push_back(*fields);
  }
  ASSERT_EQ(parsed.size(), 2u);
  EXPECT_EQ(parsed[0][1].second, "warning");
  EXPECT_EQ(parsed[0][2].second, "first");
  EXPECT_EQ(parsed[1][1].second, "error");
  EXPECT_EQ(parsed[1][2].second, "second 2");
}

TEST(TextLogTest, LineFormat) {
  CapturedLog log("text");
  log.logger().info("hello {}", "there");
  const std::string text = log.text();
  const std::string_view rest = "] [info] hello there\n";
  ASSERT_GT(text.size(), rest.size() + 1) << text;
  EXPECT_EQ(text.front(), '[') << text;
  EXPECT_TRUE(IsTimestamp(text.substr(1, text.size() - 1 - rest.size()))) << text;
  EXPECT_EQ(text.substr(text.size() - rest.size()), rest) << text;
}

TEST(LoggingTest, UnknownFormatRejected) {
  auto formatter = MakeLogFormatter("xml");
  EXPECT_EQ(formatter.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(formatter.status().message()), ::testing::HasSubstr("xml"));
}

TEST(LoggingTest, LevelNames) {
  for (const char* level :
       {"trace", "debug", "info", "warning", "warn", "error", "err", "critical", "off"}) {
    EXPECT_TRUE(IsValidLogLevel(level)) << level;
  }
  EXPECT_FALSE(IsValidLogLevel("INFO"));
  EXPECT_FALSE(IsValidLogLevel("verbose"));
  EXPECT_FALSE(IsValidLogLevel(""));
}

TEST(LoggingTest, InitLoggingSetsDefaultLogger) {
  ASSERT_TRUE(InitLogging("debug", "json").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::debug);
  ASSERT_TRUE(InitLogging("warn", "text").ok());
  EXPECT_EQ(spdlog::default_logger()->level(), spdlog::level::warn);
}

TEST(LoggingTest, InitLoggingRejectsBadInputAndKeepsLogger) {
  ASSERT_TRUE(InitLogging("info", "text").ok());
  auto before = spdlog::default_logger();
  EXPECT_EQ(InitLogging("loud", "text").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(InitLogging("info", "yaml").code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(spdlog::default_logger(), before);
}

}  // namespace
}  // namespace cachecar
