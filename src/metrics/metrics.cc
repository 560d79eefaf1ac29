// See metrics.h.
#include "metrics/metrics.h"

#include <string>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "metrics/scrape_families.h"
#include "metrics/service_families.h"
#include "prometheus/collectable.h"
#include "prometheus/counter.h"
#include "prometheus/gauge.h"
#include "prometheus/histogram.h"
#include "prometheus/registry.h"
#include "prometheus/text_serializer.h"

namespace cachecar::metrics {
namespace {

// The `code` label: grpc::StatusCode and absl::StatusCode share their
// numbers and names ("OK", "CANCELLED", ... "UNAUTHENTICATED"), and
// StatusCodeToString gives those names (metrics_test checks all 17).
std::string CodeLabel(int code) {
  return absl::StatusCodeToString(static_cast<absl::StatusCode>(code));
}

const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const auto* const buckets = new prometheus::Histogram::BucketBoundaries{
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01,
      0.025,   0.05,   0.1,     0.25,   0.5,   1,      2.5,   5};
  return *buckets;
}

// A code outside grpc::StatusCode 0..16 counts as UNKNOWN (2).
int ClampCode(int code) { return code >= 0 && code < 17 ? code : 2; }

// The series in `slot`, made from `family` with make_labels() on first use
// (later calls build no labels).
template <typename MakeLabels>
prometheus::Counter& LazySeries(std::atomic<prometheus::Counter*>& slot,
                                prometheus::Family<prometheus::Counter>& family,
                                const MakeLabels& make_labels, Mutex& mu) {
  prometheus::Counter* c = slot.load(std::memory_order_acquire);
  if (c != nullptr) return *c;
  MutexLock lock(&mu);
  c = &family.Add(make_labels());  // returns the existing series if another thread made it
  slot.store(c, std::memory_order_release);
  return *c;
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
      AddNamespaceFamilies(all, out);
      AddReplicatedFamilies(all, out);
    }
    if (queue) AddWorkerQueueFamily(queue(), out);
    if (outbox) AddOutboxFamilies(outbox(), out);
    if (sync) AddSyncFamilies(sync(), out);
    if (local) AddLocalReadsFamilies(local(), out);
    if (audit) AddAuditFamilies(audit(), out);
    if (min_version) AddMinVersionFamilies(min_version(), out);
    if (warm) AddWarmStartFamilies(warm(), out);
    return out;
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

prometheus::Counter& Metrics::RequestCounter(size_t method, int code) {
  return LazySeries(
      requests_[method][code], *families_->requests,
      [&]() -> prometheus::Labels {
        return {{"method", std::string(kMethods[method])}, {"code", CodeLabel(code)}};
      },
      families_->mu);
}

prometheus::Counter& Metrics::StoreCounter(size_t op, int code) {
  return LazySeries(
      store_ops_[op][code], *families_->store_ops,
      [&]() -> prometheus::Labels {
        return {
            {"store", store_name_}, {"op", std::string(kStoreOps[op])}, {"code", CodeLabel(code)}};
      },
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
