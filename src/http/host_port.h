// HostPort and ParseNumericHostPort: the listen addresses of the HTTP
// endpoints (webhook, /metrics), numeric only, checked the same way by the
// server and by config validation.
//
// Thread-safety: a pure function.
#ifndef CACHECAR_HTTP_HOST_PORT_H_
#define CACHECAR_HTTP_HOST_PORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cachecar::http {

// Splits "host:port", "[v6]:port" or ":port"; INVALID_ARGUMENT unless the
// host is a numeric IPv4 (dotted quad, each part 0-255) or IPv6 address (or
// empty) and the port 0-65535. Shared by config validation.
struct HostPort {
  std::string host;  // without brackets; "" = every interface
  int port = 0;
};
absl::StatusOr<HostPort> ParseNumericHostPort(absl::string_view text);

}  // namespace cachecar::http

#endif  // CACHECAR_HTTP_HOST_PORT_H_
