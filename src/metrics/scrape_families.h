// The metric families Metrics' scrape collector (metrics.cc) builds from
// the numbers its sources give at scrape time: the per-namespace cache
// numbers, the worker queue, the outbox, the sync topic and local reads.
// Their names, help texts and labels are the exposition's (metrics_test
// checks them); prometheus types stay inside src/metrics.
//
// Thread-safety: pure functions of their arguments.
#ifndef CACHECAR_METRICS_SCRAPE_FAMILIES_H_
#define CACHECAR_METRICS_SCRAPE_FAMILIES_H_

#include <cstddef>
#include <vector>

#include "metrics/metrics.h"
#include "prometheus/metric_family.h"
#include "service/cache_service.h"

namespace cachecar::metrics {

// cachecar_cache_{hits,misses,evictions,expirations}_total,
// cachecar_store_loads_total, cachecar_fill_tickets_rejected_total,
// cachecar_cache_{entries,bytes,max_bytes,storage_bytes}, by namespace.
void AddNamespaceFamilies(const std::vector<service::NamespaceStatsView>& all,
                          std::vector<prometheus::MetricFamily>& out);

// cachecar_worker_queue_tasks.
void AddWorkerQueueFamily(size_t depth_now, std::vector<prometheus::MetricFamily>& out);

// cachecar_outbox_rows, cachecar_outbox_oldest_age_seconds (each only when set).
void AddOutboxFamilies(const Metrics::OutboxSample& sample,
                       std::vector<prometheus::MetricFamily>& out);

// cachecar_sync_* (positioned, staleness, relays, lag per partition, event and
// publish counts), cachecar_outbox_{relayed,retired}_total and
// cachecar_reads_bypassed_total.
void AddSyncFamilies(const Metrics::SyncSample& s, std::vector<prometheus::MetricFamily>& out);

// cachecar_local_read_* (serving, trusted, mapped bytes, clients, reports,
// touches).
void AddLocalReadsFamilies(const Metrics::LocalReadsSample& s,
                           std::vector<prometheus::MetricFamily>& out);

}  // namespace cachecar::metrics

#endif  // CACHECAR_METRICS_SCRAPE_FAMILIES_H_
