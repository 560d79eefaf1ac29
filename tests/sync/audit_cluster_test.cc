// The staleness auditor and batched min-version reads (issue #15 items 1
// and 2) across real `cachecar serve` replicas on PostgreSQL and Kafka
// (tests/sync/cluster_harness.h).
//
// A divergence is planted by writing the shared table with its triggers
// off (session_replication_role = replica): the row gets a newer version
// and no outbox row, so no event ever reaches the replicas that cache the
// old one. The auditor must count it on every replica that holds it, log it
// and drop it, after which a read loads the new value. A healthy cluster
// under writes (through cachecar and direct SQL) must show no divergence.
//
// CACHECAR_TEST_REPLICA_FAULT=audit_no_repair (common/fault_point.h) plants
// a bug in every replica: the auditor counts but does not drop, and
// ADivergenceIsCountedLoggedAndRepaired must fail (ctest runs it so as
// audit_cluster_planted, which passes only if it fails).
//
// Needs (ctest sets them): CACHECAR_BIN, CACHECAR_TEST_PG_ENV /
// CACHECAR_TEST_PG_SH, CACHECAR_TEST_KAFKA_ENV / CACHECAR_TEST_KAFKA_SH.
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "tests/integration/pg_harness.h"
#include "tests/sync/cluster_harness.h"

namespace cachecar::testing {
namespace {

class AuditClusterTest : public ClusterTest {
 protected:
  // Writes `key` in the shared table with the triggers off: a new version,
  // no outbox row, no event. Returns the version.
  uint64_t SilentUpdate(const std::string& key, const std::string& value) {
    const std::string out = PgHarness::Get().Psql(
        db_, absl::StrCat("SET session_replication_role = replica;\n"
                          "UPDATE cachecar_entries SET value = convert_to('",
                          value,
                          "', 'UTF8'), version = nextval('cachecar_version_seq'), "
                          "updated_at = now() WHERE namespace = 'default' AND key = '",
                          key, "' RETURNING version;"));
    uint64_t version = 0;
    EXPECT_TRUE(absl::SimpleAtoi(out, &version)) << out;
    return version;
  }

  static ReplicaOptions Auditing(int rate) {
    ReplicaOptions o;
    o.flags.push_back(absl::StrCat("--audit-rate=", rate));
    return o;
  }
};

TEST_F(AuditClusterTest, ADivergenceIsCountedLoggedAndRepaired) {
  CreateTopic(3);
  Replica& a = SpawnReplica("a", Auditing(1000));
  Replica& b = SpawnReplica("b", Auditing(1000));
  WaitReady({&a, &b});
  ASSERT_FALSE(HasFatalFailure());

  const std::string key = Key("planted");
  const PutResult put = a.Put(key, "v1");
  ASSERT_TRUE(put.ok()) << put.error;
  CacheKey(b, key, put.version, "v1");
  CacheKey(a, key, put.version, "v1");
  ASSERT_FALSE(HasFatalFailure());

  const uint64_t silent = SilentUpdate(key, "v2");
  ASSERT_GT(silent, put.version);
  EXPECT_EQ(OutboxRows(), 0);  // nothing will tell the replicas
  // The divergence is in place: both still serve v1 from their caches.
  for (Replica* r : {&a, &b}) {
    const GetResult now = r->Get(key);
    EXPECT_EQ(now.version, put.version) << r->name() << ": " << now;
    EXPECT_EQ(now.source, v1::SOURCE_CACHE) << r->name() << ": " << now;
  }

  // Once the silent write is older than max_staleness, each replica's
  // auditor counts it, and the next read loads v2 from the store.
  Stopwatch since_write;
  for (Replica* r : {&a, &b}) {
    GetResult last;
    const auto repaired = PollUntil(kMaxStaleness + kSlack, [&] {
      last = r->Get(key);
      return last.ok() && last.version == silent;
    });
    EXPECT_TRUE(repaired.has_value()) << r->name() << " still serves " << last << " "
                                      << absl::FormatDuration(kMaxStaleness + kSlack)
                                      << " after a write no event announced; divergent: "
                                      << r->Metric("cachecar_audit_divergent_total").value_or(-1);
    if (!repaired.has_value()) continue;
    PrintDelay(absl::StrCat("silent write -> repaired on ", r->name()), since_write.Elapsed());
    EXPECT_EQ(last.value, "v2") << r->name();
    EXPECT_GE(since_write.Elapsed(), kMaxStaleness - absl::Milliseconds(100))
        << r->name() << " dropped the entry before the write was older than max_staleness";
    EXPECT_GE(r->Metric("cachecar_audit_divergent_total").value_or(0), 1.0) << r->name();
    EXPECT_GT(r->Metric("cachecar_audit_checked_total").value_or(0), 1.0) << r->name();
    EXPECT_GT(r->Metric("cachecar_audit_worst_lag_seconds").value_or(0),
              absl::ToDoubleSeconds(kMaxStaleness))
        << r->name();
    // The log names the namespace, the key and both versions.
    const std::string log = ReadFile(r->log_path());
    EXPECT_NE(log.find(absl::StrCat("audit: divergent entry dropped: namespace default key '", key,
                                    "': cached version ", put.version, ", store version ", silent)),
              std::string::npos)
        << r->name() << ":\n"
        << Tail(log, 20);
    // And v2 is cached again (through a fill ticket, like any miss).
    EXPECT_TRUE(WaitForCached(*r, key, silent, "v2").has_value()) << r->name();
  }
}

TEST_F(AuditClusterTest, AHealthyClusterUnderWritesShowsNoDivergence) {
  CreateTopic(3);
  Replica& a = SpawnReplica("a", Auditing(1000));
  Replica& b = SpawnReplica("b", Auditing(1000));
  WaitReady({&a, &b});
  ASSERT_FALSE(HasFatalFailure());

  std::vector<std::string> keys;
  for (int i = 0; i < 20; ++i) keys.push_back(Key(absl::StrCat("k", i)));
  for (const std::string& k : keys) ASSERT_TRUE(a.Put(k, "0").ok());
  // For ~6 s: writes through a, direct SQL (with triggers: relayed), reads
  // on both, so the auditors see entries racing their events.
  Stopwatch run;
  int round = 0;
  while (run.Elapsed() < absl::Seconds(6)) {
    ++round;
    for (size_t i = 0; i < keys.size(); ++i) {
      const std::string value = absl::StrCat(round);
      if (i % 4 == 0) {
        SqlUpdate(keys[i], value);
      } else if (i % 2 == 0) {
        EXPECT_TRUE(a.Put(keys[i], value).ok());
      }
      b.Get(keys[i]);
      a.Get(keys[i]);
    }
  }
  // Let every event land, and the auditors look at everything again.
  const double checked_before = Sum({&a, &b}, "cachecar_audit_checked_total");
  ASSERT_TRUE(
      PollUntil(
          kSlack + absl::Seconds(10),
          [&] {
            return Sum({&a, &b}, "cachecar_audit_checked_total") > checked_before + 4 * keys.size();
          })
          .has_value())
      << "the auditors checked nothing more";
  for (Replica* r : {&a, &b}) {
    EXPECT_EQ(r->Metric("cachecar_audit_divergent_total").value_or(-1), 0.0)
        << r->name() << ":\n"
        << Tail(ReadFile(r->log_path()), 20);
    EXPECT_EQ(r->Metric("cachecar_audit_errors_total").value_or(-1), 0.0) << r->name();
    std::printf("audit on %s: checked %.0f, behind (in flight) %.0f, worst lag %.3f s\n",
                r->name().c_str(), r->Metric("cachecar_audit_checked_total").value_or(0),
                r->Metric("cachecar_audit_behind_total").value_or(0),
                r->Metric("cachecar_audit_worst_lag_seconds").value_or(0));
  }
}

// A BatchGet with min_versions whose keys are all behind (silent writes: no
// event will come) waits for them together, then reads them in ONE store
// batch read, and counts them as read through.
TEST_F(AuditClusterTest, BatchGetWithMinVersionsReadsTheKeysBehindInOneBatch) {
  CreateTopic(3);
  ReplicaOptions no_audit = Auditing(0);
  no_audit.flags.push_back("--min-version-wait=1s");
  Replica& a = SpawnReplica("a", no_audit);
  WaitReady({&a});
  ASSERT_FALSE(HasFatalFailure());

  std::vector<std::string> keys;
  std::vector<uint64_t> old, silent;
  for (int i = 0; i < 5; ++i) {
    keys.push_back(Key(absl::StrCat("m", i)));
    const PutResult put = a.Put(keys.back(), "old");
    ASSERT_TRUE(put.ok()) << put.error;
    old.push_back(put.version);
    CacheKey(a, keys.back(), put.version, "old");
    ASSERT_FALSE(HasFatalFailure());
  }
  for (const std::string& k : keys) silent.push_back(SilentUpdate(k, "new"));
  const std::string load_batch =
      "cachecar_store_operations_total{code=\"OK\",op=\"load_batch\",store=\"postgres\"}";
  const std::string load =
      "cachecar_store_operations_total{code=\"OK\",op=\"load\",store=\"postgres\"}";
  const std::string through = "cachecar_min_version_reads_total{result=\"read_through\"}";
  const double batches_before = a.Metric(load_batch).value_or(0);
  const double loads_before = a.Metric(load).value_or(0);
  const double through_before = a.Metric(through).value_or(0);

  v1::BatchGetRequest req;
  for (size_t i = 0; i < keys.size(); ++i) {
    req.add_keys(keys[i]);
    req.add_min_versions(silent[i]);
  }
  req.add_keys(keys[0]);  // a duplicate without a min_version: the cache answers
  req.add_min_versions(0);
  v1::BatchGetResponse resp;
  Stopwatch call;
  const grpc::Status s = Replica::Call(a.cache(), &v1::Cache::Stub::BatchGet, req, &resp);
  const absl::Duration took = call.Elapsed();
  ASSERT_TRUE(s.ok()) << s.error_message();
  ASSERT_EQ(resp.entries_size(), 6);
  for (size_t i = 0; i < keys.size(); ++i) {
    EXPECT_EQ(resp.entries(i).version(), silent[i]) << keys[i];
    EXPECT_EQ(resp.entries(i).value(), "new") << keys[i];
    EXPECT_EQ(resp.entries(i).source(), v1::SOURCE_STORE) << keys[i];
  }
  EXPECT_EQ(resp.entries(5).version(), old[0]);
  EXPECT_EQ(resp.entries(5).source(), v1::SOURCE_CACHE);
  PrintDelay("BatchGet of 5 keys behind (min_version_wait 1s)", took);
  EXPECT_GE(took, absl::Milliseconds(900)) << "the keys did not wait for their events";
  EXPECT_LT(took, absl::Seconds(4)) << "the waits were not concurrent";
  EXPECT_EQ(a.Metric(load_batch).value_or(0) - batches_before, 1.0)
      << "the keys behind were not read in one batch";
  EXPECT_EQ(a.Metric(load).value_or(0) - loads_before, 0.0);
  EXPECT_EQ(a.Metric(through).value_or(0) - through_before, 5.0);
}

}  // namespace
}  // namespace cachecar::testing
