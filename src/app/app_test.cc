// Unit tests for src/app: the sync policy, sync health and metrics,
// readiness, outbox pruning and the stop signals.
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "app/readiness.h"
#include "app/stop_signals.h"
#include "app/store_policy.h"
#include "app/sync_health.h"
#include "app/sync_policy.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::app {
namespace {

using ::testing::HasSubstr;

TEST(SyncPolicy, ReplicaIdIsTheConfiguredOneOrHostnamePid) {
  config::Config config;
  const std::string fallback = DefaultReplicaId();
  EXPECT_TRUE(absl::EndsWith(fallback, absl::StrCat("-", getpid()))) << fallback;
  EXPECT_GT(fallback.size(), absl::StrCat("-", getpid()).size()) << fallback;
  EXPECT_EQ(ReplicaId(config), fallback);
  config.replica_id = "replica-a";
  EXPECT_EQ(ReplicaId(config), "replica-a");
}

TEST(SyncPolicy, KafkaPropertiesSplitAtTheFirstEqualsAndTheLastWins) {
  config::Config config;
  config.kafka_properties = {"acks=all", "sasl.password=a=b", "acks=1", "flag"};
  const std::map<std::string, std::string> map = KafkaPropertyMap(config);
  EXPECT_EQ(map.size(), 3u);
  EXPECT_EQ(map.at("acks"), "1");
  EXPECT_EQ(map.at("sasl.password"), "a=b");
  EXPECT_EQ(map.at("flag"), "flag");  // no '=': substr(npos + 1) is the whole item
}

TEST(SyncPolicy, KafkaOptionsProbeEverySecondAndCheckPartitionsEvery30s) {
  config::Config config;
  config.kafka_brokers = "k1:9092,k2:9092";
  config.sync_topic = "topic-x";
  config.kafka_properties = {"acks=all"};
  const sync::KafkaOptions kafka = KafkaOptionsFrom(config, "replica-a");
  EXPECT_EQ(kafka.brokers, "k1:9092,k2:9092");
  EXPECT_EQ(kafka.topic, "topic-x");
  EXPECT_EQ(kafka.replica_id, "replica-a");
  EXPECT_EQ(kafka.properties.at("acks"), "all");
  EXPECT_EQ(kafka.probe_interval, absl::Seconds(1));
  EXPECT_EQ(kafka.partition_check_interval, absl::Seconds(30));
}

TEST(SyncPolicy, RelayHolderIdIsReplicaIdAndEightHexDigits) {
  EXPECT_EQ(RelayHolderId("replica-a", 0xab), "replica-a/000000ab");
  EXPECT_EQ(RelayHolderId("r", 0xdeadbeef), "r/deadbeef");
}

TEST(SyncPolicy, RelayTimingsScaleWithMaxStalenessWithinBounds) {
  config::Config config;
  config.outbox_relay_delay = absl::Milliseconds(700);
  config.outbox_relays = 3;
  config.max_staleness = absl::Seconds(5);
  sync::RelayOptions relay = RelayOptionsFrom(config, "replica-a", "replica-a/00000001");
  EXPECT_EQ(relay.min_age, absl::Milliseconds(700));
  EXPECT_EQ(relay.origin, "relay/replica-a");
  EXPECT_EQ(relay.holder, "replica-a/00000001");
  EXPECT_EQ(relay.leases, 3);
  EXPECT_EQ(relay.watermark_interval, absl::Milliseconds(500));
  EXPECT_EQ(relay.takeover_after, absl::Milliseconds(1500));
  EXPECT_EQ(relay.lease_ttl, absl::Seconds(2));
  EXPECT_FALSE(relay.relays_seen);  // the wiring sets it

  config.max_staleness = absl::Milliseconds(100);  // floors
  relay = RelayOptionsFrom(config, "r", "h");
  EXPECT_EQ(relay.watermark_interval, absl::Milliseconds(50));
  EXPECT_EQ(relay.takeover_after, absl::Seconds(1));
  EXPECT_EQ(relay.lease_ttl, absl::Milliseconds(1500));

  config.max_staleness = absl::Minutes(1);  // the 1 s ceiling
  relay = RelayOptionsFrom(config, "r", "h");
  EXPECT_EQ(relay.watermark_interval, absl::Seconds(1));
  EXPECT_EQ(relay.takeover_after, absl::Seconds(3));
  EXPECT_EQ(relay.lease_ttl, absl::Seconds(4));
}

SyncHealthFacts Positioned() {
  SyncHealthFacts f;
  f.topic = "cachecar-sync";
  f.max_staleness = absl::Seconds(2);
  f.positioned = true;
  f.broker_reachable = true;
  f.clock_calibrated = true;
  f.watermarks_cover_partitions = true;
  f.relays_seen = 2;
  return f;
}

TEST(SyncHealth, NotPositionedNamesTheTopicAndKafka) {
  SyncHealthFacts f;
  f.topic = "topic-x";
  f.within_bound = true;  // not looked at before positioning
  absl::Status s = SyncHealth(f);
  EXPECT_TRUE(absl::IsUnavailable(s));
  EXPECT_EQ(s.message(),
            "the sync consumer is not positioned on topic topic-x yet: Kafka does not answer");
  f.broker_reachable = true;
  f.last_error = "Local: Broker transport failure";
  EXPECT_EQ(SyncHealth(f).message(),
            "the sync consumer is not positioned on topic topic-x yet: Kafka answers (Local: "
            "Broker transport failure)");
}

TEST(SyncHealth, WithinBoundIsOk) {
  SyncHealthFacts f = Positioned();
  f.within_bound = true;
  EXPECT_TRUE(SyncHealth(f).ok());
  f.serve_stale = true;
  EXPECT_TRUE(SyncHealth(f).ok());
}

TEST(SyncHealth, OutsideTheBoundSaysWhyAndWhatReadsDo) {
  SyncHealthFacts f = Positioned();
  f.staleness = absl::Milliseconds(3456) + absl::Microseconds(700);
  absl::Status s = SyncHealth(f);
  EXPECT_TRUE(absl::IsUnavailable(s));
  EXPECT_EQ(s.message(),
            "this replica cannot show it is within max_staleness (2s; it can vouch for writes "
            "committed up to 3.456s ago): the newest watermarks are too old: the relays are "
            "behind (PostgreSQL away, outbox rows locked, a relay lease changing hands) or the "
            "consumer lags (relays seen in the last 5s: 2); CACHED reads go to PostgreSQL until "
            "it can");

  f.staleness = absl::InfiniteDuration();
  f.watermarks_cover_partitions = false;
  f.serve_stale = true;
  s = SyncHealth(f);
  EXPECT_THAT(std::string(s.message()), HasSubstr("writes committed up to no time at all): "));
  EXPECT_THAT(std::string(s.message()),
              HasSubstr("no relay's watermarks cover every partition yet (relays hold leases in "
                        "PostgreSQL and need it and Kafka; relays seen in the last 5s: 2)"));
  EXPECT_TRUE(absl::EndsWith(
      s.message(), "; stale_reads: serve, so CACHED reads are still served from the cache"));

  f.broker_reachable = false;
  f.last_error = "timed out";
  EXPECT_THAT(std::string(SyncHealth(f).message()),
              HasSubstr("): Kafka does not answer (timed out); stale_reads: serve"));

  f.clock_calibrated = false;  // checked first
  EXPECT_THAT(std::string(SyncHealth(f).message()),
              HasSubstr("): PostgreSQL has not answered a clock reading yet (watermarks carry "
                        "its time); "));
}

TEST(SyncSample, CopiesStatsAndShowsInfinityBeforeItIsKnown) {
  sync::SyncStats stats;
  stats.positioned = true;
  stats.broker_reachable = true;
  stats.partitions = {{0, 10, 15}, {1, -1, 7}};
  stats.events_undecodable = 1;
  stats.offset_resets = 2;
  stats.published = 3;
  stats.publish_failures = 4;
  stats.producer_restarts = 5;
  service::ApplyStats applied;
  applied.applied = 6;
  applied.stale = 7;
  applied.unknown_namespace = 8;
  SyncSampleFacts facts;
  facts.bypass = true;
  facts.relayed = 9;  // no relay: not shown
  facts.relay_lease = true;
  facts.relay_watermarks = 10;
  facts.retired = 11;
  facts.bypassed_reads = 12;
  facts.relays_seen = 2;
  metrics::Metrics::SyncSample s = SyncSampleOf(stats, applied, facts);
  EXPECT_TRUE(s.positioned);
  EXPECT_TRUE(s.broker_reachable);
  EXPECT_TRUE(s.bypass);
  EXPECT_TRUE(std::isinf(s.staleness_seconds));
  EXPECT_TRUE(std::isinf(s.clock_uncertainty_seconds));
  ASSERT_EQ(s.lag.size(), 2u);
  EXPECT_EQ(s.lag[0], std::make_pair(int32_t{0}, int64_t{5}));
  EXPECT_EQ(s.lag[1], std::make_pair(int32_t{1}, int64_t{0}));
  EXPECT_EQ(s.applied, 6u);
  EXPECT_EQ(s.stale, 7u);
  EXPECT_EQ(s.unknown_namespace, 8u);
  EXPECT_EQ(s.undecodable, 1u);
  EXPECT_EQ(s.offset_resets, 2u);
  EXPECT_EQ(s.published, 3u);
  EXPECT_EQ(s.publish_failures, 4u);
  EXPECT_EQ(s.producer_restarts, 5u);
  EXPECT_EQ(s.relayed, 0u);
  EXPECT_FALSE(s.relay_lease);
  EXPECT_EQ(s.watermarks_published, 0u);
  EXPECT_EQ(s.retired, 11u);
  EXPECT_EQ(s.bypassed_reads, 12u);
  EXPECT_EQ(s.relays, 2u);

  facts.has_relay = true;
  facts.staleness = absl::Milliseconds(250);
  facts.clock_uncertainty = absl::Milliseconds(4);
  s = SyncSampleOf(stats, applied, facts);
  EXPECT_EQ(s.relayed, 9u);
  EXPECT_TRUE(s.relay_lease);
  EXPECT_EQ(s.watermarks_published, 10u);
  EXPECT_DOUBLE_EQ(s.staleness_seconds, 0.25);
  EXPECT_DOUBLE_EQ(s.clock_uncertainty_seconds, 0.004);
}

TEST(Readiness, StuckAfterIsThreeStoreTimeoutsAndAtLeast30s) {
  EXPECT_EQ(StuckAfter(absl::Seconds(5)), absl::Seconds(30));
  EXPECT_EQ(StuckAfter(absl::Seconds(20)), absl::Seconds(60));
}

TEST(Readiness, WaitsForTheReplicatedLoadThenFollowsThePool) {
  service::ProgressWatch progress(absl::Seconds(30));
  const absl::Time t0 = absl::FromUnixSeconds(1000);
  absl::Status s = ProcessReadiness(false, progress, 0, 0, t0);
  EXPECT_TRUE(absl::IsUnavailable(s));
  EXPECT_EQ(s.message(),
            "the replicated namespaces are not loaded yet (readiness waits for their first whole "
            "load from the store)");
  EXPECT_TRUE(ProcessReadiness(true, progress, 0, 4, t0).ok());
  EXPECT_TRUE(ProcessReadiness(true, progress, 0, 4, t0 + absl::Seconds(29)).ok());
  s = ProcessReadiness(true, progress, 0, 4, t0 + absl::Seconds(31));
  EXPECT_TRUE(absl::IsUnavailable(s));
  EXPECT_THAT(std::string(s.message()), HasSubstr("wedged: 4 store calls are queued"));
  EXPECT_TRUE(ProcessReadiness(true, progress, 1, 4, t0 + absl::Seconds(32)).ok());
}

TEST(StorePolicy, PrunesTheOutboxOnlyWithoutASyncTopic) {
  config::Config config;
  EXPECT_EQ(OutboxPruneAfter(config), absl::Minutes(10));
  config.kafka_brokers = "k1:9092";
  EXPECT_EQ(OutboxPruneAfter(config), absl::ZeroDuration());
}

TEST(StopSignals, ABlockedStopSignalWaitsForWaitForStopSignal) {
  const sigset_t set = BlockStopSignals();
  sigset_t blocked;
  ASSERT_EQ(pthread_sigmask(SIG_BLOCK, nullptr, &blocked), 0);
  EXPECT_EQ(sigismember(&blocked, SIGTERM), 1);
  EXPECT_EQ(sigismember(&blocked, SIGINT), 1);
  // Blocked, so it stays pending (the test goes on) until taken.
  ASSERT_EQ(pthread_kill(pthread_self(), SIGTERM), 0);
  EXPECT_EQ(WaitForStopSignal(set), SIGTERM);
  ASSERT_EQ(pthread_kill(pthread_self(), SIGINT), 0);
  EXPECT_EQ(WaitForStopSignal(set), SIGINT);
  EXPECT_STREQ(StopSignalName(SIGTERM), "SIGTERM");
  EXPECT_STREQ(StopSignalName(SIGINT), "SIGINT");
}

}  // namespace
}  // namespace cachecar::app
