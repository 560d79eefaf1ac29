// Wires the sync topic into the process: the Kafka client, the writer's
// announcer, the event applier (SyncReplication), the store's clock bound
// and the outbox relay (a lease candidate), built from the config, started
// in the right order and stopped in reverse. Nothing here waits for Kafka
// or PostgreSQL: they are reached in the background. The policy (timings,
// ids, the health rule, the metrics sample) is in app/sync_policy.h and
// app/sync_health.h. Start/Stop from one thread; the accessors, CheckSync
// and MetricsSample from any.
#ifndef CACHECAR_CMD_CACHECAR_SYNC_WIRING_H_
#define CACHECAR_CMD_CACHECAR_SYNC_WIRING_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "metrics/metrics.h"
#include "service/namespaces.h"
#include "service/sync_replication.h"
#include "service/watch_hub.h"
#include "store/store.h"
#include "sync/announcer.h"
#include "sync/clock_bound.h"
#include "sync/outbox_relay.h"
#include "sync/sync.h"

namespace cachecar {

class SyncWiring {
 public:
  // Builds and starts everything; the consumer positions itself in the
  // background. Fails only for cachecar's own errors (bad Kafka
  // properties). `store`, `namespaces` and `watch` must outlive this.
  static absl::StatusOr<std::unique_ptr<SyncWiring>> Start(const config::Config& config,
                                                           store::Store& store,
                                                           service::NamespaceSet& namespaces,
                                                           service::WatchHub* watch,
                                                           service::VersionWaits* waits = nullptr);
  ~SyncWiring();  // Stop()

  // Stops the relay, then lets publishes in flight finish (up to a few
  // seconds), then stops the consumer. Call after the last write.
  void Stop();

  service::SyncReplication& replication() { return *replication_; }
  // The consumer is positioned (every namespace's floor was raised first).
  bool positioned() const { return sync_->positioned(); }
  // The sync numbers /metrics shows (read at scrape time); `bypassed_reads`
  // comes from the CacheService.
  metrics::Metrics::SyncSample MetricsSample(uint64_t bypassed_reads) const;
  // Health cachecar.v1.Cache/sync: OK when positioned and within
  // max_staleness by the relays' watermarks (whatever stale_reads says),
  // else why not, naming what is down or behind.
  absl::Status CheckSync() const;

 private:
  SyncWiring() = default;
  // The outbox relay, a candidate for one of config.outbox_relays leases.
  void StartRelay(const config::Config& config, const std::string& replica_id,
                  store::Outbox& outbox);
  std::string topic_;
  absl::Duration max_staleness_;
  bool serve_stale_ = false;
  std::string relay_id_;
  std::unique_ptr<sync::ClockBound> clock_;
  std::unique_ptr<sync::Sync> sync_;
  std::unique_ptr<sync::Announcer> announcer_;
  std::unique_ptr<service::SyncReplication> replication_;
  std::unique_ptr<sync::ClockSampler> clock_sampler_;
  std::unique_ptr<sync::OutboxRelay> relay_;
  bool stopped_ = false;
};

// Checks kafka_properties against librdkafka without connecting.
absl::Status KafkaPropertiesValid(const config::Config& config);

}  // namespace cachecar

#endif  // CACHECAR_CMD_CACHECAR_SYNC_WIRING_H_
