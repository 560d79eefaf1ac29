// Routes the log lines of the libraries beneath us, protobuf
// (google::protobuf::SetLogHandler) and gRPC core (gpr_set_log_function),
// through the spdlog default logger, so --log-format=json never gets a raw
// "[libprotobuf ERROR ...]" or "E1201 ... tcp_server_posix.cc" line, and
// rate-limited: a client can make protobuf log one line per request (a key
// that is not valid UTF-8), and such lines must not flood the log (issue #17).
//
// Each source may log `burst` lines per `window`; past that, lines are
// counted and the next line let through says how many were suppressed.
//
// Thread-safety: call RouteLibraryLogs once, after InitLogging and before
// other threads start; the handlers may then run on any thread.
#ifndef CACHECAR_SERVER_LIBRARY_LOGS_H_
#define CACHECAR_SERVER_LIBRARY_LOGS_H_

#include <string>

#include "absl/time/time.h"

namespace cachecar::server {

struct LibraryLogLimits {
  int burst = 20;
  absl::Duration window = absl::Seconds(10);
};

// `level` is cachecar's log level: gRPC core logs its debug and info lines
// only when it is debug or trace (its own default is errors only).
void RouteLibraryLogs(const std::string& level, LibraryLogLimits limits = {});

}  // namespace cachecar::server

#endif  // CACHECAR_SERVER_LIBRARY_LOGS_H_
