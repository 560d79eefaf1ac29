// See service_families.h.
#include "metrics/service_families.h"

#include <string>
#include <utility>

namespace cachecar::metrics {
namespace {

using T = prometheus::MetricType;

// One family; each sample is (value of the `result` label or "", value).
void Add(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help, T type,
         std::vector<std::pair<std::string, double>> samples) {
  prometheus::MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  for (auto& [result, value] : samples) {
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

}  // namespace cachecar::metrics
