// Process-wide logging set-up: the spdlog default logger writes to stderr,
// either as text lines or as one JSON object per line (for log collectors).
//
// Thread-safety: call InitLogging once at start-up, before other threads log.
// The formatter it installs is used under spdlog's sink mutex. JsonEscape and
// IsValidLogLevel are pure functions.
#ifndef CACHECAR_COMMON_LOGGING_H_
#define CACHECAR_COMMON_LOGGING_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "spdlog/formatter.h"

namespace cachecar {

// Text lines look like `[2024-05-01T12:00:00.123+00:00] [info] message`.
inline constexpr char kTextLogPattern[] = "[%Y-%m-%dT%H:%M:%S.%e%z] [%l] %v";

// True for spdlog's level names: trace, debug, info, warning (warn),
// error (err), critical, off.
bool IsValidLogLevel(std::string_view level);

// Builds the formatter for `format` ("text" or "json"); InvalidArgument for
// anything else. Exposed so tests can attach it to their own sink.
absl::StatusOr<std::unique_ptr<spdlog::formatter>> MakeLogFormatter(std::string_view format);

// Replaces spdlog's default logger with one that writes to stderr at `level`
// in `format`. On error the current logger is left unchanged.
absl::Status InitLogging(const std::string& level, const std::string& format);

// Escapes `text` for use inside a JSON string literal (without the quotes):
// `"` and `\` are backslash-escaped, control characters become \n, \t, ... or
// \u00XX, and bytes that are not valid UTF-8 become U+FFFD so the line stays
// valid JSON whatever the message holds.
std::string JsonEscape(std::string_view text);

}  // namespace cachecar

#endif  // CACHECAR_COMMON_LOGGING_H_
