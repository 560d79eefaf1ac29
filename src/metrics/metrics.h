// Metrics: cachecar's Prometheus metrics (prometheus-cpp), in one registry.
// Hot paths record into pre-built series (no label lookups per call); the
// per-namespace cache numbers are read from the engines when scraped, so a
// cache hit pays nothing for them.
//
// Names follow Prometheus conventions: cachecar_ prefix, base units in the
// name (_seconds, _bytes), _total for counters.
//
// Thread-safety: every method may be called from any thread.
#ifndef CACHECAR_METRICS_METRICS_H_
#define CACHECAR_METRICS_METRICS_H_

#include <array>
#include <atomic>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "service/auditor.h"
#include "service/cache_service.h"

namespace prometheus {
class Counter;
class Gauge;
class Histogram;
class Registry;
class Collectable;
}  // namespace prometheus

namespace cachecar::metrics {

// The RPCs counted by method; anything else is "other".
inline constexpr std::array<absl::string_view, 11> kMethods = {
    "Get",   "BatchGet",   "Put",    "Delete",     "Invalidate", "Stats",
    "Watch", "WriteBatch", "Health", "Reflection", "other"};
// Store operations.
inline constexpr std::array<absl::string_view, 8> kStoreOps = {
    "load",         "load_batch",  "put",           "delete",
    "health_check", "write_batch", "read_versions", "scan_keys"};

class Metrics {
 public:
  explicit Metrics(std::string store_name);
  ~Metrics();
  Metrics(const Metrics&) = delete;
  Metrics& operator=(const Metrics&) = delete;

  // A finished RPC: `full_method` as gRPC names it ("/cachecar.v1.Cache/Get"),
  // `code` a grpc::StatusCode value.
  void ObserveRequest(absl::string_view full_method, int code, absl::Duration latency);
  // The same, with the method as its position in kMethods (MethodIndex):
  // no name matching on the hot path.
  void ObserveRequest(size_t method, int code, absl::Duration latency);
  // A finished store call (op from kStoreOps).
  void ObserveStore(absl::string_view op, absl::StatusCode code, absl::Duration latency);
  // Readiness (1 = this process can answer calls) and store reachability.
  void SetReady(bool ready);
  void SetStoreReachable(bool reachable);

  // Read at scrape time.
  // The per-namespace numbers (CacheService::Stats("") in the server).
  void SetNamespaceSource(std::function<std::vector<service::NamespaceStatsView>()> source);
  void SetWorkerQueueSource(std::function<size_t()> source);
  // Outbox rows and the oldest one's age; unset values are left out.
  struct OutboxSample {
    std::optional<uint64_t> rows;
    std::optional<double> oldest_age_seconds;
  };
  void SetOutboxSource(std::function<OutboxSample()> source);
  // The sync topic, the staleness bound and the outbox relay.
  struct SyncSample {
    bool positioned = false;
    bool broker_reachable = false;
    bool bypass = false;                           // CACHED reads go to the store now
    double staleness_seconds = 0;                  // +Inf before the consumer is positioned
    std::vector<std::pair<int32_t, int64_t>> lag;  // partition, messages behind
    uint64_t applied = 0, stale = 0, undecodable = 0, unknown_namespace = 0;
    uint64_t offset_resets = 0, published = 0, publish_failures = 0, producer_restarts = 0;
    uint64_t relayed = 0, retired = 0, bypassed_reads = 0;
    bool relay_lease = false;  // this replica relays now
    uint64_t relays = 0;       // relays whose watermarks arrived lately
    uint64_t watermarks_published = 0;
    double clock_uncertainty_seconds = 0;  // +Inf before the store's clock was read
  };
  void SetSyncSource(std::function<SyncSample()> source);
  // Local reads (docs/LOCAL_READS.md): the published file and its hit reports.
  struct LocalReadsSample {
    bool serving = false;  // the file's state is "serving"
    bool trusted = false;  // now <= its trusted_until: local readers answer
    uint64_t mapped_bytes = 0;
    uint64_t clients = 0, clients_refused = 0;
    uint64_t reports = 0, reports_rejected = 0, reports_other_file = 0;
    uint64_t touches = 0, touches_missed = 0;
  };
  void SetLocalReadsSource(std::function<LocalReadsSample()> source);
  // The staleness auditor (service/auditor.h).
  void SetAuditSource(std::function<service::AuditStats()> source);
  // What min-version reads did (CacheService::min_version_stats).
  void SetMinVersionSource(std::function<service::MinVersionStats()> source);

  // Warm start (warm_start_file): the keys being reloaded after a restart.
  struct WarmStartSample {
    uint64_t keys = 0;          // in the file, for declared namespaces
    uint64_t loaded = 0;        // filled into the cache
    uint64_t skipped = 0;       // newer news won, or not loadable
    uint64_t store_errors = 0;  // store reads that failed (retried)
    bool done = false;
  };
  void SetWarmStartSource(std::function<WarmStartSample()> source);

  // What the /metrics endpoint serves.
  std::shared_ptr<prometheus::Collectable> registry() const;
  std::shared_ptr<prometheus::Collectable> scrape_time_collector() const;

  // The whole exposition, as /metrics serves it (tests, debugging).
  std::string Render() const;

  // Maps "/cachecar.v1.Cache/Get" → "Get"; health and reflection methods
  // → "Health" / "Reflection"; anything else → "other".
  static absl::string_view MethodLabel(absl::string_view full_method);
  // MethodLabel's position in kMethods.
  static size_t MethodIndex(absl::string_view full_method);

 private:
  class ScrapeCollector;
  static constexpr size_t kCodes = 17;  // grpc::StatusCode 0..16

  struct Families;
  // Series are made on first use (a method that never saw an error shows no
  // zero-valued error series), then reached without a lookup.
  prometheus::Counter& RequestCounter(size_t method, int code);
  prometheus::Counter& StoreCounter(size_t op, int code);

  const std::string store_name_;
  std::shared_ptr<prometheus::Registry> registry_;
  std::unique_ptr<Families> families_;
  std::shared_ptr<ScrapeCollector> collector_;
  std::array<std::array<std::atomic<prometheus::Counter*>, kCodes>, kMethods.size()> requests_{};
  std::array<prometheus::Histogram*, kMethods.size()> request_seconds_{};
  std::array<std::array<std::atomic<prometheus::Counter*>, kCodes>, kStoreOps.size()> store_ops_{};
  std::array<prometheus::Histogram*, kStoreOps.size()> store_seconds_{};
  prometheus::Gauge* ready_ = nullptr;
  prometheus::Gauge* store_reachable_ = nullptr;
};

// The /metrics HTTP endpoint on `address` (host:port, numeric host), served
// by http::HttpServer (bounded: a half-sent or dripping request cannot hold
// it, issue #17) rather than prometheus-cpp's civetweb Exposer. Fails with a
// clear error when the address is not valid or cannot be bound.
class MetricsEndpoint {
 public:
  static absl::StatusOr<std::unique_ptr<MetricsEndpoint>> Start(const std::string& address,
                                                                const Metrics& metrics);
  ~MetricsEndpoint();
  // The port actually bound (for ":0").
  int port() const { return port_; }

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  int port_ = 0;
};

}  // namespace cachecar::metrics

#endif  // CACHECAR_METRICS_METRICS_H_
