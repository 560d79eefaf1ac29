// See sync_wiring.h.
#include "cmd/cachecar/sync_wiring.h"

#include <unistd.h>

#include <limits>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "sync/kafka/kafka_sync.h"

namespace cachecar {

std::string DefaultReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "cachecar", "-", getpid());
}

namespace {

std::map<std::string, std::string> PropertyMap(const config::Config& config) {
  std::map<std::string, std::string> out;
  for (const std::string& item : config.kafka_properties) {
    const size_t eq = item.find('=');
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

}  // namespace

absl::Status KafkaPropertiesValid(const config::Config& config) {
  return sync::ValidateKafkaProperties(PropertyMap(config));
}

absl::StatusOr<std::unique_ptr<SyncWiring>> SyncWiring::Start(const config::Config& config,
                                                              store::Store& store,
                                                              service::NamespaceSet& namespaces,
                                                              service::WatchHub* watch) {
  std::unique_ptr<SyncWiring> w(new SyncWiring());
  w->topic_ = config.sync_topic;
  w->max_staleness_ = config.max_staleness;
  w->serve_stale_ = config.stale_reads == "serve";

  sync::KafkaOptions kafka;
  kafka.brokers = config.kafka_brokers;
  kafka.topic = config.sync_topic;
  kafka.replica_id = config.replica_id.empty() ? DefaultReplicaId() : config.replica_id;
  kafka.properties = PropertyMap(config);
  // Probe often enough to notice a stale replica well within the bound.
  kafka.probe_interval =
      std::clamp(config.max_staleness / 8, absl::Milliseconds(50), absl::Milliseconds(500));
  // New partitions are trusted from the previous check on: check often
  // enough that this stays well inside the bound.
  kafka.partition_check_interval =
      std::clamp(config.max_staleness / 4, absl::Milliseconds(200), absl::Seconds(2));
  absl::StatusOr<std::unique_ptr<sync::KafkaSync>> made = sync::KafkaSync::Create(kafka);
  if (!made.ok()) return made.status();
  w->sync_ = *std::move(made);

  store::Outbox* outbox = store.outbox();
  w->announcer_ = std::make_unique<sync::Announcer>(*w->sync_, outbox);
  service::SyncReplicationOptions options;
  options.max_staleness = config.max_staleness;
  options.serve_stale = w->serve_stale_;
  options.inline_max = config.sync_inline_max;
  options.latest_version = [&store]() -> absl::StatusOr<uint64_t> {
    store::CallOptions call;
    call.deadline = absl::Now() + absl::Seconds(2);
    return store.LatestVersion(call);
  };
  w->replication_ = std::make_unique<service::SyncReplication>(namespaces, *w->sync_,
                                                               *w->announcer_, watch, options);
  w->sync_->Start(*w->replication_);
  if (outbox != nullptr) {
    sync::RelayOptions relay;
    relay.min_age = config.outbox_relay_delay;
    relay.origin = absl::StrCat("relay/", kafka.replica_id);
    w->relay_ = std::make_unique<sync::OutboxRelay>(*outbox, *w->sync_, relay);
    w->relay_->Start();
  }
  spdlog::info(
      "sync: replica {} on topic {} via {} (max_staleness {}, stale_reads {}); "
      "positioning",
      kafka.replica_id, config.sync_topic, config.kafka_brokers,
      absl::FormatDuration(config.max_staleness), config.stale_reads);
  return w;
}

SyncWiring::~SyncWiring() { Stop(); }

void SyncWiring::Stop() {
  if (stopped_) return;
  stopped_ = true;
  const absl::Time start = absl::Now();
  if (relay_) relay_->Stop();
  spdlog::debug("sync: stop: relay done after {}", absl::FormatDuration(absl::Now() - start));
  sync_->Stop(absl::Seconds(3));
}

metrics::Metrics::SyncSample SyncWiring::MetricsSample(uint64_t bypassed_reads) const {
  const sync::SyncStats stats = sync_->Stats();
  const service::ApplyStats applied = replication_->apply_stats();
  metrics::Metrics::SyncSample s;
  s.positioned = stats.positioned;
  s.broker_reachable = stats.broker_reachable;
  s.bypass = !replication_->CacheTrusted();
  const absl::Duration staleness = replication_->Staleness();
  s.staleness_seconds = staleness == absl::InfiniteDuration()
                            ? std::numeric_limits<double>::infinity()
                            : absl::ToDoubleSeconds(staleness);
  for (const sync::PartitionState& p : stats.partitions) s.lag.push_back({p.partition, p.lag()});
  s.applied = applied.applied;
  s.stale = applied.stale;
  s.unknown_namespace = applied.unknown_namespace;
  s.undecodable = stats.events_undecodable;
  s.offset_resets = stats.offset_resets;
  s.published = stats.published;
  s.publish_failures = stats.publish_failures;
  s.producer_restarts = stats.producer_restarts;
  s.relayed = relay_ != nullptr ? relay_->relayed() : 0;
  s.retired = announcer_->retired();
  s.bypassed_reads = bypassed_reads;
  return s;
}

absl::Status SyncWiring::CheckReady() const {
  if (!sync_->positioned()) {
    const std::string why = sync_->Stats().last_error;
    return absl::UnavailableError(absl::StrCat("the sync consumer is not positioned on topic ",
                                               topic_, " yet", why.empty() ? "" : ": ", why));
  }
  if (serve_stale_ || replication_->WithinBound()) return absl::OkStatus();
  const sync::SyncStats stats = sync_->Stats();
  std::string why = stats.broker_reachable ? "the consumer lags" : "Kafka does not answer";
  if (!stats.broker_reachable && !stats.last_error.empty()) why += " (" + stats.last_error + ")";
  return absl::UnavailableError(absl::StrCat(
      "this replica cannot show it is within max_staleness (", absl::FormatDuration(max_staleness_),
      "; it can vouch only for events older than ",
      absl::FormatDuration(absl::Trunc(replication_->Staleness(), absl::Milliseconds(1))),
      "): ", why, "; CACHED reads go to PostgreSQL until it catches up"));
}

}  // namespace cachecar
