#include "config/values.h"

#include <cctype>
#include <cmath>
#include <limits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace cachecar::config {
namespace {

absl::Status Expected(absl::string_view form, absl::string_view got) {
  return absl::InvalidArgumentError(absl::StrCat("expected ", form, ", got ", Quote(got)));
}

// Multiplier for a byte unit (lower-cased): "", b, k, kb, ki, kib, m, ...;
// 0 if unknown. All powers of 2: nobody sizes a cache in powers of 10.
uint64_t UnitMultiplier(absl::string_view unit) {
  if (unit.empty() || unit == "b") return 1;
  constexpr absl::string_view kPrefixes = "kmgt";
  const size_t power = kPrefixes.find(unit[0]);
  const absl::string_view suffix = unit.substr(1);
  if (power == absl::string_view::npos ||
      (suffix != "" && suffix != "b" && suffix != "i" && suffix != "ib")) {
    return 0;
  }
  return uint64_t{1} << (10 * (power + 1));
}

}  // namespace

std::string Quote(absl::string_view text) {
  return absl::StrCat("\"", absl::CHexEscape(text), "\"");
}

absl::StatusOr<absl::Duration> ParseDuration(const std::string& text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  absl::Duration d;
  // absl also takes a bare "0", "inf" and negatives; we want none but "0".
  if (trimmed.empty() || !absl::ParseDuration(trimmed, &d) || d == absl::InfiniteDuration() ||
      d < absl::ZeroDuration()) {
    return Expected(kDurationForm, text);
  }
  return d;
}

absl::StatusOr<uint64_t> ParseBytes(const std::string& text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  size_t digits = 0;
  while (digits < trimmed.size() &&
         absl::ascii_isdigit(static_cast<unsigned char>(trimmed[digits]))) {
    ++digits;
  }
  uint64_t number = 0;
  if (digits == 0 || !absl::SimpleAtoi(trimmed.substr(0, digits), &number)) {
    return Expected(kBytesForm, text);
  }
  const std::string unit =
      absl::AsciiStrToLower(absl::StripAsciiWhitespace(trimmed.substr(digits)));
  const uint64_t multiplier = UnitMultiplier(unit);
  if (multiplier == 0) return Expected(kBytesForm, text);
  if (number > std::numeric_limits<uint64_t>::max() / multiplier) {
    return absl::InvalidArgumentError(absl::StrCat("size ", Quote(text), " is too large"));
  }
  return number * multiplier;
}

absl::StatusOr<uint32_t> ParseBytes32(absl::string_view text) {
  absl::StatusOr<uint64_t> bytes = ParseBytes(std::string(text));
  if (!bytes.ok()) return bytes.status();
  if (*bytes > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat("expected a size below 4GiB, got ", Quote(text)));
  }
  return static_cast<uint32_t>(*bytes);
}

absl::StatusOr<uint32_t> ParseCount(absl::string_view text) {
  const absl::string_view trimmed = absl::StripAsciiWhitespace(text);
  uint32_t n = 0;
  // SimpleAtoi would take "+5"; a count is digits only.
  if (trimmed.empty() || trimmed[0] == '+' || trimmed[0] == '-' || !absl::SimpleAtoi(trimmed, &n)) {
    return Expected(kCountForm, text);
  }
  return n;
}

absl::StatusOr<double> ParseShare(absl::string_view text) {
  double share = 0;
  if (!absl::SimpleAtod(absl::StripAsciiWhitespace(text), &share) || !std::isfinite(share)) {
    return Expected(kShareForm, text);
  }
  // 0 stands for "not given" inside NamespaceConfig, so a written 0 must not
  // get that far (it read as unset, issue #17).
  if (share == 0) {
    return absl::InvalidArgumentError(
        "max_bytes_share must be in (0, 1], got 0 (leave it out to share what the other "
        "namespaces leave)");
  }
  return share;
}

absl::StatusOr<NamespaceConfig> ParseNamespaceSpec(absl::string_view text) {
  const std::vector<absl::string_view> parts = absl::StrSplit(text, ':');
  if (parts.size() > 3 || absl::StripAsciiWhitespace(parts[0]).empty()) {
    return Expected(kNamespaceForm, text);
  }
  NamespaceConfig ns;
  ns.name = std::string(absl::StripAsciiWhitespace(parts[0]));
  if (parts.size() > 1 && !absl::StripAsciiWhitespace(parts[1]).empty()) {
    absl::StatusOr<absl::Duration> ttl = ParseDuration(std::string(parts[1]));
    if (!ttl.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace ", Quote(text), ": ttl: ", ttl.status().message()));
    }
    ns.ttl = *ttl;
  }
  if (parts.size() > 2) {
    absl::StatusOr<double> share = ParseShare(parts[2]);
    if (!share.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace ", Quote(text), ": share: ", share.status().message()));
    }
    ns.max_bytes_share = *share;
  }
  return ns;
}

std::string FormatNamespaceSpec(const NamespaceConfig& ns) {
  std::string out = ns.name;
  if (ns.ttl != absl::ZeroDuration() || ns.max_bytes_share != 0) {
    absl::StrAppend(&out, ":", FormatDurationText(ns.ttl));
  }
  if (ns.max_bytes_share != 0) absl::StrAppend(&out, ":", ns.max_bytes_share);
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  static constexpr std::pair<uint64_t, absl::string_view> kUnits[] = {
      {1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  for (const auto& [size, name] : kUnits) {
    if (bytes != 0 && bytes % size == 0) {
      return absl::StrCat(bytes / size, name);
    }
  }
  return absl::StrCat(bytes);
}

std::string FormatDurationText(absl::Duration d) {
  return absl::FormatDuration(d);  // "0", "500ms", "10s", "1m30s"
}

std::vector<std::string> SplitList(absl::string_view text) {
  std::vector<std::string> items;
  for (absl::string_view item : absl::StrSplit(text, ',')) {
    item = absl::StripAsciiWhitespace(item);
    if (!item.empty()) items.emplace_back(item);
  }
  return items;
}

}  // namespace cachecar::config
