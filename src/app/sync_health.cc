// See sync_health.h.
#include "app/sync_health.h"

#include <limits>

#include "absl/strings/str_cat.h"

namespace cachecar::app {
namespace {

// Why the bound cannot be shown, once positioned.
std::string WhyOutsideBound(const SyncHealthFacts& f, const std::string& kafka_error) {
  if (!f.clock_calibrated) {
    return "PostgreSQL has not answered a clock reading yet (watermarks carry its time)";
  }
  if (!f.broker_reachable) return absl::StrCat("Kafka does not answer", kafka_error);
  if (!f.watermarks_cover_partitions) {
    return absl::StrCat(
        "no relay's watermarks cover every partition yet (relays hold leases in PostgreSQL and "
        "need it and Kafka; relays seen in the last 5s: ",
        f.relays_seen, ")");
  }
  return absl::StrCat(
      "the newest watermarks are too old: the relays are behind (PostgreSQL away, outbox "
      "rows locked, a relay lease changing hands) or the consumer lags (relays seen in the "
      "last 5s: ",
      f.relays_seen, ")");
}

}  // namespace

absl::Status SyncHealth(const SyncHealthFacts& f) {
  const std::string kafka_error = f.last_error.empty() ? "" : absl::StrCat(" (", f.last_error, ")");
  if (!f.positioned) {
    return absl::UnavailableError(
        absl::StrCat("the sync consumer is not positioned on topic ", f.topic, " yet: Kafka ",
                     f.broker_reachable ? "answers" : "does not answer", kafka_error));
  }
  if (f.within_bound) return absl::OkStatus();
  return absl::UnavailableError(absl::StrCat(
      "this replica cannot show it is within max_staleness (",
      absl::FormatDuration(f.max_staleness), "; it can vouch for writes committed up to ",
      f.staleness == absl::InfiniteDuration()
          ? std::string("no time at all")
          : absl::StrCat(absl::FormatDuration(absl::Trunc(f.staleness, absl::Milliseconds(1))),
                         " ago"),
      "): ", WhyOutsideBound(f, kafka_error),
      f.serve_stale ? "; stale_reads: serve, so CACHED reads are still served from the cache"
                    : "; CACHED reads go to PostgreSQL until it can"));
}

double SecondsOrInfinity(absl::Duration d) {
  return d == absl::InfiniteDuration() ? std::numeric_limits<double>::infinity()
                                       : absl::ToDoubleSeconds(d);
}

metrics::Metrics::SyncSample SyncSampleOf(const sync::SyncStats& stats,
                                          const service::ApplyStats& applied,
                                          const SyncSampleFacts& facts) {
  metrics::Metrics::SyncSample s;
  s.positioned = stats.positioned;
  s.broker_reachable = stats.broker_reachable;
  s.bypass = facts.bypass;
  s.staleness_seconds = SecondsOrInfinity(facts.staleness);
  for (const sync::PartitionState& p : stats.partitions) s.lag.emplace_back(p.partition, p.lag());
  s.applied = applied.applied;
  s.stale = applied.stale;
  s.unknown_namespace = applied.unknown_namespace;
  s.undecodable = stats.events_undecodable;
  s.offset_resets = stats.offset_resets;
  s.published = stats.published;
  s.publish_failures = stats.publish_failures;
  s.producer_restarts = stats.producer_restarts;
  s.relayed = facts.has_relay ? facts.relayed : 0;
  s.retired = facts.retired;
  s.bypassed_reads = facts.bypassed_reads;
  s.relay_lease = facts.has_relay && facts.relay_lease;
  s.watermarks_published = facts.has_relay ? facts.relay_watermarks : 0;
  s.relays = facts.relays_seen;
  s.clock_uncertainty_seconds = SecondsOrInfinity(facts.clock_uncertainty);
  return s;
}

}  // namespace cachecar::app
