// The metric families of service-level numbers read at scrape time: the
// staleness auditor's and the min-version reads'. Used by Metrics' scrape
// collector (metrics.cc); prometheus types stay inside src/metrics.
//
// Thread-safety: pure functions of their arguments.
#ifndef CACHECAR_METRICS_SERVICE_FAMILIES_H_
#define CACHECAR_METRICS_SERVICE_FAMILIES_H_

#include <vector>

#include "metrics/metrics.h"
#include "prometheus/metric_family.h"
#include "service/auditor.h"
#include "service/cache_service.h"

namespace cachecar::metrics {

// cachecar_audit_checked_total, cachecar_audit_divergent_total,
// cachecar_audit_behind_total, cachecar_audit_errors_total,
// cachecar_audit_skipped_total, cachecar_audit_worst_lag_seconds.
void AddAuditFamilies(const service::AuditStats& s, std::vector<prometheus::MetricFamily>& out);

// cachecar_min_version_reads_total{result=from_cache|read_through|out_of_range}.
void AddMinVersionFamilies(const service::MinVersionStats& s,
                           std::vector<prometheus::MetricFamily>& out);

// cachecar_warm_start_keys, cachecar_warm_start_keys_total{result=loaded|skipped},
// cachecar_warm_start_store_errors_total, cachecar_warm_start_progress,
// cachecar_warm_start_done.
void AddWarmStartFamilies(const Metrics::WarmStartSample& s,
                          std::vector<prometheus::MetricFamily>& out);

// For replicated namespaces only (none: no family): cachecar_replicated_complete,
// cachecar_replicated_loads_total, cachecar_replicated_absent_answers_total.
void AddReplicatedFamilies(const std::vector<service::NamespaceStatsView>& all,
                           std::vector<prometheus::MetricFamily>& out);

}  // namespace cachecar::metrics

#endif  // CACHECAR_METRICS_SERVICE_FAMILIES_H_
