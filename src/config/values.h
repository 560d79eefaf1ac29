// Internal to src/config: parsing and printing of single option values.
// Errors carry only the reason ("expected ..., got ..."); the caller adds the
// field name and where the value came from.
//
// Thread-safety: pure functions.
#ifndef CACHECAR_CONFIG_VALUES_H_
#define CACHECAR_CONFIG_VALUES_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "config/config.h"

namespace cachecar::config {

inline constexpr absl::string_view kBytesForm = "a size such as 1048576, 64KiB, 256MiB or 1GiB";
inline constexpr absl::string_view kDurationForm = "a duration such as 0, 500ms, 10s, 2m or 1h";
inline constexpr absl::string_view kCountForm = "a whole number";
inline constexpr absl::string_view kShareForm = "a fraction in (0, 1]";
inline constexpr absl::string_view kNamespaceForm = "name[:ttl[:share]], e.g. users:10m:0.25";

// A non-negative whole number that fits in 32 bits.
absl::StatusOr<uint32_t> ParseCount(absl::string_view text);

// A size that fits in 32 bits (ParseBytes forms).
absl::StatusOr<uint32_t> ParseBytes32(absl::string_view text);

// A finite number for max_bytes_share; range is Validate's job.
absl::StatusOr<double> ParseShare(absl::string_view text);

// "name[:ttl[:share]]"; an empty ttl means no expiry.
absl::StatusOr<NamespaceConfig> ParseNamespaceSpec(absl::string_view text);
// The inverse: "users:10m:0.25", "users", "users:0:0.5".
std::string FormatNamespaceSpec(const NamespaceConfig& ns);

// "10s", "1m30s", "0".
std::string FormatDurationText(absl::Duration d);

// Splits a comma-separated list, trimming blanks and dropping empty items.
std::vector<std::string> SplitList(absl::string_view text);

// `"text"` with control characters escaped, for error messages.
std::string Quote(absl::string_view text);

}  // namespace cachecar::config

#endif  // CACHECAR_CONFIG_VALUES_H_
