// See library_logs.h.
#include "server/library_logs.h"

#include <google/protobuf/stubs/logging.h>
#include <grpc/support/log.h>

#include <cstdlib>
#include <cstring>

#include "absl/time/clock.h"
#include "common/mutex.h"
#include "spdlog/spdlog.h"

namespace cachecar::server {
namespace {

// One source's budget of lines per window.
class Throttle {
 public:
  explicit Throttle(const char* name) : name_(name) {}

  void Configure(LibraryLogLimits limits) {
    MutexLock lock(&mu_);
    limits_ = limits;
  }

  void Log(spdlog::level::level_enum level, const char* file, int line, const char* message) {
    uint64_t suppressed = 0;
    LibraryLogLimits limits;
    {
      MutexLock lock(&mu_);
      limits = limits_;
      const absl::Time now = absl::Now();
      if (now - window_start_ >= limits_.window) {
        window_start_ = now;
        used_ = 0;
      }
      if (used_ >= limits_.burst) {
        ++suppressed_;
        return;
      }
      ++used_;
      suppressed = suppressed_;
      suppressed_ = 0;
    }
    // Only the file's base name: the build paths say nothing to a reader.
    const char* slash = file == nullptr ? nullptr : std::strrchr(file, '/');
    const char* base = slash != nullptr ? slash + 1 : (file != nullptr ? file : "?");
    if (suppressed > 0) {
      spdlog::warn("{}: {} more lines were suppressed (over {} per {})", name_, suppressed,
                   limits.burst, absl::FormatDuration(limits.window));
    }
    spdlog::log(level, "{} {}:{}: {}", name_, base, line, message);
  }

 private:
  const char* const name_;
  Mutex mu_;
  LibraryLogLimits limits_ ABSL_GUARDED_BY(mu_);
  absl::Time window_start_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  int used_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t suppressed_ ABSL_GUARDED_BY(mu_) = 0;
};

Throttle& ProtobufThrottle() {
  static Throttle* const t = new Throttle("libprotobuf");
  return *t;
}

Throttle& GrpcThrottle() {
  static Throttle* const t = new Throttle("grpc");
  return *t;
}

void OnProtobufLog(google::protobuf::LogLevel level, const char* file, int line,
                   const std::string& message) {
  spdlog::level::level_enum to = spdlog::level::info;
  switch (level) {
    case google::protobuf::LOGLEVEL_INFO:
      to = spdlog::level::info;
      break;
    case google::protobuf::LOGLEVEL_WARNING:
      to = spdlog::level::warn;
      break;
    case google::protobuf::LOGLEVEL_ERROR:
      to = spdlog::level::err;
      break;
    case google::protobuf::LOGLEVEL_FATAL:
      to = spdlog::level::critical;
      break;
  }
  ProtobufThrottle().Log(to, file, line, message.c_str());
}

void OnGrpcLog(gpr_log_func_args* args) {
  spdlog::level::level_enum to = spdlog::level::err;
  switch (args->severity) {
    case GPR_LOG_SEVERITY_DEBUG:
      to = spdlog::level::debug;
      break;
    case GPR_LOG_SEVERITY_INFO:
      to = spdlog::level::info;
      break;
    case GPR_LOG_SEVERITY_ERROR:
      to = spdlog::level::err;
      break;
  }
  GrpcThrottle().Log(to, args->file, args->line, args->message);
}

}  // namespace

void RouteLibraryLogs(const std::string& level, LibraryLogLimits limits) {
  ProtobufThrottle().Configure(limits);
  GrpcThrottle().Configure(limits);
  google::protobuf::SetLogHandler(&OnProtobufLog);
  gpr_set_log_function(&OnGrpcLog);
  if (std::getenv("GRPC_VERBOSITY") == nullptr) {  // an operator's own setting wins
    gpr_set_log_verbosity(level == "debug" || level == "trace" ? GPR_LOG_SEVERITY_DEBUG
                                                               : GPR_LOG_SEVERITY_ERROR);
  }
}

}  // namespace cachecar::server
