// See sync_wiring.h.
#include "cmd/cachecar/sync_wiring.h"

#include <unistd.h>

#include <limits>

#include "absl/random/random.h"
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
  // Only tells whether the broker answers (the bound rests on watermarks).
  kafka.probe_interval = absl::Seconds(1);
  // A relay's watermark that names more partitions makes the consumer look
  // at once (the bound waits for it); this periodic look is only a backstop,
  // so it can be rare: a metadata request per replica per 30 s.
  kafka.partition_check_interval = absl::Seconds(30);
  absl::StatusOr<std::unique_ptr<sync::KafkaSync>> made = sync::KafkaSync::Create(kafka);
  if (!made.ok()) return made.status();
  w->sync_ = *std::move(made);
  // Unique per process: a relay's watermarks are ordered only within one
  // incarnation.
  w->relay_id_ = absl::StrCat(kafka.replica_id, "/",
                              absl::Hex(absl::Uniform<uint32_t>(absl::BitGen()), absl::kZeroPad8));

  store::Outbox* outbox = store.outbox();
  w->announcer_ = std::make_unique<sync::Announcer>(*w->sync_, outbox);
  w->clock_ = std::make_unique<sync::ClockBound>();
  service::SyncReplicationOptions options;
  options.max_staleness = config.max_staleness;
  options.serve_stale = w->serve_stale_;
  options.inline_max = config.sync_inline_max;
  options.latest_version = [&store]() -> absl::StatusOr<uint64_t> {
    store::CallOptions call;
    call.deadline = absl::Now() + absl::Seconds(2);
    return store.LatestVersion(call);
  };
  options.clock = w->clock_.get();
  w->replication_ = std::make_unique<service::SyncReplication>(namespaces, *w->sync_,
                                                               *w->announcer_, watch, options);
  w->clock_sampler_ = std::make_unique<sync::ClockSampler>(
      [&store]() -> absl::StatusOr<absl::Time> {
        store::CallOptions call;
        call.deadline = absl::Now() + absl::Seconds(1);
        return store.ServerTime(call);
      },
      *w->clock_);
  w->sync_->Start(*w->replication_);
  if (outbox != nullptr) {
    sync::RelayOptions relay;
    relay.min_age = config.outbox_relay_delay;
    relay.origin = absl::StrCat("relay/", kafka.replica_id);
    relay.holder = w->relay_id_;
    relay.leases = static_cast<int>(config.outbox_relays);
    // Watermarks often enough that the replicas' staleness stays a small
    // part of the bound; the lease outlives a few of them.
    relay.watermark_interval =
        std::clamp(config.max_staleness / 10, absl::Milliseconds(50), absl::Seconds(1));
    relay.takeover_after = std::max(absl::Seconds(1), relay.watermark_interval * 3);
    relay.lease_ttl = std::max(absl::Milliseconds(1500), relay.watermark_interval * 4);
    service::SyncReplication* replication = w->replication_.get();
    const std::string self = w->relay_id_;
    relay.relays_seen = [replication, self](absl::Time since) {
      return replication->watermarks().RelaysSeenSince(since, self);
    };
    w->relay_ = std::make_unique<sync::OutboxRelay>(*outbox, *w->sync_, relay);
    w->relay_->Start();
  }
  spdlog::info(
      "sync: replica {} on topic {} via {} (max_staleness {}, stale_reads {}, relay candidate {} "
      "of {} leases); positioning",
      kafka.replica_id, config.sync_topic, config.kafka_brokers,
      absl::FormatDuration(config.max_staleness), config.stale_reads, w->relay_id_,
      config.outbox_relays);
  return w;
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
  s.relay_lease = relay_ != nullptr && relay_->holds_lease();
  s.watermarks_published = relay_ != nullptr ? relay_->watermarks() : 0;
  s.relays = replication_->watermarks().RelaysSeenSince(absl::Now() - absl::Seconds(5));
  const absl::Duration uncertainty = clock_->Uncertainty(absl::Now());
  s.clock_uncertainty_seconds = uncertainty == absl::InfiniteDuration()
                                    ? std::numeric_limits<double>::infinity()
                                    : absl::ToDoubleSeconds(uncertainty);
  return s;
}

absl::Status SyncWiring::CheckSync() const {
  const sync::SyncStats stats = sync_->Stats();
  const std::string kafka_error =
      stats.last_error.empty() ? "" : absl::StrCat(" (", stats.last_error, ")");
  if (!stats.positioned) {
    return absl::UnavailableError(
        absl::StrCat("the sync consumer is not positioned on topic ", topic_, " yet: Kafka ",
                     stats.broker_reachable ? "answers" : "does not answer", kafka_error));
  }
  if (replication_->WithinBound()) return absl::OkStatus();
  std::string why;
  const absl::Time now = absl::Now();
  if (!clock_->calibrated()) {
    why = "PostgreSQL has not answered a clock reading yet (watermarks carry its time)";
  } else if (!stats.broker_reachable) {
    why = absl::StrCat("Kafka does not answer", kafka_error);
  } else if (replication_->watermarks().applied_as_of() == absl::InfinitePast()) {
    why = absl::StrCat(
        "no relay's watermarks cover every partition yet (relays hold leases in PostgreSQL and "
        "need it and Kafka; relays seen in the last 5s: ",
        replication_->watermarks().RelaysSeenSince(now - absl::Seconds(5)), ")");
  } else {
    why = absl::StrCat(
        "the newest watermarks are too old: the relays are behind (PostgreSQL away, outbox "
        "rows locked, a relay lease changing hands) or the consumer lags (relays seen in the "
        "last 5s: ",
        replication_->watermarks().RelaysSeenSince(now - absl::Seconds(5)), ")");
  }
  const absl::Duration staleness = replication_->Staleness();
  return absl::UnavailableError(absl::StrCat(
      "this replica cannot show it is within max_staleness (", absl::FormatDuration(max_staleness_),
      "; it can vouch for writes committed up to ",
      staleness == absl::InfiniteDuration()
          ? std::string("no time at all")
          : absl::StrCat(absl::FormatDuration(absl::Trunc(staleness, absl::Milliseconds(1))),
                         " ago"),
      "): ", why,
      serve_stale_ ? "; stale_reads: serve, so CACHED reads are still served from the cache"
                   : "; CACHED reads go to PostgreSQL until it can"));
}

}  // namespace cachecar
