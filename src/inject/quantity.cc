// See quantity.h.
#include "inject/quantity.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"

namespace cachecar::inject {
namespace {

// Skips ASCII digits from `i`; returns how many.
size_t Digits(absl::string_view s, size_t& i) {
  const size_t start = i;
  while (i < s.size() && absl::ascii_isdigit(static_cast<unsigned char>(s[i]))) ++i;
  return i - start;
}

bool IsSuffix(absl::string_view s) {
  if (s.empty()) return true;
  if (s.size() == 2 && s[1] == 'i') {
    switch (s[0]) {
      case 'K':
      case 'M':
      case 'G':
      case 'T':
      case 'P':
      case 'E':
        return true;
      default:
        return false;
    }
  }
  if (s.size() == 1) return absl::StrContains("numkMGTPE", s[0]);
  // A decimal exponent: e or E, an optional sign, digits.
  if (s[0] != 'e' && s[0] != 'E') return false;
  size_t i = 1;
  if (i < s.size() && (s[i] == '+' || s[i] == '-')) ++i;
  return Digits(s, i) > 0 && i == s.size();
}

}  // namespace

bool IsKubernetesQuantity(absl::string_view text) {
  if (text.empty() || text.size() > kMaxQuantityChars) return false;
  size_t i = 0;
  if (text[i] == '+') ++i;
  const size_t whole = Digits(text, i);
  size_t fraction = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    fraction = Digits(text, i);
  }
  if (whole + fraction == 0) return false;
  return IsSuffix(text.substr(i));
}

bool IsDnsSubdomain(absl::string_view text) {
  if (text.empty() || text.size() > 253) return false;
  auto alnum = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  for (char c : text) {
    if (!alnum(c) && c != '-' && c != '.') return false;
  }
  return alnum(text.front()) && alnum(text.back());
}

}  // namespace cachecar::inject
