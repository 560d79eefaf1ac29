// See serve.h. Serve() runs named steps over one Process, whose members are
// declared in start order, so they are destroyed in reverse.
#include "cmd/cachecar/serve.h"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/notification.h"
#include "app/readiness.h"
#include "app/stop_signals.h"
#include "cmd/cachecar/store_factory.h"
#include "cmd/cachecar/sync_wiring.h"
#include "cmd/cachecar/warm_start_wiring.h"
#include "common/fd_limit.h"
#include "metrics/instrumented_store.h"
#include "metrics/metrics.h"
#include "server/grpc_server.h"
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

namespace cachecar {
namespace {

// Everything `serve` runs, in start order.
struct Process {
  explicit Process(const config::Config& c) : config(c) {}
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  const config::Config& config;
  FdLimit fds;
  std::unique_ptr<store::Store> opened;
  std::unique_ptr<metrics::Metrics> metrics;
  std::unique_ptr<metrics::InstrumentedStore> store;
  std::unique_ptr<service::NamespaceSet> namespaces;
  std::unique_ptr<service::WatchHub> watch_hub;
  service::VersionWaits version_waits;  // min-version reads waiting for events
  std::unique_ptr<SyncWiring> sync;
  std::unique_ptr<service::WorkerPool> pool;
  service::ServiceHooks hooks;
  std::unique_ptr<service::CacheService> cache;
  std::unique_ptr<WarmStartWiring> warm;
  std::unique_ptr<service::ReplicatedLoader> replicated;
  std::unique_ptr<service::LocalReads> local_reads;
  std::unique_ptr<service::Auditor> auditor;
  std::unique_ptr<metrics::MetricsEndpoint> metrics_endpoint;
  std::unique_ptr<server::GrpcServer> server;
  std::unique_ptr<service::HealthMonitor> monitor;
};

// "127.0.0.1" of "127.0.0.1:9464" (for the start-up log).
std::string MetricsHost(const std::string& address) {
  return address.substr(0, address.rfind(':'));
}

// " table=app.users(id, profile)" for a namespace kept in its own table.
std::string TableOf(const config::Config& config, const std::string& name) {
  if (config.store != "postgres") return "";
  for (const auto& ns : config.namespaces) {
    if (ns.name == name && !ns.table.empty()) {
      return " table=" + ns.table + "(" + ns.key_column + ", " + ns.value_column + ")";
    }
  }
  return " table=" + config.postgres_table;
}

// The store (instrumented), the namespaces and the watch hub.
absl::Status OpenStoreAndNamespaces(Process& p) {
  absl::StatusOr<std::unique_ptr<store::Store>> opened = OpenStore(p.config);
  if (!opened.ok()) return opened.status();
  p.opened = *std::move(opened);
  p.metrics = std::make_unique<metrics::Metrics>(std::string(p.opened->Name()));
  p.store = std::make_unique<metrics::InstrumentedStore>(*p.opened, *p.metrics);
  // With local_read_path, this retires the previous process's published
  // cache before anything else can be answered (docs/LOCAL_READS.md).
  absl::StatusOr<std::unique_ptr<service::NamespaceSet>> made =
      service::NamespaceSet::Create(p.config);
  if (!made.ok()) return made.status();
  p.namespaces = *std::move(made);
  service::WatchHubOptions watch_options;
  watch_options.max_watchers = p.config.max_watchers;
  watch_options.max_queued_bytes_per_watcher = p.config.watch_queue_bytes;
  watch_options.max_key_prefix_bytes = p.config.max_key_bytes;
  p.watch_hub = std::make_unique<service::WatchHub>(*p.namespaces, watch_options);
  return absl::OkStatus();
}

// The sync topic, when kafka_brokers is set.
absl::Status StartSync(Process& p) {
  if (p.config.kafka_brokers.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<SyncWiring>> started =
      SyncWiring::Start(p.config, *p.store, *p.namespaces, p.watch_hub.get(), &p.version_waits);
  if (!started.ok()) return started.status();
  p.sync = *std::move(started);
  return absl::OkStatus();
}

// The worker pool and the cache service over it.
void StartCache(Process& p) {
  p.pool = std::make_unique<service::WorkerPool>(p.config.workers, p.config.worker_queue, "store");
  p.hooks.watch = p.watch_hub.get();
  p.hooks.replication = p.sync ? &p.sync->replication() : nullptr;
  p.hooks.waits = p.sync ? &p.version_waits : nullptr;
  p.cache = std::make_unique<service::CacheService>(service::Limits::FromConfig(p.config),
                                                    *p.namespaces, *p.store, *p.pool, p.hooks);
}

// The warm start and the replicated namespaces' loader.
void StartLoaders(Process& p) {
  // Reloads the keys the last process held, once the consumer positioned
  // (positioning flushes), pausing while live store work has a backlog (a
  // worker's worth queued).
  SyncWiring* positioning = p.sync.get();
  p.warm = WarmStartWiring::Start(
      p.config, *p.namespaces, *p.store, *p.metrics,
      [positioning] { return positioning == nullptr || positioning->positioned(); },
      [pool = p.pool.get(), backlog = p.config.workers] { return pool->queued() >= backlog; });
  // Replicated namespaces: loaded whole once positioned, kept whole.
  if (service::ReplicatedLoader::AnyReplicated(*p.namespaces)) {
    service::ReplicatedLoaderOptions r;
    r.page_keys = std::min<size_t>(500, p.config.max_batch_keys);
    r.may_start = [positioning] { return positioning == nullptr || positioning->positioned(); };
    r.call_timeout = p.config.postgres_query_timeout;
    p.replicated = std::make_unique<service::ReplicatedLoader>(*p.namespaces, *p.store, r);
    p.replicated->Start();
  }
}

// Local reads, when local_read_path is set.
absl::Status StartLocalReads(Process& p) {
  if (p.config.local_read_path.empty()) return absl::OkStatus();
  absl::StatusOr<std::unique_ptr<service::LocalReads>> started =
      service::LocalReads::Start(*p.namespaces, p.hooks.replication);
  if (!started.ok()) return started.status();
  p.local_reads = *std::move(started);
  return absl::OkStatus();
}

metrics::Metrics::LocalReadsSample LocalReadsSampleOf(const service::LocalReads& local_reads,
                                                      const cache::Storage& storage) {
  const service::LocalReadsStats s = local_reads.stats();
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
}

// What /metrics reads at scrape time.
void SetMetricsSources(Process& p) {
  metrics::Metrics& metrics = *p.metrics;
  service::CacheService* cache = p.cache.get();
  metrics.SetNamespaceSource([cache] {
    auto stats = cache->Stats("");  // every namespace: cannot fail
    return stats.ok() ? *std::move(stats) : std::vector<service::NamespaceStatsView>{};
  });
  metrics.SetWorkerQueueSource([pool = p.pool.get()] { return pool->queued(); });
  metrics.SetOutboxSource([store = p.store.get()] {
    store::CallOptions options;
    options.deadline = absl::Now() + absl::Seconds(1);
    absl::StatusOr<store::StoreStats> stats = store->Stats(options);
    metrics::Metrics::OutboxSample sample;
    if (stats.ok()) {
      sample.rows = stats->outbox_rows;
      sample.oldest_age_seconds = stats->outbox_oldest_age_seconds;
    }
    return sample;
  });
  if (p.sync) {
    metrics.SetSyncSource(
        [sync = p.sync.get(), cache] { return sync->MetricsSample(cache->bypassed_reads()); });
  }
  if (p.local_reads) {
    metrics.SetLocalReadsSource(
        [local_reads = p.local_reads.get(), namespaces = p.namespaces.get()] {
          return LocalReadsSampleOf(*local_reads, namespaces->storage());
        });
  }
}

// The staleness auditor (service/auditor.h) on its own thread; before the
// metrics endpoint, so that is gone before the auditor is.
void StartAuditor(Process& p) {
  service::AuditorOptions audit_options;
  audit_options.rate = p.config.audit_rate;
  audit_options.max_staleness = p.config.max_staleness;
  p.auditor = std::make_unique<service::Auditor>(audit_options, *p.namespaces, *p.store,
                                                 p.hooks.replication);
  p.metrics->SetAuditSource([auditor = p.auditor.get()] { return auditor->stats(); });
  p.metrics->SetMinVersionSource([cache = p.cache.get()] { return cache->min_version_stats(); });
  p.auditor->Start();
}

// The /metrics endpoint, when metrics_listen is set.
absl::Status StartMetricsEndpoint(Process& p) {
  if (p.config.metrics_listen.empty()) return absl::OkStatus();
  auto endpoint = metrics::MetricsEndpoint::Start(p.config.metrics_listen, *p.metrics);
  if (!endpoint.ok()) return endpoint.status();
  p.metrics_endpoint = std::move(*endpoint);
  return absl::OkStatus();
}

// The gRPC server, its connections budgeted to the open-file limit.
absl::Status StartGrpcServer(Process& p) {
  const config::Config& config = p.config;
  server::ServerOptions options;
  options.listen = config.listen;
  options.probe_listen = config.probe_listen;
  options.metrics = p.metrics.get();
  options.max_message_bytes = static_cast<int>(config.max_message_bytes);
  options.watch_hub = p.watch_hub.get();
  // Descriptors beyond the connections: store and Kafka connections, files.
  const server::ConnectionBudget budget =
      server::BudgetConnections(p.fds.now, config.max_connections, 128 + config.postgres_pool_size);
  options.connections.max_connections = budget.api;
  options.probe_connections.max_connections = budget.probe;
  if (budget.api < config.max_connections) {
    spdlog::warn("max_connections {} lowered to {} to fit the open-file limit ({})",
                 config.max_connections, budget.api, p.fds.now);
  }
  options.polling_threads = static_cast<int>(config.polling_threads);
  auto server = server::GrpcServer::Start(options, *p.cache);
  if (!server.ok()) return server.status();
  p.server = *std::move(server);
  return absl::OkStatus();
}

// Once the server answers: local readers may map the cache.
void PublishLocalReads(Process& p) {
  if (!p.local_reads) return;
  p.local_reads->Serving();
  spdlog::info(
      "local reads: the cache is published at {} ({} bytes mapped, layout 1); apps map it "
      "read-only and report hits on {}.hits",
      p.config.local_read_path, p.namespaces->storage().mapped_bytes(), p.config.local_read_path);
}

// Readiness follows this process only (docs/DESIGN.md "Availability
// rules"); PostgreSQL and Kafka have health names and metrics of their own.
service::HealthMonitor::Checks HealthChecks(Process& p) {
  auto progress =
      std::make_shared<service::ProgressWatch>(app::StuckAfter(p.config.postgres_query_timeout));
  service::HealthMonitor::Checks checks;
  checks.process = [progress, pool = p.pool.get(), loading = p.replicated.get()] {
    const bool loaded = loading == nullptr || loading->InitialLoadDone();
    return app::ProcessReadiness(loaded, *progress, pool->completed(), pool->queued(), absl::Now());
  };
  checks.store = [store = p.store.get()] {
    store::CallOptions options;
    options.deadline = absl::Now() + absl::Seconds(1);
    return store->CheckHealth(options);
  };
  if (SyncWiring* sync = p.sync.get()) checks.sync = [sync] { return sync->CheckSync(); };
  return checks;
}

// What a change of each health check sets and logs.
service::HealthMonitor::Reports HealthReports(Process& p) {
  server::GrpcServer* grpc_server = p.server.get();
  service::HealthMonitor::Reports reports;
  reports.process = [grpc_server, metrics = p.metrics.get()](bool ok, const absl::Status& why) {
    grpc_server->SetReady(ok);
    metrics->SetReady(ok);
    if (ok) {
      spdlog::info("ready: health readiness SERVING (answers from the cache or the store)");
    } else {
      spdlog::error("not ready: {}; health readiness NOT_SERVING (liveness stays SERVING)",
                    std::string(why.message()));
    }
  };
  reports.store = [grpc_server, store = p.store.get()](bool ok, const absl::Status& why) {
    grpc_server->SetHealth(server::kStoreHealthName, ok);
    if (ok) {
      spdlog::info("store {}: reachable; health {} SERVING", std::string(store->Name()),
                   server::kStoreHealthName);
    } else {
      spdlog::warn(
          "store {}: {}; health {} NOT_SERVING (readiness stays SERVING: calls that need the "
          "store get UNAVAILABLE, cache hits within the bound are still served)",
          std::string(store->Name()), std::string(why.message()), server::kStoreHealthName);
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
  return reports;
}

void StartHealth(Process& p) {
  if (p.sync == nullptr) p.server->SetHealth(server::kSyncHealthName, true);
  p.monitor = std::make_unique<service::HealthMonitor>(HealthChecks(p), HealthReports(p));
}

// Every step up to serving, in order; the first failure ends it.
absl::Status Start(Process& p) {
  p.fds = RaiseFdLimit();
  if (p.fds.now != p.fds.before) {
    spdlog::info("open-file limit raised from {} to {}", p.fds.before, p.fds.now);
  }
  if (absl::Status s = OpenStoreAndNamespaces(p); !s.ok()) return s;
  if (absl::Status s = StartSync(p); !s.ok()) return s;
  StartCache(p);
  StartLoaders(p);
  if (absl::Status s = StartLocalReads(p); !s.ok()) return s;
  SetMetricsSources(p);
  StartAuditor(p);
  if (absl::Status s = StartMetricsEndpoint(p); !s.ok()) return s;
  if (absl::Status s = StartGrpcServer(p); !s.ok()) return s;
  PublishLocalReads(p);
  StartHealth(p);
  return absl::OkStatus();
}

// The start-up log: addresses, config, and each namespace.
void LogServing(const Process& p) {
  const config::Config& config = p.config;
  spdlog::info("cachecar {} serving on {} (store={}){}{}; {}", kVersion,
               absl::StrJoin(p.server->bound_addresses(), ", "), std::string(p.store->Name()),
               p.server->bound_probe_addresses().empty()
                   ? ""
                   : ", probes on " + absl::StrJoin(p.server->bound_probe_addresses(), ", "),
               p.metrics_endpoint == nullptr
                   ? ""
                   : absl::StrCat(", metrics on http://", MetricsHost(config.metrics_listen), ":",
                                  p.metrics_endpoint->port(), "/metrics"),
               config::DescribeConfig(config));
  for (service::Namespace* ns : p.namespaces->All()) {
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
}

// Stops serving, in order, within shutdown_grace (+5 s, then exits).
void Shutdown(Process& p, int signal) {
  spdlog::info("received {}; health NOT_SERVING, finishing calls in flight (grace {})",
               app::StopSignalName(signal), absl::FormatDuration(p.config.shutdown_grace));
  // A store call that hangs past the grace period must not keep a pod in
  // Terminating forever: give up a little after the grace period.
  absl::Notification stopped;
  std::thread watchdog([&stopped, grace = p.config.shutdown_grace] {
    if (!stopped.WaitForNotificationWithTimeout(grace + absl::Seconds(5))) {
      spdlog::error("shutdown did not finish within shutdown_grace + 5s; exiting now");
      spdlog::shutdown();
      std::_Exit(1);
    }
  });
  p.version_waits.Shutdown();  // waiting min-version reads read the store now
  p.server->Shutdown(p.config.shutdown_grace);
  // No request changes the cache any more: local readers fall back from here.
  if (p.local_reads) p.local_reads->Stop();
  p.monitor.reset();  // before the server it reports to
  if (p.replicated) p.replicated->Stop();
  p.pool->Shutdown();
  p.server.reset();
  if (p.warm) p.warm->SaveAndStop();  // the cache changes no more (but for events)
  if (p.sync) p.sync->Stop();         // after the last write: its announcement gets out
  stopped.Notify();
  watchdog.join();
  spdlog::info("stopped");
}

}  // namespace

int Serve(const config::Config& config) {
  const sigset_t stop_signals = app::BlockStopSignals();
  Process p(config);
  if (absl::Status s = Start(p); !s.ok()) {
    spdlog::critical("cannot start: {}", std::string(s.message()));
    return 1;
  }
  LogServing(p);
  Shutdown(p, app::WaitForStopSignal(stop_signals));
  return 0;
}

}  // namespace cachecar
