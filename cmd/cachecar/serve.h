// `cachecar serve`: wires the store, the namespaces, the worker pool, the
// service and the gRPC server together, serves until SIGTERM/SIGINT, and
// shuts down cleanly. Call from the main thread before any other thread
// starts (the stop signals are blocked for every thread).
#ifndef CACHECAR_CMD_CACHECAR_SERVE_H_
#define CACHECAR_CMD_CACHECAR_SERVE_H_

#include "config/config.h"

namespace cachecar {

inline constexpr char kVersion[] = "0.1.0";

// The process's exit code: 0 after a clean stop, 1 when it cannot start.
int Serve(const config::Config& config);

}  // namespace cachecar

#endif  // CACHECAR_CMD_CACHECAR_SERVE_H_
