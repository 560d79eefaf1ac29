// Internal to src/config: how the option table (options.cc) sets and shows
// each kind of value: one template per kind over the Config member, and the
// functions for the list-valued options.
//
// Thread-safety: pure functions of the Config passed in.
#ifndef CACHECAR_CONFIG_OPTION_SETTERS_H_
#define CACHECAR_CONFIG_OPTION_SETTERS_H_

#include <cstdint>
#include <string>
#include <type_traits>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "config/config.h"
#include "config/values.h"

namespace cachecar::config {

// Setters and printers, one template per value kind over the Config member.

template <auto kField>
absl::Status SetText(Config& c, absl::string_view text) {
  c.*kField = std::string(absl::StripAsciiWhitespace(text));
  return absl::OkStatus();
}
template <auto kField>
std::string ShowText(const Config& c) {
  return c.*kField;
}

template <auto kField>
absl::Status SetBytes(Config& c, absl::string_view text) {
  using Field = std::remove_reference_t<decltype(c.*kField)>;
  if constexpr (std::is_same_v<Field, uint64_t>) {
    absl::StatusOr<uint64_t> bytes = ParseBytes(std::string(text));
    if (!bytes.ok()) return bytes.status();
    c.*kField = *bytes;
  } else {
    static_assert(std::is_same_v<Field, uint32_t>);
    absl::StatusOr<uint32_t> bytes = ParseBytes32(text);
    if (!bytes.ok()) return bytes.status();
    c.*kField = *bytes;
  }
  return absl::OkStatus();
}
template <auto kField>
std::string ShowBytes(const Config& c) {
  return FormatBytes(c.*kField);
}

template <auto kField>
absl::Status SetCount(Config& c, absl::string_view text) {
  absl::StatusOr<uint32_t> n = ParseCount(text);
  if (!n.ok()) return n.status();
  c.*kField = *n;
  return absl::OkStatus();
}
template <auto kField>
std::string ShowCount(const Config& c) {
  return absl::StrCat(c.*kField);
}

template <auto kField>
absl::Status SetDuration(Config& c, absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDuration(std::string(text));
  if (!d.ok()) return d.status();
  c.*kField = *d;
  return absl::OkStatus();
}
template <auto kField>
std::string ShowDuration(const Config& c) {
  return FormatDurationText(c.*kField);
}

template <auto kField>
absl::Status SetBool(Config& c, absl::string_view text) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (v == "true" || v == "1" || v == "yes") {
    c.*kField = true;
  } else if (v == "false" || v == "0" || v == "no") {
    c.*kField = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("expected true or false, got ", Quote(text)));
  }
  return absl::OkStatus();
}
template <auto kField>
std::string ShowBool(const Config& c) {
  return c.*kField ? "true" : "false";
}

// The list-valued and special options (option_setters.cc).
std::string ShowDsn(const Config& c);
absl::Status AddKafkaProperties(Config& c, absl::string_view text);
std::string ShowKafkaProperties(const Config& c);
void ClearKafkaProperties(Config& c);
absl::Status AddListen(Config& c, absl::string_view text);
std::string ShowListen(const Config& c);
void ClearListen(Config& c);
absl::Status AddProbeListen(Config& c, absl::string_view text);
std::string ShowProbeListen(const Config& c);
void ClearProbeListen(Config& c);
absl::Status AddNamespaces(Config& c, absl::string_view text);
std::string ShowNamespaces(const Config& c);
void ClearNamespaces(Config& c);

}  // namespace cachecar::config

#endif  // CACHECAR_CONFIG_OPTION_SETTERS_H_
