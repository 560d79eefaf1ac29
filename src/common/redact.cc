// See redact.h.
#include "common/redact.h"

#include <cctype>

#include "absl/strings/match.h"
#include "absl/strings/str_replace.h"

namespace cachecar {
namespace {

constexpr absl::string_view kMask = "***";

bool IsUri(absl::string_view dsn) {
  return absl::StartsWith(dsn, "postgresql://") || absl::StartsWith(dsn, "postgres://");
}

// A span [begin, end) of `text` that holds a secret.
struct Span {
  size_t begin = 0;
  size_t end = 0;
};

// Walks key=value pairs: values may be 'single quoted' with \' and \\ escapes.
template <typename OnPassword>
void ForEachKeywordPassword(absl::string_view dsn, OnPassword on_password) {
  size_t i = 0;
  while (i < dsn.size()) {
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
    const size_t key_begin = i;
    while (i < dsn.size() && dsn[i] != '=' && !std::isspace(static_cast<unsigned char>(dsn[i]))) {
      ++i;
    }
    const absl::string_view key = dsn.substr(key_begin, i - key_begin);
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
    if (i >= dsn.size() || dsn[i] != '=') {
      if (i == key_begin) ++i;  // stray character: step over it
      continue;
    }
    ++i;  // '='
    while (i < dsn.size() && std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
    Span value{i, i};
    if (i < dsn.size() && dsn[i] == '\'') {
      ++i;
      value.begin = i;
      while (i < dsn.size() && dsn[i] != '\'') {
        if (dsn[i] == '\\' && i + 1 < dsn.size()) ++i;
        ++i;
      }
      value.end = i;
      if (i < dsn.size()) ++i;  // closing quote
    } else {
      while (i < dsn.size() && !std::isspace(static_cast<unsigned char>(dsn[i]))) ++i;
      value.end = i;
    }
    if (key == "password") on_password(value);
  }
}

// In a URI: "user:secret@" in the authority, and "password=" in the query.
template <typename OnPassword>
void ForEachUriPassword(absl::string_view dsn, OnPassword on_password) {
  const size_t authority = dsn.find("://") + 3;
  size_t authority_end = dsn.find_first_of("/?", authority);
  if (authority_end == absl::string_view::npos) authority_end = dsn.size();
  const size_t at = dsn.substr(0, authority_end).rfind('@');
  if (at != absl::string_view::npos && at >= authority) {
    const size_t colon = dsn.substr(authority, at - authority).find(':');
    if (colon != absl::string_view::npos) on_password(Span{authority + colon + 1, at});
  }
  const size_t query = dsn.find('?', authority);
  if (query == absl::string_view::npos) return;
  size_t i = query + 1;
  while (i < dsn.size()) {
    size_t end = dsn.find('&', i);
    if (end == absl::string_view::npos) end = dsn.size();
    const absl::string_view pair = dsn.substr(i, end - i);
    if (absl::StartsWith(pair, "password=")) on_password(Span{i + 9, end});
    i = end + 1;
  }
}

template <typename OnPassword>
void ForEachPassword(absl::string_view dsn, OnPassword on_password) {
  if (IsUri(dsn)) {
    ForEachUriPassword(dsn, on_password);
  } else {
    ForEachKeywordPassword(dsn, on_password);
  }
}

}  // namespace

std::string RedactDsn(absl::string_view dsn) {
  std::string out;
  size_t copied = 0;
  ForEachPassword(dsn, [&](Span span) {
    out.append(dsn.data() + copied, span.begin - copied);
    out.append(kMask.data(), kMask.size());
    copied = span.end;
  });
  out.append(dsn.data() + copied, dsn.size() - copied);
  return out;
}

std::string DsnPassword(absl::string_view dsn) {
  std::string password;
  ForEachPassword(dsn, [&](Span span) {
    password = std::string(dsn.substr(span.begin, span.end - span.begin));
  });
  return password;
}

std::string ScrubSecret(absl::string_view text, absl::string_view secret) {
  if (secret.empty()) return std::string(text);
  return absl::StrReplaceAll(text, {{secret, kMask}});
}

}  // namespace cachecar
