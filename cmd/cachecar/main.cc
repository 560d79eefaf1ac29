// cachecar: the process. Parses the subcommand and config and runs it:
// serve (cmd/cachecar/serve.h), migrate, check-config, inject, webhook,
// version, help. Single-threaded until Serve starts the others.
#include <iostream>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "cmd/cachecar/inject_command.h"
#include "cmd/cachecar/serve.h"
#include "cmd/cachecar/store_factory.h"
#include "cmd/cachecar/sync_wiring.h"
#include "common/logging.h"
#include "config/config.h"
#include "server/library_logs.h"
#include "spdlog/spdlog.h"

namespace {

int Migrate(const cachecar::config::Config& config) {
  auto summary = cachecar::MigrateStore(config);
  if (!summary.ok()) {
    std::cerr << "cachecar migrate: " << summary.status().message() << "\n";
    return 1;
  }
  for (const std::string& line : *summary) std::cout << line << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  // Debian's abseil is built without NDEBUG, so absl::Mutex would run its
  // deadlock detector on every lock (about 2x the cost of a cache hit).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  std::vector<std::string> args(argv + 1, argv + argc);
  std::string command = "serve";
  if (!args.empty() && (args[0] == "inject" || args[0] == "webhook")) {
    const std::string sub = args[0];
    args.erase(args.begin());
    return sub == "inject" ? cachecar::RunInject(args) : cachecar::RunWebhook(args);
  }
  if (!args.empty() && (args[0] == "serve" || args[0] == "migrate" || args[0] == "version" ||
                        args[0] == "help" || args[0] == "check-config")) {
    command = args[0];
    args.erase(args.begin());
  }
  if (command == "help") {
    std::cout << cachecar::config::HelpText();
    return 0;
  }
  if (command == "version") {
    std::cout << "cachecar " << cachecar::kVersion << "\n";
    return 0;
  }

  auto loaded = cachecar::config::LoadConfig(args, cachecar::config::ProcessEnvironment());
  if (!loaded.ok()) {
    std::cerr << "cachecar: " << loaded.status().message() << "\n";
    return 2;
  }
  if (loaded->help) {
    std::cout << cachecar::config::HelpText();
    return 0;
  }
  if (loaded->version) {
    std::cout << "cachecar " << cachecar::kVersion << "\n";
    return 0;
  }
  const cachecar::config::Config& config = loaded->config;
  if (absl::Status s = cachecar::InitLogging(config.log_level, config.log_format); !s.ok()) {
    std::cerr << "cachecar: " << s.message() << "\n";
    return 2;
  }
  cachecar::server::RouteLibraryLogs(config.log_level);
  if (!config.config_file.empty()) spdlog::info("config file {}", config.config_file);
  if (command == "migrate") return Migrate(config);
  if (command == "check-config") {
    // librdkafka knows its own property names and values.
    if (absl::Status s = cachecar::KafkaPropertiesValid(config); !s.ok()) {
      std::cerr << "cachecar: config: kafka_properties: " << s.message() << "\n";
      return 2;
    }
    std::cout << "config OK: " << cachecar::config::DescribeConfig(config) << "\n";
    return 0;
  }
  return cachecar::Serve(config);
}
