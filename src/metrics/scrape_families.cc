// See scrape_families.h.
#include "metrics/scrape_families.h"

#include <string>
#include <utility>

namespace cachecar::metrics {
namespace {

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

using Labels = std::vector<std::pair<std::string, std::string>>;

// One family of `type`: a sample per (labels, value).
void AddLabelled(std::vector<prometheus::MetricFamily>& out, const char* name, const char* help,
                 prometheus::MetricType type,
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

// AddSyncFamilies' counters, and the lag per partition.
void AddSyncCounts(const Metrics::SyncSample& s, std::vector<prometheus::MetricFamily>& out) {
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
      "Outbox entries this replica's relay published (nobody else had announced them).", T::Counter,
      {{{}, d(s.relayed)}});
  one("cachecar_outbox_retired_total", "Outbox entries retired by their writer.", T::Counter,
      {{{}, d(s.retired)}});
  one("cachecar_reads_bypassed_total",
      "CACHED reads answered from the store because of the staleness bound.", T::Counter,
      {{{}, d(s.bypassed_reads)}});
}

}  // namespace

void AddNamespaceFamilies(const std::vector<service::NamespaceStatsView>& all,
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

void AddWorkerQueueFamily(size_t depth_now, std::vector<prometheus::MetricFamily>& out) {
  auto depth = Family("cachecar_worker_queue_tasks", "Store tasks waiting for a worker thread.",
                      prometheus::MetricType::Gauge);
  prometheus::ClientMetric m;
  m.gauge.value = static_cast<double>(depth_now);
  depth.metric.push_back(m);
  out.push_back(std::move(depth));
}

void AddOutboxFamilies(const Metrics::OutboxSample& sample,
                       std::vector<prometheus::MetricFamily>& out) {
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

void AddLocalReadsFamilies(const Metrics::LocalReadsSample& s,
                           std::vector<prometheus::MetricFamily>& out) {
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
      "1 while local readers may answer from the published cache (within max_staleness).", T::Gauge,
      {{"", s.trusted ? 1.0 : 0.0}});
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

void AddSyncFamilies(const Metrics::SyncSample& s, std::vector<prometheus::MetricFamily>& out) {
  using T = prometheus::MetricType;
  auto one = [&out](const char* name, const char* help, T type,
                    const std::vector<std::pair<Labels, double>>& samples) {
    AddLabelled(out, name, help, type, samples);
  };
  auto d = [](auto v) { return static_cast<double>(v); };
  one("cachecar_sync_positioned", "1 once the consumer is positioned on every partition.", T::Gauge,
      {{{}, s.positioned ? 1.0 : 0.0}});
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
  one("cachecar_sync_relays", "Relays whose watermarks this replica read in the last 5s.", T::Gauge,
      {{{}, d(s.relays)}});
  one("cachecar_sync_watermarks_published_total",
      "Watermark rounds this replica's relay published into every partition.", T::Counter,
      {{{}, d(s.watermarks_published)}});
  one("cachecar_sync_clock_uncertainty_seconds",
      "How loosely this replica knows PostgreSQL's clock (round trip of the best reading plus "
      "drift since); +Inf before the first reading.",
      T::Gauge, {{{}, s.clock_uncertainty_seconds}});
  AddSyncCounts(s, out);
}

}  // namespace cachecar::metrics
