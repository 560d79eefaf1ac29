// A harness for tests that run several real `cachecar serve` processes on one
// PostgreSQL (tests/pg/pg.sh, through PgHarness) and one Kafka broker
// (tests/kafka/kafka.sh): child processes with their logs, the Kafka
// fixture's commands (broker stop/pause, topics, kcat), /metrics scraping, a
// gRPC client per replica, and the fixture `ClusterTest` that gives each
// test its own database, sync topic, key prefix and log directory, repairs
// the faults a test left in place, and prints the replicas' logs on failure.
//
// Every wait is a poll with a deadline; timing decides pass/fail only as a
// generous upper bound.
//
// Needs (ctest sets them): CACHECAR_BIN (the cachecar binary),
// CACHECAR_TEST_PG_ENV / CACHECAR_TEST_PG_SH, CACHECAR_TEST_KAFKA_ENV /
// CACHECAR_TEST_KAFKA_SH. CACHECAR_TEST_REPLICA_FAULT=<fault point> plants
// that fault in every replica a test starts without its own env.
//
// Thread-safety: a test's main thread drives the fixture and its replicas;
// Replica's gRPC calls may be made from several threads at once, Process
// methods only from the thread that spawned it (PR_SET_PDEATHSIG).
#ifndef CACHECAR_TESTS_SYNC_CLUSTER_HARNESS_H_
#define CACHECAR_TESTS_SYNC_CLUSTER_HARNESS_H_

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <ostream>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "cachecar/v1/cache.grpc.pb.h"
#include "grpc/health/v1/health.grpc.pb.h"
#include "grpcpp/grpcpp.h"
#include "gtest/gtest.h"

namespace cachecar::testing {

// Every replica runs with this bound (C4); the propagation waits allow it
// plus generous slack for two loaded cores.
inline constexpr absl::Duration kMaxStaleness = absl::Seconds(2);
inline constexpr absl::Duration kSlack = absl::Seconds(6);
inline const absl::Duration kPropagationBound = kMaxStaleness + kSlack;
inline constexpr absl::Duration kStartBound = absl::Seconds(30);
inline constexpr absl::Duration kRpcTimeout = absl::Seconds(5);

// ---------------------------------------------------------------------------
// Small utilities.

// A steady clock for measured delays (absl::Now may step).
class Stopwatch {
 public:
  Stopwatch() : start_(std::chrono::steady_clock::now()) {}
  absl::Duration Elapsed() const {
    return absl::FromChrono(std::chrono::steady_clock::now() - start_);
  }

 private:
  std::chrono::steady_clock::time_point start_;
};

// "1.234 s".
std::string Seconds(absl::Duration d);
// Prints "sync delay: <what> <d>" (the measured delays the tests report).
void PrintDelay(const std::string& what, absl::Duration d);

// Calls `done` every `every` until it returns true or `bound` passes; the
// time it took, or nullopt on timeout.
std::optional<absl::Duration> PollUntil(absl::Duration bound, const std::function<bool()>& done,
                                        absl::Duration every = absl::Milliseconds(20));

std::string ShellQuote(const std::string& s);
// The variable's value; aborts the binary with a message when it is unset.
std::string RequireEnv(const char* name);
std::string ReadFile(const std::string& path);
// The last `lines` lines of `text`.
std::string Tail(const std::string& text, size_t lines);

// ---------------------------------------------------------------------------
// A child process, its stdout and stderr appended to a log file.

class Process {
 public:
  explicit Process(std::string log_path) : log_(std::move(log_path)) {}
  ~Process() { Stop(); }
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  const std::string& log_path() const { return log_; }

  // fork/exec `argv` with `env`, stdout and stderr appended to the log. The
  // child dies with this thread (PR_SET_PDEATHSIG): call from the main
  // thread only.
  void Spawn(const std::vector<std::string>& argv, const std::vector<std::string>& env);
  // Whether the process still runs (reaps it if it exited).
  bool Running();
  // Waits (bounded) for the process to exit; its wait status.
  std::optional<int> WaitExit(absl::Duration bound);
  void Terminate();
  void Kill();
  // SIGTERM, then SIGKILL if it has not exited within `grace`.
  void Stop(absl::Duration grace = absl::Seconds(8));

 private:
  const std::string log_;
  pid_t pid_ = -1;
  std::optional<int> exit_status_;
};

// Runs `command` with bash (at most `bound`); its output (stdout and
// stderr) and wait status (-1: killed at the bound).
std::string Shell(const std::string& command, int* status,
                  absl::Duration bound = absl::Seconds(120));

// ---------------------------------------------------------------------------
// The Kafka fixture: kafka.sh's env file and commands.

class KafkaHarness {
 public:
  static const KafkaHarness& Get();

  const std::string& bootstrap() const { return bootstrap_; }

  // kafka.sh COMMAND DIR ARGS... < input (any bytes); fails the test on an
  // error.
  void Run(const std::string& command, const std::vector<std::string>& args,
           const std::string& input = "") const;

  // How many messages each partition of `topic` holds (kcat, from the start).
  std::map<int, int> MessagesPerPartition(const std::string& topic) const;

 private:
  std::string sh_, dir_, bootstrap_;
};

// ---------------------------------------------------------------------------
// /metrics over plain HTTP/1.0.

// The body of GET /metrics on 127.0.0.1:`port` ("" on any error).
std::string ScrapeMetrics(int port);
// The value of one series (`name` or `name{labels}` exactly as exposed).
std::optional<double> MetricValue(const std::string& text, const std::string& series);
// The partitions that have a cachecar_sync_lag_messages series.
std::set<int> LagPartitions(const std::string& text);

// ---------------------------------------------------------------------------
// One cachecar process.

struct GetResult {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string error;
  bool found = false;
  std::string value;
  uint64_t version = 0;
  v1::Source source = v1::SOURCE_UNSPECIFIED;
  bool ok() const { return code == grpc::StatusCode::OK; }
};

std::ostream& operator<<(std::ostream& os, const GetResult& r);

struct PutResult {
  grpc::StatusCode code = grpc::StatusCode::UNKNOWN;
  std::string error;
  uint64_t version = 0;
  bool ok() const { return code == grpc::StatusCode::OK; }
};

class Replica {
 public:
  Replica(std::string name, std::string log_path)
      : name_(std::move(name)), process_(std::move(log_path)) {}

  const std::string& name() const { return name_; }
  const std::string& log_path() const { return process_.log_path(); }
  int port() const { return port_; }
  int metrics_port() const { return metrics_port_; }
  Process& process() { return process_; }
  bool Running() { return process_.Running(); }
  std::optional<int> WaitExit(absl::Duration bound) { return process_.WaitExit(bound); }
  void Terminate() { process_.Terminate(); }
  void Stop() { process_.Stop(); }
  void Kill() { process_.Kill(); }

  // Until the log names the gRPC and metrics ports (both bound to port 0),
  // then connects.
  bool WaitForPorts(absl::Duration bound);

  // ---- gRPC.
  GetResult Get(const std::string& key, v1::Consistency consistency = v1::CONSISTENCY_CACHED,
                uint64_t min_version = 0);
  PutResult Put(const std::string& key, const std::string& value, uint64_t ttl_ms = 0);
  PutResult Delete(const std::string& key);
  // Puts of `kv` (key, value) in one WriteBatch; the versions, in order.
  std::pair<grpc::Status, std::vector<uint64_t>> WriteBatch(
      const std::vector<std::pair<std::string, std::string>>& kv);
  // Drops keys from this replica's cache (with `broadcast`, from every
  // replica's); no keys and `all`: the whole default namespace.
  bool Invalidate(const std::vector<std::string>& keys, bool broadcast = false, bool all = false);

  // The health status of `service`, or nullopt if the call failed.
  std::optional<grpc::health::v1::HealthCheckResponse::ServingStatus> Health(
      const std::string& service);
  bool Ready();
  // Positioned and within max_staleness by the relays' watermarks.
  bool SyncServing();
  bool StoreServing();

  std::string Metrics() const { return ScrapeMetrics(metrics_port_); }
  std::optional<double> Metric(const std::string& series) const {
    return MetricValue(Metrics(), series);
  }

  // The Cache stub (nullptr before WaitForPorts), for calls the helpers above
  // do not cover.
  v1::Cache::Stub* cache() { return cache_.get(); }

  // One unary call with a deadline (UNAVAILABLE if never connected).
  template <typename Stub, typename Request, typename Response>
  static grpc::Status Call(
      Stub* stub, grpc::Status (Stub::*method)(grpc::ClientContext*, const Request&, Response*),
      const Request& req, Response* resp, absl::Duration timeout = kRpcTimeout) {
    if (stub == nullptr) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "never started");
    grpc::ClientContext ctx;
    ctx.set_deadline(absl::ToChronoTime(absl::Now() + timeout));
    return (stub->*method)(&ctx, req, resp);
  }

 private:
  static bool ParsePort(const std::string& log, const std::string& prefix, int* port);

  const std::string name_;
  Process process_;
  int port_ = 0;
  int metrics_port_ = 0;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Cache::Stub> cache_;
  std::unique_ptr<grpc::health::v1::Health::Stub> health_;
};

// ---------------------------------------------------------------------------
// The fixture: a database, a topic, a log directory and the replicas.

struct ReplicaOptions {
  std::vector<std::string> flags;  // extra flags
  std::vector<std::string> env;    // extra NAME=VALUE
};

class ClusterTest : public ::testing::Test {
 protected:
  // A fresh database `sync_<test name>` migrated by `cachecar migrate`, a
  // topic name and a log directory for this test.
  void SetUp() override;
  // Repairs faults left in place, stops the replicas, prints their logs'
  // tails on failure (and keeps the logs), else removes them.
  void TearDown() override;

  // The environment for a child: ours without CACHECAR_* (cachecar rejects
  // unknown CACHECAR_* variables, and ctest sets CACHECAR_TEST_*), plus
  // `extra`.
  static std::vector<std::string> ChildEnv(const std::vector<std::string>& extra);

  void CreateTopic(int partitions);
  // Faults; TearDown repairs what a test does not.
  void BrokerStop();
  void BrokerStart();
  void BrokerPause();
  void BrokerResume();
  void PgStop();
  void PgStart();

  std::string Key(const std::string& k) const { return prefix_ + k; }

  // SpawnReplica, then WaitReady.
  Replica& StartReplica(const std::string& name, const ReplicaOptions& options = {});
  // Starts `cachecar serve` as replica `name` on this test's topic and
  // database, and connects once it listens (not waiting for readiness).
  Replica& SpawnReplica(const std::string& name, const ReplicaOptions& options = {});
  // Until every replica's readiness is SERVING, its store answers and it
  // vouches for the bound (health cachecar.v1.Cache/sync SERVING:
  // positioned, watermarks fresh), bounded.
  void WaitReady(const std::vector<Replica*>& replicas);

  // PostgreSQL's version and value of a key in the default namespace
  // (nullopt: no row).
  std::optional<std::pair<uint64_t, std::string>> Stored(const std::string& key);
  int OutboxRows();
  // A direct SQL UPDATE of `key` (in the default namespace) to `value`; the
  // version the trigger gave it. When this returns, the write committed.
  uint64_t SqlUpdate(const std::string& key, const std::string& value);
  // Sums a metric over replicas.
  static double Sum(const std::vector<Replica*>& replicas, const std::string& series);

  // Polls `r`'s CACHED Get of `key` until it returns at least `version`; the
  // delay, or nullopt (a test failure) after kPropagationBound. Then the
  // answer must carry `value` and come from `source` (when given).
  std::optional<absl::Duration> WaitForVersion(Replica& r, const std::string& key, uint64_t version,
                                               const std::string& value,
                                               std::optional<v1::Source> source = v1::SOURCE_CACHE);
  // Until `r` answers `key` at `version` (or newer) from its cache, bounded;
  // the delay, or nullopt (a test failure).
  std::optional<absl::Duration> WaitForCached(Replica& r, const std::string& key, uint64_t version,
                                              const std::string& value);
  // Until `r` holds `key` at `version` in its cache (by an event or a load).
  void CacheKey(Replica& r, const std::string& key, uint64_t version, const std::string& value);
  // Makes `r` cache `key` as absent (a key never written), so that only an
  // event can bring it a value.
  void CacheAbsent(Replica& r, const std::string& key);
  // `reader` caches `key` as absent, `writer` writes it: the event must
  // bring the value to `reader`'s cache. Prints the delay.
  void ExpectPropagates(Replica& writer, Replica& reader, const std::string& key,
                        const std::string& value);

  std::string binary_, name_, db_, dsn_, topic_, prefix_, dir_;
  std::vector<std::unique_ptr<Replica>> replicas_;
  bool broker_down_ = false;
  bool broker_paused_ = false;
  bool pg_down_ = false;
  Stopwatch watch_;

 private:
  // A fault (`faulty`: TearDown repairs it if the test does not) or its
  // repair: `run` does it, `*flag` says the fault is in place.
  static void Fault(bool* flag, bool faulty, const std::function<void()>& run);
};

}  // namespace cachecar::testing

#endif  // CACHECAR_TESTS_SYNC_CLUSTER_HARNESS_H_
