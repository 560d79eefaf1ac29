// See service_families.h.
#include "metrics/service_families.h"

#include <string>
#include <utility>

namespace cachecar::metrics {
namespace {

using T = prometheus::MetricType;

// One family; each sample is (value of the `result` label or "", value).
void Add(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help, T type,
         const std::vector<std::pair<std::string, double>>& samples) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  for (const auto& [result, value] : samples) {
    prometheus::ClientMetric m;
    if (!result.empty()) m.label.push_back({"result", result});
    (type == T::Counter ? m.counter.value : m.gauge.value) = value;
    f.metric.push_back(std::move(m));
  }
  out.push_back(std::move(f));
}

double D(uint64_t v) { return static_cast<double>(v); }

}  // namespace

void AddAuditFamilies(const service::AuditStats& s, std::vector<prometheus::MetricFamily>& out) {
  Add(out, "cachecar_audit_checked_total",
      "Cached entries the staleness auditor compared with the store.", T::Counter,
      {{"", D(s.checked)}});
  Add(out, "cachecar_audit_divergent_total",
      "Cached entries older than a store version written longer ago than max_staleness (each "
      "was logged and dropped): the sync path missed them.",
      T::Counter, {{"", D(s.divergent)}});
  Add(out, "cachecar_audit_behind_total",
      "Cached entries older than the store within max_staleness (events in flight).", T::Counter,
      {{"", D(s.behind)}});
  Add(out, "cachecar_audit_errors_total", "Auditor store reads that failed.", T::Counter,
      {{"", D(s.errors)}});
  Add(out, "cachecar_audit_skipped_total",
      "Auditor rounds skipped because the replica could not vouch for its cache (reads bypass).",
      T::Counter, {{"", D(s.skipped)}});
  Add(out, "cachecar_audit_worst_lag_seconds",
      "The largest lag (store row's write time to the audit, on the store's clock) of an entry "
      "the auditor found behind, over the last 5 to 10 minutes; 0 if none.",
      T::Gauge, {{"", s.worst_lag_seconds}});
}

void AddMinVersionFamilies(const service::MinVersionStats& s,
                           std::vector<prometheus::MetricFamily>& out) {
  Add(out, "cachecar_min_version_reads_total",
      "Reads with min_version (per key in BatchGet) by how they were answered: from_cache (at "
      "once or after waiting for the event), read_through (the store: no event within "
      "min_version_wait), out_of_range (the store is below min_version).",
      T::Counter,
      {{"from_cache", D(s.from_cache)},
       {"read_through", D(s.read_through)},
       {"out_of_range", D(s.out_of_range)}});
}

void AddWarmStartFamilies(const Metrics::WarmStartSample& s,
                          std::vector<prometheus::MetricFamily>& out) {
  const uint64_t settled = s.loaded + s.skipped;
  Add(out, "cachecar_warm_start_keys", "Keys the warm start file listed (declared namespaces).",
      T::Gauge, {{"", D(s.keys)}});
  Add(out, "cachecar_warm_start_keys_total",
      "Warm start keys by what reloading them did (loaded: cached; skipped: newer news won).",
      T::Counter, {{"loaded", D(s.loaded)}, {"skipped", D(s.skipped)}});
  Add(out, "cachecar_warm_start_store_errors_total",
      "Warm start store reads that failed (retried).", T::Counter, {{"", D(s.store_errors)}});
  Add(out, "cachecar_warm_start_progress",
      "Share of the warm start keys reloaded or skipped so far (1 once it is done).", T::Gauge,
      {{"", s.done || s.keys == 0 ? 1.0 : D(settled) / D(s.keys)}});
  Add(out, "cachecar_warm_start_done", "1 once the warm start finished, gave up or was stopped.",
      T::Gauge, {{"", s.done ? 1.0 : 0.0}});
}

void AddReplicatedFamilies(const std::vector<service::NamespaceStatsView>& all,
                           std::vector<prometheus::MetricFamily>& out) {
  struct Row {
    const char* name;
    const char* help;
    T type;
    double (*value)(const service::NamespaceStatsView&);
  };
  static const Row kRows[] = {
      {"cachecar_replicated_complete",
       "Replicated namespaces: 1 while the cache holds the whole table (absent keys are answered "
       "without a store read).",
       T::Gauge, [](const service::NamespaceStatsView& s) { return s.complete ? 1.0 : 0.0; }},
      {"cachecar_replicated_loads_total", "Replicated namespaces: whole-table loads finished.",
       T::Counter, [](const service::NamespaceStatsView& s) { return D(s.full_loads); }},
      {"cachecar_replicated_absent_answers_total",
       "Replicated namespaces: misses answered as absent without a store read.", T::Counter,
       [](const service::NamespaceStatsView& s) { return D(s.absent_answers); }},
  };
  for (const Row& row : kRows) {
    prometheus::MetricFamily f;
    f.name = row.name;
    f.help = row.help;
    f.type = row.type;
    for (const service::NamespaceStatsView& s : all) {
      if (!s.replicated) continue;
      prometheus::ClientMetric m;
      m.label.push_back({"namespace", s.name});
      (row.type == T::Counter ? m.counter.value : m.gauge.value) = row.value(s);
      f.metric.push_back(std::move(m));
    }
    if (!f.metric.empty()) out.push_back(std::move(f));
  }
}

}  // namespace cachecar::metrics
