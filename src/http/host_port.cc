// See host_port.h.
#include "http/host_port.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <algorithm>
#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace cachecar::http {

absl::StatusOr<HostPort> ParseNumericHostPort(absl::string_view text) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(absl::StrCat("\"", text, "\": ", why));
  };
  HostPort out;
  absl::string_view port;
  if (absl::StartsWith(text, "[")) {
    const size_t close = text.find(']');
    if (close == absl::string_view::npos || text.substr(close + 1, 1) != ":") {
      return bad("want [v6]:port, e.g. [::1]:9464");
    }
    out.host = std::string(text.substr(1, close - 1));
    port = text.substr(close + 2);
    in6_addr a6{};
    if (inet_pton(AF_INET6, out.host.c_str(), &a6) != 1) return bad("not an IPv6 address");
  } else {
    const size_t colon = text.rfind(':');
    if (colon == absl::string_view::npos) return bad("want host:port, e.g. 127.0.0.1:9464");
    out.host = std::string(text.substr(0, colon));
    port = text.substr(colon + 1);
    in_addr a4{};
    if (!out.host.empty() && inet_pton(AF_INET, out.host.c_str(), &a4) != 1) {
      return bad(absl::StrContains(out.host, ":")
                     ? "an IPv6 address needs brackets, e.g. [::1]:9464"
                     : "the host must be a numeric IPv4 address (four numbers 0-255) or "
                       "[IPv6]; 0.0.0.0 listens on every interface");
    }
  }
  uint32_t number = 0;
  const bool digits =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(c); });
  if (!digits || !absl::SimpleAtoi(port, &number) || number > 65535) {
    return bad("the port must be 0 to 65535");
  }
  out.port = static_cast<int>(number);
  return out;
}

}  // namespace cachecar::http
