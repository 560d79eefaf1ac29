// cachecar's configuration: one struct with a comment and a default for every
// option, loaded once at start from (highest first) command-line flags,
// CACHECAR_* environment variables, a YAML file, and the defaults here, then
// validated. Errors name the field and the source it came from.
//
// Thread-safety: a Config is a plain value; build it once, then share it const.
#ifndef CACHECAR_CONFIG_CONFIG_H_
#define CACHECAR_CONFIG_CONFIG_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cachecar::config {

// A cache namespace, declared in the YAML file (`namespaces:` list) or with
// repeated --namespace=name[:ttl[:share]] flags.
struct NamespaceConfig {
  std::string name;                           // [a-zA-Z0-9_.-]{1,64}
  absl::Duration ttl = absl::ZeroDuration();  // 0 = entries do not expire
  // Share of cache.max_bytes this namespace may hold, in (0, 1]. 0 here means
  // "not set": namespaces without a share split what the others leave.
  double max_bytes_share = 0;
  // store: postgres only, YAML only: keep this namespace in an existing
  // application table instead of the shared one. All three or none.
  std::string table;         // "users" or "app.users"
  std::string key_column;    // needs a PRIMARY KEY or UNIQUE constraint
  std::string value_column;  // bytea, or any type with a text form (text, jsonb)
  // What the sync topic carries for this namespace: "update" (small values
  // travel inline; replicas replace their copy) or "invalidate" (replicas
  // drop the key; the next read loads it).
  std::string sync = "update";
  // YAML only: how long "absent" entries (a deleted key, or a read that
  // found nothing) stay cached; unset = ttl, 0 = they do not expire.
  std::optional<absl::Duration> negative_ttl;
  // YAML only: every replica holds the whole table (loaded at start, kept
  // current from the sync topic, absent keys answered without a store
  // read); needs sync: update and no ttl. For small reference tables.
  bool replicated = false;
};

struct Config {
  // Addresses to serve gRPC on: host:port, [v6]:port, or unix:///abs/path.
  std::vector<std::string> listen = {"127.0.0.1:50051"};
  // Addresses serving only grpc.health.v1 (kubelet probes reach the pod IP
  // while the API stays on loopback); empty: none.
  std::vector<std::string> probe_listen;
  // host:port of the Prometheus /metrics endpoint; empty: no endpoint.
  std::string metrics_listen = "127.0.0.1:9464";

  // Cache engine.
  uint64_t max_bytes = 256ull << 20;  // bound over all namespaces
  uint32_t shards = 16;               // engine shards per namespace
  std::string eviction = "s3fifo";    // s3fifo | lru
  // Local reads (docs/LOCAL_READS.md): the file in a shared memory
  // directory where the cache lives, for apps in the pod to answer hits
  // from without gRPC. Empty: off (the cache lives in private memory).
  std::string local_read_path;

  // Request limits.
  uint32_t max_key_bytes = 1024;
  uint32_t max_value_bytes = 1 << 20;
  // Largest gRPC message accepted; larger ones get RESOURCE_EXHAUSTED.
  uint32_t max_message_bytes = 4 << 20;
  uint32_t max_batch_keys = 1000;

  // gRPC completion queues, each polled by one thread that also answers
  // cache hits (docs/BENCHMARKS.md, "Serving core").
  uint32_t polling_threads = 1;

  // Worker pool that runs store I/O (misses and writes).
  uint32_t workers = 8;
  uint32_t worker_queue = 10000;

  // Cache.Watch: open streams at most, and how far (in bytes of queued
  // changes) each may fall behind before it is ended (RESOURCE_EXHAUSTED).
  uint32_t max_watchers = 64;
  uint64_t watch_queue_bytes = 1 << 20;
  // Client connections the gRPC listeners hold at once (each probe listener
  // holds at most 64); more wait, then the oldest still handshaking goes.
  uint32_t max_connections = 1024;

  // Store: "memory" (embedded default) or "postgres".
  std::string store = "memory";

  // PostgreSQL (store: postgres). The DSN may hold a password: it is
  // redacted wherever the config is printed.
  std::string postgres_dsn;
  std::string postgres_dsn_file;  // read at start (a mounted Secret)
  uint32_t postgres_pool_size = 8;
  absl::Duration postgres_connect_timeout = absl::Seconds(5);
  absl::Duration postgres_query_timeout = absl::Seconds(5);
  bool postgres_prepared_statements = true;  // false behind PgBouncer (transaction mode)
  std::string postgres_table = "cachecar_entries";
  uint32_t postgres_outbox_inline_max = 1024;  // bytes of value carried in outbox rows
  absl::Duration postgres_tombstone_retention = absl::Hours(24);
  bool migrate = false;  // create/update the schema at start

  // Sync topic (Kafka). Empty brokers: no sync (one replica, or the memory
  // store). Every replica reads every partition; see docs/DESIGN.md.
  std::string kafka_brokers;  // bootstrap.servers
  std::string sync_topic = "cachecar-sync";
  std::string replica_id;  // empty: hostname-pid
  // librdkafka properties ("name=value"), applied after cachecar's own
  // (TLS, SASL, tuning).
  std::vector<std::string> kafka_properties;
  // C4: a replica that cannot show it has applied every event older than
  // this answers reads from PostgreSQL ("bypass") or, with stale_reads:
  // serve, keeps serving its cache (and says so in health and metrics).
  absl::Duration max_staleness = absl::Seconds(2);
  std::string stale_reads = "bypass";  // bypass | serve
  uint32_t sync_inline_max = 1024;     // largest value carried in an event
  // A cachecar writer's outbox entry it has not retired after this long is
  // published by a relay (entries of other programs' writes are published
  // at once).
  absl::Duration outbox_relay_delay = absl::Milliseconds(500);
  // How many replicas relay the outbox (and publish watermarks) at a time,
  // each holding a lease in PostgreSQL; from 1 to 16.
  uint32_t outbox_relays = 2;
  // A min-version read (GetRequest.min_version) whose cached copy is older
  // waits this long, within its deadline, for the event; then reads the
  // store. 0: read the store at once.
  absl::Duration min_version_wait = absl::Seconds(1);
  // The staleness auditor (service/auditor.h): cached entries compared with
  // the store per second, in the background; 0: off. 10 costs one small
  // indexed read (10 keys, no values) per second per replica.
  uint32_t audit_rate = 10;

  // On SIGTERM: health goes NOT_SERVING, then in-flight calls get this long.
  absl::Duration shutdown_grace = absl::Seconds(10);

  // Warm start (service/warm_start.h): on SIGTERM the keys the cache holds
  // (not their values) are written to this file; at start they are reloaded
  // from the store in the background, at most warm_start_rate keys per
  // second, behind live traffic. Empty: off.
  std::string warm_start_file;
  uint32_t warm_start_rate = 50000;

  // Logging.
  std::string log_level = "info";   // trace|debug|info|warn|error|critical|off
  std::string log_format = "text";  // text | json

  // Namespaces; when empty, one namespace "default" with the whole budget.
  std::vector<NamespaceConfig> namespaces;

  // Where the config file came from, if any (for logs).
  std::string config_file;

  // Where each option's value came from, by option name (the YAML key, or
  // "config"): "default", "--max-bytes", "CACHECAR_MAX_BYTES", or
  // "/etc/cachecar.yaml:12". Filled by LoadConfig; Validate quotes it in
  // errors.
  std::map<std::string, std::string> sources;
};

// What LoadConfig found on the command line besides options.
struct LoadResult {
  Config config;
  bool help = false;     // --help / -h: print HelpText() and exit 0
  bool version = false;  // --version
};

// Loads and validates. `argv` excludes the program name and subcommand.
// `env` is the environment (tests pass their own). The YAML file comes from
// --config or CACHECAR_CONFIG. With --help or --version nothing else is read
// or checked: the result holds the flag and a default Config.
absl::StatusOr<LoadResult> LoadConfig(const std::vector<std::string>& argv,
                                      const std::map<std::string, std::string>& env);

// Reads the process environment into a map (for LoadConfig).
std::map<std::string, std::string> ProcessEnvironment();

// Checks ranges and cross-field rules; names the field in the error.
absl::Status Validate(Config& config);

// The --help text: every option, its flag, env var, YAML key and default.
std::string HelpText();

// Parses "10s", "500ms", "2m", "1h", "1h30m", "0" into a duration; a unit is
// required unless the value is 0, and negative or infinite values are errors.
absl::StatusOr<absl::Duration> ParseDuration(const std::string& text);
// Parses "1048576", "64KiB", "256MiB", "1GiB" (also KB/MB/GB as powers of 2,
// Kubernetes' Ki/Mi/Gi, and TiB; units are case-insensitive).
absl::StatusOr<uint64_t> ParseBytes(const std::string& text);

// "256MiB" for 268435456, "1000" when no unit divides evenly.
std::string FormatBytes(uint64_t bytes);

// One line, `name=value` for every option, for the start-up log.
std::string DescribeConfig(const Config& config);

}  // namespace cachecar::config

#endif  // CACHECAR_CONFIG_CONFIG_H_
