// cachecar: the process. Parses the subcommand and config, wires the store,
// the namespaces, the worker pool, the service and the gRPC server together,
// and shuts down cleanly on SIGTERM/SIGINT.
#include <signal.h>

#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "cmd/cachecar/inject_command.h"
#include "cmd/cachecar/store_factory.h"
#include "cmd/cachecar/sync_wiring.h"
#include "cmd/cachecar/warm_start_wiring.h"
#include "common/fd_limit.h"
#include "common/logging.h"
#include "config/config.h"
#include "metrics/instrumented_store.h"
#include "metrics/metrics.h"
#include "server/grpc_server.h"
#include "server/library_logs.h"
#include "service/auditor.h"
#include "service/cache_service.h"
#include "service/health_monitor.h"
#include "service/local_reads.h"
#include "service/namespaces.h"
#include "service/replicated.h"
#include "service/version_waits.h"
#include "service/watch_hub.h"
#include "service/worker_pool.h"
#include "spdlog/spdlog.h"

namespace {

constexpr const char* kVersion = "0.1.0";

// Blocks SIGTERM and SIGINT in this thread and every thread it starts later,
// so only WaitForStopSignal() sees them.
sigset_t BlockStopSignals() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  sigaddset(&set, SIGINT);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  return set;
}

int WaitForStopSignal(const sigset_t& set) {
  int signal = 0;
  while (sigwait(&set, &signal) != 0) {
  }
  return signal;
}

// "127.0.0.1" of "127.0.0.1:9464" (for the start-up log).
std::string MetricsHost(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

// " table=app.users(id, profile)" for a namespace kept in its own table.
std::string TableOf(const cachecar::config::Config& config, const std::string& name) {
  if (config.store != "postgres") return "";
  for (const auto& ns : config.namespaces) {
    if (ns.name == name && !ns.table.empty()) {
      return " table=" + ns.table + "(" + ns.key_column + ", " + ns.value_column + ")";
    }
  }
  return " table=" + config.postgres_table;
}

int Migrate(const cachecar::config::Config& config) {
  auto summary = cachecar::MigrateStore(config);
  if (!summary.ok()) {
    std::cerr << "cachecar migrate: " << summary.status().message() << "\n";
    return 1;
  }
  for (const std::string& line : *summary) std::cout << line << "\n";
  return 0;
}

int Serve(const cachecar::config::Config& config) {
  using namespace cachecar;
  const sigset_t stop_signals = BlockStopSignals();
  const FdLimit fds = RaiseFdLimit();
  if (fds.now != fds.before) {
    spdlog::info("open-file limit raised from {} to {}", fds.before, fds.now);
  }

  absl::StatusOr<std::unique_ptr<store::Store>> opened = OpenStore(config);
  if (!opened.ok()) {
    spdlog::critical("cannot start: {}", std::string(opened.status().message()));
    return 1;
  }
  metrics::Metrics metrics(std::string((*opened)->Name()));
  metrics::InstrumentedStore store(**opened, metrics);
  // With local_read_path, this retires the previous process's published
  // cache before anything else can be answered (docs/LOCAL_READS.md).
  absl::StatusOr<std::unique_ptr<service::NamespaceSet>> made_namespaces =
      service::NamespaceSet::Create(config);
  if (!made_namespaces.ok()) {
    spdlog::critical("cannot start: {}", std::string(made_namespaces.status().message()));
    return 1;
  }
  service::NamespaceSet& namespaces = **made_namespaces;
  service::WatchHubOptions watch_options;
  watch_options.max_watchers = config.max_watchers;
  watch_options.max_queued_bytes_per_watcher = config.watch_queue_bytes;
  watch_options.max_key_prefix_bytes = config.max_key_bytes;
  service::WatchHub watch_hub(namespaces, watch_options);
  service::VersionWaits version_waits;  // min-version reads waiting for events
  std::unique_ptr<SyncWiring> sync;
  if (!config.kafka_brokers.empty()) {
    absl::StatusOr<std::unique_ptr<SyncWiring>> started =
        SyncWiring::Start(config, store, namespaces, &watch_hub, &version_waits);
    if (!started.ok()) {
      spdlog::critical("cannot start: {}", std::string(started.status().message()));
      return 1;
    }
    sync = *std::move(started);
  }
  service::WorkerPool pool(config.workers, config.worker_queue, "store");
  service::ServiceHooks hooks;
  hooks.watch = &watch_hub;
  hooks.replication = sync ? &sync->replication() : nullptr;
  hooks.waits = sync ? &version_waits : nullptr;
  service::CacheService cache(service::Limits::FromConfig(config), namespaces, store, pool, hooks);
  // Reloads the keys the last process held, once the consumer positioned
  // (positioning flushes), pausing while live store work has a backlog (a
  // worker's worth queued).
  SyncWiring* positioning = sync.get();
  std::unique_ptr<WarmStartWiring> warm = WarmStartWiring::Start(
      config, namespaces, store, metrics,
      [positioning] { return positioning == nullptr || positioning->positioned(); },
      [&pool, backlog = config.workers] { return pool.queued() >= backlog; });
  // Replicated namespaces: loaded whole once positioned, kept whole.
  std::unique_ptr<service::ReplicatedLoader> replicated;
  if (service::ReplicatedLoader::AnyReplicated(namespaces)) {
    service::ReplicatedLoaderOptions r;
    r.page_keys = std::min<size_t>(500, config.max_batch_keys);
    r.may_start = [positioning] { return positioning == nullptr || positioning->positioned(); };
    r.call_timeout = config.postgres_query_timeout;
    replicated = std::make_unique<service::ReplicatedLoader>(namespaces, store, r);
    replicated->Start();
  }
  std::unique_ptr<service::LocalReads> local_reads;
  if (!config.local_read_path.empty()) {
    absl::StatusOr<std::unique_ptr<service::LocalReads>> started =
        service::LocalReads::Start(namespaces, hooks.replication);
    if (!started.ok()) {
      spdlog::critical("cannot start: {}", std::string(started.status().message()));
      return 1;
    }
    local_reads = *std::move(started);
  }
  metrics.SetNamespaceSource([&cache] {
    auto stats = cache.Stats("");  // every namespace: cannot fail
    return stats.ok() ? *std::move(stats) : std::vector<service::NamespaceStatsView>{};
  });
  metrics.SetWorkerQueueSource([&pool] { return pool.queued(); });
  metrics.SetOutboxSource([&store] {
    store::CallOptions options;
    options.deadline = absl::Now() + absl::Seconds(1);
    absl::StatusOr<store::StoreStats> stats = store.Stats(options);
    metrics::Metrics::OutboxSample sample;
    if (stats.ok()) {
      sample.rows = stats->outbox_rows;
      sample.oldest_age_seconds = stats->outbox_oldest_age_seconds;
    }
    return sample;
  });

  if (sync) {
    metrics.SetSyncSource([&sync, &cache] { return sync->MetricsSample(cache.bypassed_reads()); });
  }
  if (local_reads) {
    metrics.SetLocalReadsSource([&local_reads, &namespaces] {
      const service::LocalReadsStats s = local_reads->stats();
      const cache::Storage& storage = namespaces.storage();
      metrics::Metrics::LocalReadsSample m;
      m.serving = storage.state() == localread::kServing;
      m.trusted = absl::Now() <= absl::FromUnixNanos(storage.trusted_until_ns());
      m.mapped_bytes = storage.mapped_bytes();
      m.clients = s.clients;
      m.clients_refused = s.clients_refused;
      m.reports = s.reports;
      m.reports_rejected = s.reports_rejected;
      m.reports_other_file = s.reports_other_file;
      m.touches = s.touches;
      m.touches_missed = s.touches_missed;
      return m;
    });
  }

  // The staleness auditor (service/auditor.h) on its own thread; before the
  // metrics endpoint, so that is gone before the auditor is.
  service::AuditorOptions audit_options;
  audit_options.rate = config.audit_rate;
  audit_options.max_staleness = config.max_staleness;
  service::Auditor auditor(audit_options, namespaces, store, hooks.replication);
  metrics.SetAuditSource([&auditor] { return auditor.stats(); });
  metrics.SetMinVersionSource([&cache] { return cache.min_version_stats(); });
  auditor.Start();

  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;
  if (!config.metrics_listen.empty()) {
    auto endpoint = metrics::MetricsEndpoint::Start(config.metrics_listen, metrics);
    if (!endpoint.ok()) {
      spdlog::critical("cannot start: {}", std::string(endpoint.status().message()));
      return 1;
    }
    metrics_endpoint = std::move(*endpoint);
  }

  server::ServerOptions options;
  options.listen = config.listen;
  options.probe_listen = config.probe_listen;
  options.metrics = &metrics;
  options.max_message_bytes = static_cast<int>(config.max_message_bytes);
  options.watch_hub = &watch_hub;
  // Descriptors beyond the connections: store and Kafka connections, files.
  const server::ConnectionBudget budget =
      server::BudgetConnections(fds.now, config.max_connections, 128 + config.postgres_pool_size);
  options.connections.max_connections = budget.api;
  options.probe_connections.max_connections = budget.probe;
  if (budget.api < config.max_connections) {
    spdlog::warn("max_connections {} lowered to {} to fit the open-file limit ({})",
                 config.max_connections, budget.api, fds.now);
  }
  options.polling_threads = static_cast<int>(config.polling_threads);
  auto server = server::GrpcServer::Start(options, cache);
  if (!server.ok()) {
    spdlog::critical("cannot start: {}", std::string(server.status().message()));
    return 1;
  }
  server::GrpcServer* grpc_server = server->get();
  if (local_reads) {
    local_reads->Serving();
    spdlog::info(
        "local reads: the cache is published at {} ({} bytes mapped, layout 1); apps map it "
        "read-only and report hits on {}.hits",
        config.local_read_path, namespaces.storage().mapped_bytes(), config.local_read_path);
  }
  SyncWiring* sync_wiring = sync.get();
  if (sync_wiring == nullptr) grpc_server->SetHealth(server::kSyncHealthName, true);
  // Readiness follows this process only (docs/DESIGN.md "Availability
  // rules"); PostgreSQL and Kafka have health names and metrics of their own.
  auto progress = std::make_shared<service::ProgressWatch>(
      std::max(absl::Seconds(30), config.postgres_query_timeout * 3));
  service::HealthMonitor::Checks checks;
  checks.process = [progress, &pool, loading = replicated.get()] {
    if (loading != nullptr && !loading->InitialLoadDone()) {  // this process's own state
      return absl::UnavailableError(
          "the replicated namespaces are not loaded yet (readiness waits for their first whole "
          "load from the store)");
    }
    return progress->Check(pool.completed(), pool.queued(), absl::Now());
  };
  checks.store = [&store] {
    store::CallOptions options;
    options.deadline = absl::Now() + absl::Seconds(1);
    return store.CheckHealth(options);
  };
  if (sync_wiring != nullptr) checks.sync = [sync_wiring] { return sync_wiring->CheckSync(); };
  service::HealthMonitor::Reports reports;
  reports.process = [grpc_server, &metrics](bool ok, const absl::Status& why) {
    grpc_server->SetReady(ok);
    metrics.SetReady(ok);
    if (ok) {
      spdlog::info("ready: health readiness SERVING (answers from the cache or the store)");
    } else {
      spdlog::error("not ready: {}; health readiness NOT_SERVING (liveness stays SERVING)",
                    std::string(why.message()));
    }
  };
  reports.store = [grpc_server, &store](bool ok, const absl::Status& why) {
    grpc_server->SetHealth(server::kStoreHealthName, ok);
    if (ok) {
      spdlog::info("store {}: reachable; health {} SERVING", std::string(store.Name()),
                   server::kStoreHealthName);
    } else {
      spdlog::warn(
          "store {}: {}; health {} NOT_SERVING (readiness stays SERVING: calls that need the "
          "store get UNAVAILABLE, cache hits within the bound are still served)",
          std::string(store.Name()), std::string(why.message()), server::kStoreHealthName);
    }
  };
  reports.sync = [grpc_server](bool ok, const absl::Status& why) {
    grpc_server->SetHealth(server::kSyncHealthName, ok);
    if (ok) {
      spdlog::info("sync: within max_staleness; health {} SERVING", server::kSyncHealthName);
    } else {
      spdlog::warn("sync: {}; health {} NOT_SERVING", std::string(why.message()),
                   server::kSyncHealthName);
    }
  };
  auto monitor = std::make_unique<service::HealthMonitor>(std::move(checks), std::move(reports));
  spdlog::info("cachecar {} serving on {} (store={}){}{}; {}", kVersion,
               absl::StrJoin((*server)->bound_addresses(), ", "), std::string(store.Name()),
               (*server)->bound_probe_addresses().empty()
                   ? ""
                   : ", probes on " + absl::StrJoin((*server)->bound_probe_addresses(), ", "),
               metrics_endpoint == nullptr
                   ? ""
                   : absl::StrCat(", metrics on http://", MetricsHost(config.metrics_listen), ":",
                                  metrics_endpoint->port(), "/metrics"),
               config::DescribeConfig(config));

  for (service::Namespace* ns : namespaces.All()) {
    const uint64_t bytes = ns->engine->max_bytes();
    const uint64_t shard_bytes = bytes / ns->shards;
    spdlog::info("namespace {}: max_bytes={} shards={} ttl={}{}", ns->name, bytes, ns->shards,
                 ns->ttl == absl::ZeroDuration() ? "none" : absl::FormatDuration(ns->ttl),
                 TableOf(config, ns->name));
    if (shard_bytes < config.max_value_bytes) {
      spdlog::warn(
          "namespace {}: a shard holds {} bytes, less than max_value_bytes ({}); "
          "larger values are served but never cached (raise max_bytes or the "
          "namespace's max_bytes_share)",
          ns->name, shard_bytes, config.max_value_bytes);
    }
  }

  const int signal = WaitForStopSignal(stop_signals);
  spdlog::info("received {}; health NOT_SERVING, finishing calls in flight (grace {})",
               signal == SIGTERM ? "SIGTERM" : "SIGINT",
               absl::FormatDuration(config.shutdown_grace));
  // A store call that hangs past the grace period must not keep a pod in
  // Terminating forever: give up a little after the grace period.
  absl::Notification stopped;
  std::thread watchdog([&stopped, grace = config.shutdown_grace] {
    if (!stopped.WaitForNotificationWithTimeout(grace + absl::Seconds(5))) {
      spdlog::error("shutdown did not finish within shutdown_grace + 5s; exiting now");
      spdlog::shutdown();
      std::_Exit(1);
    }
  });
  version_waits.Shutdown();  // waiting min-version reads read the store now
  (*server)->Shutdown(config.shutdown_grace);
  // No request changes the cache any more: local readers fall back from here.
  if (local_reads) local_reads->Stop();
  monitor.reset();  // before the server it reports to
  if (replicated) replicated->Stop();
  pool.Shutdown();
  server->reset();
  if (warm) warm->SaveAndStop();  // the cache changes no more (but for events)
  if (sync) sync->Stop();         // after the last write: its announcement gets out
  stopped.Notify();
  watchdog.join();
  spdlog::info("stopped");
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
    std::cout << "cachecar " << kVersion << "\n";
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
    std::cout << "cachecar " << kVersion << "\n";
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
  return Serve(config);
}
