// See sync_wiring.h.
#include "cmd/cachecar/sync_wiring.h"

#include "absl/random/random.h"
#include "absl/strings/str_cat.h"
#include "app/sync_health.h"
#include "app/sync_policy.h"
#include "spdlog/spdlog.h"
#include "sync/kafka/kafka_sync.h"

namespace cachecar {

absl::Status KafkaPropertiesValid(const config::Config& config) {
  return sync::ValidateKafkaProperties(app::KafkaPropertyMap(config));
}

namespace {

// The applier's options: the bound, the store's latest version and clock.
service::SyncReplicationOptions ReplicationOptions(const config::Config& config,
                                                   store::Store& store, sync::ClockBound* clock,
                                                   service::VersionWaits* waits) {
  service::SyncReplicationOptions options;
  options.max_staleness = config.max_staleness;
  options.serve_stale = config.stale_reads == "serve";
  options.inline_max = config.sync_inline_max;
  options.latest_version = [&store]() -> absl::StatusOr<uint64_t> {
    store::CallOptions call;
    call.deadline = absl::Now() + absl::Seconds(2);
    return store.LatestVersion(call);
  };
  options.clock = clock;
  options.waits = waits;
  return options;
}

}  // namespace

absl::StatusOr<std::unique_ptr<SyncWiring>> SyncWiring::Start(const config::Config& config,
                                                              store::Store& store,
                                                              service::NamespaceSet& namespaces,
                                                              service::WatchHub* watch,
                                                              service::VersionWaits* waits) {
  std::unique_ptr<SyncWiring> w(new SyncWiring());
  w->topic_ = config.sync_topic;
  w->max_staleness_ = config.max_staleness;
  w->serve_stale_ = config.stale_reads == "serve";

  const std::string replica_id = app::ReplicaId(config);
  absl::StatusOr<std::unique_ptr<sync::KafkaSync>> made =
      sync::KafkaSync::Create(app::KafkaOptionsFrom(config, replica_id));
  if (!made.ok()) return made.status();
  w->sync_ = *std::move(made);
  // Unique per process: a relay's watermarks are ordered only within one
  // incarnation.
  w->relay_id_ = app::RelayHolderId(replica_id, absl::Uniform<uint32_t>(absl::BitGen()));

  store::Outbox* outbox = store.outbox();
  w->announcer_ = std::make_unique<sync::Announcer>(*w->sync_, outbox);
  w->clock_ = std::make_unique<sync::ClockBound>();
  w->replication_ = std::make_unique<service::SyncReplication>(
      namespaces, *w->sync_, *w->announcer_, watch,
      ReplicationOptions(config, store, w->clock_.get(), waits));
  w->clock_sampler_ = std::make_unique<sync::ClockSampler>(
      [&store]() -> absl::StatusOr<absl::Time> {
        store::CallOptions call;
        call.deadline = absl::Now() + absl::Seconds(1);
        return store.ServerTime(call);
      },
      *w->clock_);
  w->sync_->Start(*w->replication_);
  if (outbox != nullptr) w->StartRelay(config, replica_id, *outbox);
  spdlog::info(
      "sync: replica {} on topic {} via {} (max_staleness {}, stale_reads {}, relay candidate {} "
      "of {} leases); positioning",
      replica_id, config.sync_topic, config.kafka_brokers,
      absl::FormatDuration(config.max_staleness), config.stale_reads, w->relay_id_,
      config.outbox_relays);
  return w;
}

void SyncWiring::StartRelay(const config::Config& config, const std::string& replica_id,
                            store::Outbox& outbox) {
  sync::RelayOptions relay = app::RelayOptionsFrom(config, replica_id, relay_id_);
  service::SyncReplication* replication = replication_.get();
  relay.relays_seen = [replication, self = relay_id_](absl::Time since) {
    return replication->watermarks().RelaysSeenSince(since, self);
  };
  relay_ = std::make_unique<sync::OutboxRelay>(outbox, *sync_, std::move(relay));
  relay_->Start();
}

SyncWiring::~SyncWiring() { Stop(); }

void SyncWiring::Stop() {
  if (stopped_) return;
  stopped_ = true;
  const absl::Time start = absl::Now();
  if (relay_) relay_->Stop();
  spdlog::debug("sync: stop: relay done after {}", absl::FormatDuration(absl::Now() - start));
  clock_sampler_.reset();
  sync_->Stop(absl::Seconds(3));
}

metrics::Metrics::SyncSample SyncWiring::MetricsSample(uint64_t bypassed_reads) const {
  app::SyncSampleFacts facts;
  facts.bypass = !replication_->CacheTrusted();
  facts.staleness = replication_->Staleness();
  facts.has_relay = relay_ != nullptr;
  if (relay_ != nullptr) {
    facts.relayed = relay_->relayed();
    facts.relay_lease = relay_->holds_lease();
    facts.relay_watermarks = relay_->watermarks();
  }
  facts.retired = announcer_->retired();
  facts.bypassed_reads = bypassed_reads;
  facts.relays_seen = replication_->watermarks().RelaysSeenSince(absl::Now() - absl::Seconds(5));
  facts.clock_uncertainty = clock_->Uncertainty(absl::Now());
  return app::SyncSampleOf(sync_->Stats(), replication_->apply_stats(), facts);
}

absl::Status SyncWiring::CheckSync() const {
  const sync::SyncStats stats = sync_->Stats();
  app::SyncHealthFacts facts;
  facts.topic = topic_;
  facts.max_staleness = max_staleness_;
  facts.serve_stale = serve_stale_;
  facts.positioned = stats.positioned;
  facts.broker_reachable = stats.broker_reachable;
  facts.last_error = stats.last_error;
  if (!stats.positioned) return app::SyncHealth(facts);
  facts.within_bound = replication_->WithinBound();
  if (facts.within_bound) return app::SyncHealth(facts);
  facts.clock_calibrated = clock_->calibrated();
  facts.watermarks_cover_partitions =
      replication_->watermarks().applied_as_of() != absl::InfinitePast();
  facts.relays_seen = replication_->watermarks().RelaysSeenSince(absl::Now() - absl::Seconds(5));
  facts.staleness = replication_->Staleness();
  return app::SyncHealth(facts);
}

}  // namespace cachecar
