// See metrics.h.
#include "metrics/metrics.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "metrics/service_families.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace cachecar::metrics {
namespace {

constexpr std::array<const char*, 17> kCodeNames = {
    "OK",        "CANCELLED",      "UNKNOWN",           "INVALID_ARGUMENT",   "DEADLINE_EXCEEDED",
    "NOT_FOUND", "ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
    "ABORTED",   "OUT_OF_RANGE",   "UNIMPLEMENTED",     "INTERNAL",           "UNAVAILABLE",
    "DATA_LOSS", "UNAUTHENTICATED"};

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
  return *buckets;
}

int ClampCode(int code) { return code >= 0 && code < 17 ? code : 2; /* UNKNOWN */ }

prometheus::MetricFamily Family(const std::string& name, const std::string& help,
                                prometheus::MetricType type) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  return f;
}

void AddSample(prometheus::MetricFamily& f, const std::string& ns, double value) {
  prometheus::ClientMetric m;
  m.label.push_back({"namespace", ns});
  if (f.type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  f.metric.push_back(std::move(m));
}

}  // namespace

struct Metrics::Families {
  prometheus::Family<prometheus::Counter>* requests;
  prometheus::Family<prometheus::Counter>* store_ops;
  // Serialises Add() on first use of a series (LazySeries); the family
  // pointers are set once, in the constructor.
  Mutex mu;
};

class Metrics::ScrapeCollector : public prometheus::Collectable {
 public:
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::function<std::vector<service::NamespaceStatsView>()> namespaces;
    std::function<size_t()> queue;
    std::function<OutboxSample()> outbox;
    std::function<SyncSample()> sync;
    std::function<LocalReadsSample()> local;
    std::function<service::AuditStats()> audit;
    std::function<service::MinVersionStats()> min_version;
    std::function<WarmStartSample()> warm;
    {
      MutexLock lock(&mu_);
      namespaces = namespaces_;
      queue = queue_;
      outbox = outbox_;
      sync = sync_;
      local = local_;
      audit = audit_;
      min_version = min_version_;
      warm = warm_;
    }
    std::vector<prometheus::MetricFamily> out;
    if (namespaces) {
      const std::vector<service::NamespaceStatsView> all = namespaces();
      AddNamespaces(all, out);
      AddReplicatedFamilies(all, out);
    }
    if (queue) AddQueue(queue(), out);
    if (outbox) AddOutbox(outbox(), out);
    if (sync) AddSync(sync(), out);
    if (local) AddLocalReads(local(), out);
    if (audit) AddAuditFamilies(audit(), out);
    if (min_version) AddMinVersionFamilies(min_version(), out);
    if (warm) AddWarmStartFamilies(warm(), out);
    return out;
  }

  static void AddNamespaces(const std::vector<service::NamespaceStatsView>& all,
                            std::vector<prometheus::MetricFamily>& out) {
    using T = prometheus::MetricType;
    auto hits = Family("cachecar_cache_hits_total", "Lookups answered from the cache.", T::Counter);
    auto misses =
        Family("cachecar_cache_misses_total", "Lookups the cache could not answer.", T::Counter);
    auto loads =
        Family("cachecar_store_loads_total", "Store reads made to fill the cache.", T::Counter);
    auto evictions =
        Family("cachecar_cache_evictions_total", "Entries dropped to make room.", T::Counter);
    auto expirations = Family("cachecar_cache_expirations_total",
                              "Entries dropped because their TTL passed.", T::Counter);
    auto rejected = Family(
        "cachecar_fill_tickets_rejected_total",
        "Loaded values not cached because a newer write or invalidation arrived during the load.",
        T::Counter);
    auto entries =
        Family("cachecar_cache_entries", "Entries in the cache, negative ones included.", T::Gauge);
    auto bytes = Family("cachecar_cache_bytes",
                        "Bytes the cache accounts (keys, values, per-entry overhead).", T::Gauge);
    auto max_bytes = Family("cachecar_cache_max_bytes", "The namespace's byte bound.", T::Gauge);
    auto storage = Family("cachecar_cache_storage_bytes",
                          "Memory the entries' blocks and index slots take in the cache's "
                          "storage (the published file with local reads).",
                          T::Gauge);
    for (const service::NamespaceStatsView& s : all) {
      AddSample(hits, s.name, static_cast<double>(s.engine.hits));
      AddSample(misses, s.name, static_cast<double>(s.engine.misses));
      AddSample(loads, s.name, static_cast<double>(s.loads));
      AddSample(evictions, s.name, static_cast<double>(s.engine.evictions));
      AddSample(expirations, s.name, static_cast<double>(s.engine.expirations));
      AddSample(rejected, s.name, static_cast<double>(s.engine.fills_rejected));
      AddSample(entries, s.name, static_cast<double>(s.engine.entries));
      AddSample(bytes, s.name, static_cast<double>(s.engine.bytes));
      AddSample(max_bytes, s.name, static_cast<double>(s.max_bytes));
      AddSample(storage, s.name, static_cast<double>(s.engine.storage_bytes));
    }
    for (auto* f : {&hits, &misses, &loads, &evictions, &expirations, &rejected, &entries, &bytes,
                    &max_bytes, &storage}) {
      out.push_back(std::move(*f));
    }
  }

  static void AddQueue(size_t depth_now, std::vector<prometheus::MetricFamily>& out) {
    auto depth = Family("cachecar_worker_queue_tasks", "Store tasks waiting for a worker thread.",
                        prometheus::MetricType::Gauge);
    prometheus::ClientMetric m;
    m.gauge.value = static_cast<double>(depth_now);
    depth.metric.push_back(m);
    out.push_back(std::move(depth));
  }

  static void AddOutbox(const OutboxSample& sample, std::vector<prometheus::MetricFamily>& out) {
    auto gauge = [&out](const char* name, const char* help, double value) {
      auto f = Family(name, help, prometheus::MetricType::Gauge);
      prometheus::ClientMetric m;
      m.gauge.value = value;
      f.metric.push_back(m);
      out.push_back(std::move(f));
    };
    if (sample.rows) {
      gauge("cachecar_outbox_rows", "Changes in the outbox not yet relayed.",
            static_cast<double>(*sample.rows));
    }
    if (sample.oldest_age_seconds) {
      gauge("cachecar_outbox_oldest_age_seconds", "Age of the oldest outbox row (0: empty).",
            *sample.oldest_age_seconds);
    }
  }

  static void AddLocalReads(const LocalReadsSample& s, std::vector<prometheus::MetricFamily>& out) {
    using T = prometheus::MetricType;
    auto one = [&out](const char* name, const char* help, T type,
                      const std::vector<std::pair<std::string, double>>& samples) {
      auto f = Family(name, help, type);
      for (auto& [result, value] : samples) {
        prometheus::ClientMetric m;
        if (!result.empty()) m.label.push_back({"result", result});
        (type == T::Counter ? m.counter.value : m.gauge.value) = value;
        f.metric.push_back(std::move(m));
      }
      out.push_back(std::move(f));
    };
    auto d = [](auto v) { return static_cast<double>(v); };
    one("cachecar_local_read_serving", "1 while the published cache's state is serving.", T::Gauge,
        {{"", s.serving ? 1.0 : 0.0}});
    one("cachecar_local_read_trusted",
        "1 while local readers may answer from the published cache (within max_staleness).",
        T::Gauge, {{"", s.trusted ? 1.0 : 0.0}});
    one("cachecar_local_read_mapped_bytes", "Size of the published cache file (sparse).", T::Gauge,
        {{"", d(s.mapped_bytes)}});
    one("cachecar_local_read_clients", "Readers connected to the hit-report socket.", T::Gauge,
        {{"", d(s.clients)}});
    one("cachecar_local_read_clients_refused_total",
        "Hit-report connections refused (over the client limit).", T::Counter,
        {{"", d(s.clients_refused)}});
    one("cachecar_local_read_reports_total", "Hit-report messages by what became of them.",
        T::Counter,
        {{"accepted", d(s.reports)},
         {"rejected", d(s.reports_rejected)},
         {"other_file", d(s.reports_other_file)}});
    one("cachecar_local_read_touches_total",
        "Reported hits by whether they marked a live entry as read for eviction.", T::Counter,
        {{"applied", d(s.touches)}, {"missed", d(s.touches_missed)}});
  }

  using Labels = std::vector<std::pair<std::string, std::string>>;

  // One family of `type`: a sample per (labels, value).
  static void AddLabelled(std::vector<prometheus::MetricFamily>& out, const char* name,
                          const char* help, prometheus::MetricType type,
                          const std::vector<std::pair<Labels, double>>& samples) {
    auto f = Family(name, help, type);
    for (const auto& [labels, value] : samples) {
      prometheus::ClientMetric m;
      for (const auto& [k, v] : labels) m.label.push_back({k, v});
      if (type == prometheus::MetricType::Counter)
        m.counter.value = value;
      else
        m.gauge.value = value;
      f.metric.push_back(std::move(m));
    }
    out.push_back(std::move(f));
  }

  static void AddSync(const SyncSample& s, std::vector<prometheus::MetricFamily>& out) {
    using T = prometheus::MetricType;
    auto one = [&out](const char* name, const char* help, T type,
                      const std::vector<std::pair<Labels, double>>& samples) {
      AddLabelled(out, name, help, type, samples);
    };
    auto d = [](auto v) { return static_cast<double>(v); };
    one("cachecar_sync_positioned", "1 once the consumer is positioned on every partition.",
        T::Gauge, {{{}, s.positioned ? 1.0 : 0.0}});
    one("cachecar_sync_broker_reachable", "1 while the broker answers this replica's probes.",
        T::Gauge, {{{}, s.broker_reachable ? 1.0 : 0.0}});
    one("cachecar_sync_bypass",
        "1 while CACHED reads go to the store: the replica cannot show it is within "
        "max_staleness.",
        T::Gauge, {{{}, s.bypass ? 1.0 : 0.0}});
    one("cachecar_sync_staleness_seconds",
        "How long ago a write may have committed that this replica cannot show it has "
        "applied (by the relays' watermarks, on this replica's clock); +Inf before it can "
        "show anything.",
        T::Gauge, {{{}, s.staleness_seconds}});
    one("cachecar_sync_relay_lease", "1 while this replica holds an outbox relay lease.", T::Gauge,
        {{{}, s.relay_lease ? 1.0 : 0.0}});
    one("cachecar_sync_relays", "Relays whose watermarks this replica read in the last 5s.",
        T::Gauge, {{{}, d(s.relays)}});
    one("cachecar_sync_watermarks_published_total",
        "Watermark rounds this replica's relay published into every partition.", T::Counter,
        {{{}, d(s.watermarks_published)}});
    one("cachecar_sync_clock_uncertainty_seconds",
        "How loosely this replica knows PostgreSQL's clock (round trip of the best reading plus "
        "drift since); +Inf before the first reading.",
        T::Gauge, {{{}, s.clock_uncertainty_seconds}});
    AddSyncCounts(s, out);
  }

  // AddSync's counters, and the lag per partition.
  static void AddSyncCounts(const SyncSample& s, std::vector<prometheus::MetricFamily>& out) {
    using T = prometheus::MetricType;
    auto one = [&out](const char* name, const char* help, T type,
                      const std::vector<std::pair<Labels, double>>& samples) {
      AddLabelled(out, name, help, type, samples);
    };
    auto d = [](auto v) { return static_cast<double>(v); };
    std::vector<std::pair<Labels, double>> lag;
    for (const auto& [partition, messages] : s.lag) {
      lag.push_back({{{"partition", std::to_string(partition)}}, d(messages)});
    }
    one("cachecar_sync_lag_messages", "Messages between the consumer and the high watermark.",
        T::Gauge, lag);
    one("cachecar_sync_events_total", "Sync topic messages by what applying them did.", T::Counter,
        {{{{"result", "applied"}}, d(s.applied)},
         {{{"result", "stale"}}, d(s.stale)},
         {{{"result", "undecodable"}}, d(s.undecodable)},
         {{{"result", "unknown_namespace"}}, d(s.unknown_namespace)}});
    one("cachecar_sync_offset_resets_total",
        "Partitions whose position retention passed (events lost; the cache was flushed).",
        T::Counter, {{{}, d(s.offset_resets)}});
    one("cachecar_sync_published_total", "Events published to the sync topic.", T::Counter,
        {{{{"result", "ok"}}, d(s.published)}, {{{"result", "failed"}}, d(s.publish_failures)}});
    one("cachecar_sync_producer_restarts_total", "Producers recreated after fatal errors.",
        T::Counter, {{{}, d(s.producer_restarts)}});
    one("cachecar_outbox_relayed_total",
        "Outbox entries this replica's relay published (nobody else had announced them).",
        T::Counter, {{{}, d(s.relayed)}});
    one("cachecar_outbox_retired_total", "Outbox entries retired by their writer.", T::Counter,
        {{{}, d(s.retired)}});
    one("cachecar_reads_bypassed_total",
        "CACHED reads answered from the store because of the staleness bound.", T::Counter,
        {{{}, d(s.bypassed_reads)}});
  }

  void SetNamespaces(std::function<std::vector<service::NamespaceStatsView>()> f) {
    MutexLock lock(&mu_);
    namespaces_ = std::move(f);
  }
  void SetQueue(std::function<size_t()> f) {
    MutexLock lock(&mu_);
    queue_ = std::move(f);
  }
  void SetOutbox(std::function<OutboxSample()> f) {
    MutexLock lock(&mu_);
    outbox_ = std::move(f);
  }
  void SetSync(std::function<SyncSample()> f) {
    MutexLock lock(&mu_);
    sync_ = std::move(f);
  }
  void SetLocal(std::function<LocalReadsSample()> f) {
    MutexLock lock(&mu_);
    local_ = std::move(f);
  }
  void SetAudit(std::function<service::AuditStats()> f) {
    MutexLock lock(&mu_);
    audit_ = std::move(f);
  }
  void SetMinVersion(std::function<service::MinVersionStats()> f) {
    MutexLock lock(&mu_);
    min_version_ = std::move(f);
  }
  void SetWarm(std::function<WarmStartSample()> f) {
    MutexLock lock(&mu_);
    warm_ = std::move(f);
  }

 private:
  mutable Mutex mu_;
  std::function<std::vector<service::NamespaceStatsView>()> namespaces_ ABSL_GUARDED_BY(mu_);
  std::function<size_t()> queue_ ABSL_GUARDED_BY(mu_);
  std::function<OutboxSample()> outbox_ ABSL_GUARDED_BY(mu_);
  std::function<SyncSample()> sync_ ABSL_GUARDED_BY(mu_);
  std::function<LocalReadsSample()> local_ ABSL_GUARDED_BY(mu_);
  std::function<service::AuditStats()> audit_ ABSL_GUARDED_BY(mu_);
  std::function<service::MinVersionStats()> min_version_ ABSL_GUARDED_BY(mu_);
  std::function<WarmStartSample()> warm_ ABSL_GUARDED_BY(mu_);
};

Metrics::Metrics(std::string store_name)
    : store_name_(std::move(store_name)),
      registry_(std::make_shared<prometheus::Registry>()),
      families_(std::make_unique<Families>()),
      collector_(std::make_shared<ScrapeCollector>()) {
  families_->requests = &prometheus::BuildCounter()
                             .Name("cachecar_requests_total")
                             .Help("gRPC requests finished, by method and status code.")
                             .Register(*registry_);
  auto& request_seconds = prometheus::BuildHistogram()
                              .Name("cachecar_request_duration_seconds")
                              .Help("gRPC request latency, from arrival to status sent.")
                              .Register(*registry_);
  for (size_t m = 0; m < kMethods.size(); ++m) {
    request_seconds_[m] =
        &request_seconds.Add({{"method", std::string(kMethods[m])}}, LatencyBuckets());
  }
  families_->store_ops = &prometheus::BuildCounter()
                              .Name("cachecar_store_operations_total")
                              .Help("Store calls finished, by operation and status code.")
                              .Register(*registry_);
  auto& store_seconds = prometheus::BuildHistogram()
                            .Name("cachecar_store_duration_seconds")
                            .Help("Store call latency (queries to PostgreSQL included).")
                            .Register(*registry_);
  for (size_t o = 0; o < kStoreOps.size(); ++o) {
    store_seconds_[o] = &store_seconds.Add(
        {{"store", store_name_}, {"op", std::string(kStoreOps[o])}}, LatencyBuckets());
  }
  ready_ = &prometheus::BuildGauge()
                .Name("cachecar_ready")
                .Help(
                    "1 when this process can answer calls (readiness: started, not shutting "
                    "down, not wedged), else 0; PostgreSQL and Kafka have metrics of their own.")
                .Register(*registry_)
                .Add({});
  store_reachable_ = &prometheus::BuildGauge()
                          .Name("cachecar_store_reachable")
                          .Help("1 when the last store health check succeeded, else 0.")
                          .Register(*registry_)
                          .Add({{"store", store_name_}});
}

Metrics::~Metrics() = default;

size_t Metrics::MethodIndex(absl::string_view full_method) {
  constexpr size_t kCacheMethods = 8;  // kMethods[0..7] are cachecar.v1.Cache's
  static_assert(kMethods[kCacheMethods] == "Health" &&
                kMethods[kCacheMethods + 1] == "Reflection" && kMethods.back() == "other");
  if (absl::StartsWith(full_method, "/cachecar.v1.Cache/")) {
    const absl::string_view name = full_method.substr(19);
    for (size_t i = 0; i < kCacheMethods; ++i) {
      if (kMethods[i] == name) return i;
    }
  } else if (absl::StartsWith(full_method, "/grpc.health.v1.Health/")) {
    return kCacheMethods;  // "Health"
  } else if (absl::StartsWith(full_method, "/grpc.reflection.")) {
    return kCacheMethods + 1;  // "Reflection"
  }
  return kMethods.size() - 1;  // "other"
}

absl::string_view Metrics::MethodLabel(absl::string_view full_method) {
  return kMethods[MethodIndex(full_method)];
}

// The series in `slot`, made from `family` with `labels` on first use.
static prometheus::Counter& LazySeries(std::atomic<prometheus::Counter*>& slot,
                                       prometheus::Family<prometheus::Counter>& family,
                                       const prometheus::Labels& labels, Mutex& mu) {
  prometheus::Counter* c = slot.load(std::memory_order_acquire);
  if (c != nullptr) return *c;
  MutexLock lock(&mu);
  c = &family.Add(labels);  // returns the existing series if another thread made it
  slot.store(c, std::memory_order_release);
  return *c;
}

prometheus::Counter& Metrics::RequestCounter(size_t method, int code) {
  return LazySeries(requests_[method][code], *families_->requests,
                    {{"method", std::string(kMethods[method])}, {"code", kCodeNames[code]}},
                    families_->mu);
}

prometheus::Counter& Metrics::StoreCounter(size_t op, int code) {
  return LazySeries(
      store_ops_[op][code], *families_->store_ops,
      {{"store", store_name_}, {"op", std::string(kStoreOps[op])}, {"code", kCodeNames[code]}},
      families_->mu);
}

void Metrics::ObserveRequest(absl::string_view full_method, int code, absl::Duration latency) {
  ObserveRequest(MethodIndex(full_method), code, latency);
}

void Metrics::ObserveRequest(size_t m, int code, absl::Duration latency) {
  if (m >= kMethods.size()) m = kMethods.size() - 1;
  RequestCounter(m, ClampCode(code)).Increment();
  // A Watch stream's duration is how long the client watched, not latency.
  if (kMethods[m] != "Watch") request_seconds_[m]->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::ObserveStore(absl::string_view op, absl::StatusCode code, absl::Duration latency) {
  for (size_t o = 0; o < kStoreOps.size(); ++o) {
    if (kStoreOps[o] != op) continue;
    StoreCounter(o, ClampCode(static_cast<int>(code))).Increment();
    store_seconds_[o]->Observe(absl::ToDoubleSeconds(latency));
    return;
  }
}

void Metrics::SetReady(bool ready) { ready_->Set(ready ? 1 : 0); }
void Metrics::SetStoreReachable(bool reachable) { store_reachable_->Set(reachable ? 1 : 0); }

void Metrics::SetNamespaceSource(std::function<std::vector<service::NamespaceStatsView>()> source) {
  collector_->SetNamespaces(std::move(source));
}
void Metrics::SetWorkerQueueSource(std::function<size_t()> source) {
  collector_->SetQueue(std::move(source));
}
void Metrics::SetOutboxSource(std::function<OutboxSample()> source) {
  collector_->SetOutbox(std::move(source));
}

void Metrics::SetLocalReadsSource(std::function<LocalReadsSample()> source) {
  collector_->SetLocal(std::move(source));
}

void Metrics::SetAuditSource(std::function<service::AuditStats()> source) {
  collector_->SetAudit(std::move(source));
}

void Metrics::SetMinVersionSource(std::function<service::MinVersionStats()> source) {
  collector_->SetMinVersion(std::move(source));
}

void Metrics::SetWarmStartSource(std::function<WarmStartSample()> source) {
  collector_->SetWarm(std::move(source));
}

void Metrics::SetSyncSource(std::function<SyncSample()> source) {
  collector_->SetSync(std::move(source));
}

std::shared_ptr<prometheus::Collectable> Metrics::registry() const { return registry_; }
std::shared_ptr<prometheus::Collectable> Metrics::scrape_time_collector() const {
  return collector_;
}

std::string Metrics::Render() const {
  std::vector<prometheus::MetricFamily> all = registry_->Collect();
  std::vector<prometheus::MetricFamily> more = collector_->Collect();
  all.insert(all.end(), more.begin(), more.end());
  return prometheus::TextSerializer().Serialize(all);
}

// MetricsEndpoint is in metrics_endpoint.cc.

}  // namespace cachecar::metrics
