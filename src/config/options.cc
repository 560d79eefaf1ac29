// See options.h. The option table and its lookups; how values are set and
// shown is option_setters.h, the text around options (placeholders, forms,
// typos, errors) option_text.cc, the --help example file example_yaml.cc.
#include "config/options.h"

#include <iterator>

#include "config/option_setters.h"

namespace cachecar::config {
namespace {

using K = ValueKind;

// The table itself: data, one row per option, in --help order.
const Option kOptionTable[] = {
    {"config", "--config", "CACHECAR_CONFIG", "", K::kPath, "",
     "YAML file to read options from; flags and env vars override it.",
     &SetText<&Config::config_file>, &ShowText<&Config::config_file>, nullptr},
    {"listen", "--listen", "CACHECAR_LISTEN", "listen", K::kAddressList, "",
     "Address to serve gRPC on: host:port, [v6]:port or unix:///abs/path. "
     "Repeat the flag or give a comma-separated list for several.",
     &AddListen, &ShowListen, &ClearListen},
    {"probe_listen", "--probe-listen", "CACHECAR_PROBE_LISTEN", "probe_listen", K::kAddressList, "",
     "Address serving only grpc.health.v1 (names liveness, readiness), for kubelet "
     "probes: e.g. 0.0.0.0:50052 in a pod, so the API can stay on loopback. Repeatable.",
     &AddProbeListen, &ShowProbeListen, &ClearProbeListen},
    {"metrics_listen", "--metrics-listen", "CACHECAR_METRICS_LISTEN", "metrics_listen", K::kText,
     "HOST:PORT",
     "Where Prometheus scrapes /metrics (0.0.0.0:9464 in a pod; port 0 picks one); "
     "empty turns the endpoint off.",
     &SetText<&Config::metrics_listen>, &ShowText<&Config::metrics_listen>, nullptr},
    {"max_bytes", "--max-bytes", "CACHECAR_MAX_BYTES", "max_bytes", K::kBytes, "",
     "Memory bound for cached keys and values over all namespaces "
     "(at least 1MiB).",
     &SetBytes<&Config::max_bytes>, &ShowBytes<&Config::max_bytes>, nullptr},
    {"shards", "--shards", "CACHECAR_SHARDS", "shards", K::kCount, "",
     "Engine shards per namespace; a power of two from 1 to 1024.", &SetCount<&Config::shards>,
     &ShowCount<&Config::shards>, nullptr},
    {"eviction", "--eviction", "CACHECAR_EVICTION", "eviction", K::kText, "s3fifo|lru",
     "Eviction policy: s3fifo or lru.", &SetText<&Config::eviction>, &ShowText<&Config::eviction>,
     nullptr},
    {"local_read_path", "--local-read-path", "CACHECAR_LOCAL_READ_PATH", "local_read_path",
     K::kPath, "",
     "Publish the cache in this file (in a shared memory dir, e.g. an emptyDir with "
     "medium: Memory) for apps to read hits from without gRPC; empty: off. See "
     "docs/LOCAL_READS.md.",
     &SetText<&Config::local_read_path>, &ShowText<&Config::local_read_path>, nullptr},
    {"max_key_bytes", "--max-key-bytes", "CACHECAR_MAX_KEY_BYTES", "max_key_bytes", K::kBytes, "",
     "Largest key accepted, from 1 byte to 64KiB.", &SetBytes<&Config::max_key_bytes>,
     &ShowBytes<&Config::max_key_bytes>, nullptr},
    {"max_value_bytes", "--max-value-bytes", "CACHECAR_MAX_VALUE_BYTES", "max_value_bytes",
     K::kBytes, "", "Largest value accepted, from 1 byte to 64MiB.",
     &SetBytes<&Config::max_value_bytes>, &ShowBytes<&Config::max_value_bytes>, nullptr},
    {"max_message_bytes", "--max-message-bytes", "CACHECAR_MAX_MESSAGE_BYTES", "max_message_bytes",
     K::kBytes, "",
     "Largest gRPC message accepted (larger: RESOURCE_EXHAUSTED); at least "
     "max_key_bytes + max_value_bytes + 4096.",
     &SetBytes<&Config::max_message_bytes>, &ShowBytes<&Config::max_message_bytes>, nullptr},
    {"max_batch_keys", "--max-batch-keys", "CACHECAR_MAX_BATCH_KEYS", "max_batch_keys", K::kCount,
     "", "Most keys in one batch request, from 1 to 100000.", &SetCount<&Config::max_batch_keys>,
     &ShowCount<&Config::max_batch_keys>, nullptr},
    {"polling_threads", "--polling-threads", "CACHECAR_POLLING_THREADS", "polling_threads",
     K::kCount, "",
     "Threads that read gRPC requests and answer cache hits, one completion queue each, from "
     "1 to 64; raise it past 1 only when cachecar may use more than one core for its API.",
     &SetCount<&Config::polling_threads>, &ShowCount<&Config::polling_threads>, nullptr},
    {"workers", "--workers", "CACHECAR_WORKERS", "workers", K::kCount, "",
     "Threads that run store I/O (misses and writes), from 1 to 1024.", &SetCount<&Config::workers>,
     &ShowCount<&Config::workers>, nullptr},
    {"worker_queue", "--worker-queue", "CACHECAR_WORKER_QUEUE", "worker_queue", K::kCount, "",
     "Store calls that may wait for a worker (at least 1).", &SetCount<&Config::worker_queue>,
     &ShowCount<&Config::worker_queue>, nullptr},
    {"max_watchers", "--max-watchers", "CACHECAR_MAX_WATCHERS", "max_watchers", K::kCount, "",
     "Cache.Watch streams open at once, from 1 to 100000 (more: RESOURCE_EXHAUSTED). "
     "With watch_queue_bytes it bounds what watchers hold: 64 x 1MiB by default.",
     &SetCount<&Config::max_watchers>, &ShowCount<&Config::max_watchers>, nullptr},
    {"watch_queue_bytes", "--watch-queue-bytes", "CACHECAR_WATCH_QUEUE_BYTES", "watch_queue_bytes",
     K::kBytes, "",
     "How far a Watch stream may fall behind, in bytes of queued changes (each costs its "
     "key plus ~100 bytes), from 4KiB to 1GiB; past it the stream ends with "
     "RESOURCE_EXHAUSTED and the client must watch again.",
     &SetBytes<&Config::watch_queue_bytes>, &ShowBytes<&Config::watch_queue_bytes>, nullptr},
    {"max_connections", "--max-connections", "CACHECAR_MAX_CONNECTIONS", "max_connections",
     K::kCount, "",
     "Client connections the gRPC listeners hold at once, from 16 to 1000000 (also kept "
     "under the descriptor limit); at the cap, the oldest connection still in its "
     "handshake is closed for a new one, or the new one is refused.",
     &SetCount<&Config::max_connections>, &ShowCount<&Config::max_connections>, nullptr},
    {"store", "--store", "CACHECAR_STORE", "store", K::kText, "memory|postgres",
     "Backing store: memory (embedded, nothing survives a restart) or postgres "
     "(read-through and write-through; see the postgres_* options).",
     &SetText<&Config::store>, &ShowText<&Config::store>, nullptr},
    {"postgres_dsn", "--postgres-dsn", "CACHECAR_POSTGRES_DSN", "postgres_dsn", K::kSecret, "DSN",
     "libpq connection string, key=value or postgresql:// URI; sslmode and every other "
     "libpq parameter pass through. Its password is never printed.",
     &SetText<&Config::postgres_dsn>, &ShowDsn, nullptr},
    {"postgres_dsn_file", "--postgres-dsn-file", "CACHECAR_POSTGRES_DSN_FILE", "postgres_dsn_file",
     K::kPath, "", "File holding the DSN (a mounted Kubernetes Secret); instead of postgres_dsn.",
     &SetText<&Config::postgres_dsn_file>, &ShowText<&Config::postgres_dsn_file>, nullptr},
    {"postgres_pool_size", "--postgres-pool-size", "CACHECAR_POSTGRES_POOL_SIZE",
     "postgres_pool_size", K::kCount, "",
     "PostgreSQL connections per replica, from 1 to 1024 (store calls beyond it wait).",
     &SetCount<&Config::postgres_pool_size>, &ShowCount<&Config::postgres_pool_size>, nullptr},
    {"postgres_connect_timeout", "--postgres-connect-timeout", "CACHECAR_POSTGRES_CONNECT_TIMEOUT",
     "postgres_connect_timeout", K::kDuration, "",
     "How long one connection attempt may take, 1s to 10m.",
     &SetDuration<&Config::postgres_connect_timeout>,
     &ShowDuration<&Config::postgres_connect_timeout>, nullptr},
    {"postgres_query_timeout", "--postgres-query-timeout", "CACHECAR_POSTGRES_QUERY_TIMEOUT",
     "postgres_query_timeout", K::kDuration, "",
     "Longest a statement may run when the request's deadline allows more (it is "
     "cancelled then); 10ms to 10m.",
     &SetDuration<&Config::postgres_query_timeout>, &ShowDuration<&Config::postgres_query_timeout>,
     nullptr},
    {"postgres_prepared_statements", "--postgres-prepared-statements",
     "CACHECAR_POSTGRES_PREPARED_STATEMENTS", "postgres_prepared_statements", K::kBool,
     "true|false",
     "Use named prepared statements; set false behind PgBouncer in transaction pooling "
     "mode.",
     &SetBool<&Config::postgres_prepared_statements>,
     &ShowBool<&Config::postgres_prepared_statements>, nullptr},
    {"postgres_table", "--postgres-table", "CACHECAR_POSTGRES_TABLE", "postgres_table", K::kText,
     "TABLE", "Shared table for namespaces without a table of their own (table or schema.table).",
     &SetText<&Config::postgres_table>, &ShowText<&Config::postgres_table>, nullptr},
    {"postgres_outbox_inline_max", "--postgres-outbox-inline-max",
     "CACHECAR_POSTGRES_OUTBOX_INLINE_MAX", "postgres_outbox_inline_max", K::kBytes, "",
     "Outbox rows carry the value when it is at most this big (0 to 1MiB); applied by "
     "migrate.",
     &SetBytes<&Config::postgres_outbox_inline_max>,
     &ShowBytes<&Config::postgres_outbox_inline_max>, nullptr},
    {"postgres_tombstone_retention", "--postgres-tombstone-retention",
     "CACHECAR_POSTGRES_TOMBSTONE_RETENTION", "postgres_tombstone_retention", K::kDuration, "",
     "How long a deleted key's version is kept (at least 1m); older deletes read as "
     "\"absent at version 0\".",
     &SetDuration<&Config::postgres_tombstone_retention>,
     &ShowDuration<&Config::postgres_tombstone_retention>, nullptr},
    {"migrate", "--migrate", "CACHECAR_MIGRATE", "migrate", K::kBool, "true|false",
     "At start, create or update the PostgreSQL schema (as `cachecar migrate` does).",
     &SetBool<&Config::migrate>, &ShowBool<&Config::migrate>, nullptr},
    {"kafka_brokers", "--kafka-brokers", "CACHECAR_KAFKA_BROKERS", "kafka_brokers", K::kText,
     "HOST:PORT,...",
     "Kafka bootstrap servers of the sync topic; empty: no sync (a single replica). "
     "Needs store: postgres.",
     &SetText<&Config::kafka_brokers>, &ShowText<&Config::kafka_brokers>, nullptr},
    {"sync_topic", "--sync-topic", "CACHECAR_SYNC_TOPIC", "sync_topic", K::kText, "",
     "The sync topic every replica reads on all partitions (create it beforehand).",
     &SetText<&Config::sync_topic>, &ShowText<&Config::sync_topic>, nullptr},
    {"replica_id", "--replica-id", "CACHECAR_REPLICA_ID", "replica_id", K::kText, "",
     "This replica's name in events and Kafka client ids; empty: hostname-pid.",
     &SetText<&Config::replica_id>, &ShowText<&Config::replica_id>, nullptr},
    {"kafka_properties", "--kafka-property", "CACHECAR_KAFKA_PROPERTIES", "kafka_properties",
     K::kPropertyList, "",
     "A librdkafka property for the sync clients, name=value (security.protocol=SSL, "
     "sasl.*, linger.ms, ...); overrides cachecar's defaults. Repeatable.",
     &AddKafkaProperties, &ShowKafkaProperties, &ClearKafkaProperties},
    {"max_staleness", "--max-staleness", "CACHECAR_MAX_STALENESS", "max_staleness", K::kDuration,
     "",
     "Bound on how old a cached answer may be (C4), from commit to cache: a replica that "
     "cannot show it has applied every write committed longer ago than this reads from "
     "PostgreSQL (see stale_reads).",
     &SetDuration<&Config::max_staleness>, &ShowDuration<&Config::max_staleness>, nullptr},
    {"stale_reads", "--stale-reads", "CACHECAR_STALE_READS", "stale_reads", K::kText,
     "bypass|serve",
     "When this replica cannot show it is within max_staleness: bypass (read PostgreSQL; "
     "health cachecar.v1.Cache/sync NOT_SERVING) or serve (keep answering from the cache, "
     "possibly stale). Readiness does not depend on it.",
     &SetText<&Config::stale_reads>, &ShowText<&Config::stale_reads>, nullptr},
    {"sync_inline_max", "--sync-inline-max", "CACHECAR_SYNC_INLINE_MAX", "sync_inline_max",
     K::kBytes, "",
     "Largest value an event carries (namespaces with sync: update); larger values "
     "make other replicas drop the key instead.",
     &SetBytes<&Config::sync_inline_max>, &ShowBytes<&Config::sync_inline_max>, nullptr},
    {"outbox_relay_delay", "--outbox-relay-delay", "CACHECAR_OUTBOX_RELAY_DELAY",
     "outbox_relay_delay", K::kDuration, "",
     "A cachecar writer's outbox entry it has not announced after this long (it crashed "
     "after its commit) is published by a relay; other programs' writes (psql, another "
     "service) are published as soon as PostgreSQL tells the relays.",
     &SetDuration<&Config::outbox_relay_delay>, &ShowDuration<&Config::outbox_relay_delay>,
     nullptr},
    {"outbox_relays", "--outbox-relays", "CACHECAR_OUTBOX_RELAYS", "outbox_relays", K::kCount, "",
     "How many replicas relay the outbox and publish watermarks at a time (a lease each in "
     "PostgreSQL, taken over when its holder dies); 1 to 16, the same on every replica.",
     &SetCount<&Config::outbox_relays>, &ShowCount<&Config::outbox_relays>, nullptr},
    {"min_version_wait", "--min-version-wait", "CACHECAR_MIN_VERSION_WAIT", "min_version_wait",
     K::kDuration, "",
     "A Get with min_version whose cached copy is older waits this long (within the call's "
     "deadline) for the sync event, then reads the store; 0 reads the store at once; up to 1m.",
     &SetDuration<&Config::min_version_wait>, &ShowDuration<&Config::min_version_wait>, nullptr},
    {"audit_rate", "--audit-rate", "CACHECAR_AUDIT_RATE", "audit_rate", K::kCount, "KEYS/S",
     "Staleness auditor: cached entries compared with the store per second (versions only, in "
     "batches of up to 100); an entry older than a store version written longer ago than "
     "max_staleness is counted (cachecar_audit_divergent_total), logged and dropped. 0: off; "
     "up to 100000.",
     &SetCount<&Config::audit_rate>, &ShowCount<&Config::audit_rate>, nullptr},
    {"shutdown_grace", "--shutdown-grace", "CACHECAR_SHUTDOWN_GRACE", "shutdown_grace",
     K::kDuration, "",
     "On SIGTERM, how long in-flight calls get after health turns "
     "NOT_SERVING; 0 to 10m.",
     &SetDuration<&Config::shutdown_grace>, &ShowDuration<&Config::shutdown_grace>, nullptr},
    {"warm_start_file", "--warm-start-file", "CACHECAR_WARM_START_FILE", "warm_start_file",
     K::kPath, "",
     "On SIGTERM, write the keys the cache holds (not their values) to this file (an "
     "emptyDir survives container restarts); at start, reload them from the store in the "
     "background so the hit ratio comes back without a miss storm. Empty: off.",
     &SetText<&Config::warm_start_file>, &ShowText<&Config::warm_start_file>, nullptr},
    {"warm_start_rate", "--warm-start-rate", "CACHECAR_WARM_START_RATE", "warm_start_rate",
     K::kCount, "",
     "Keys per second the warm start reloads at most (in store reads of 500 keys; it also "
     "pauses while live misses wait for the store); 1 to 10000000.",
     &SetCount<&Config::warm_start_rate>, &ShowCount<&Config::warm_start_rate>, nullptr},
    {"log_level", "--log-level", "CACHECAR_LOG_LEVEL", "log_level", K::kText, "LEVEL",
     "trace, debug, info, warning, error, critical or off.", &SetText<&Config::log_level>,
     &ShowText<&Config::log_level>, nullptr},
    {"log_format", "--log-format", "CACHECAR_LOG_FORMAT", "log_format", K::kText, "text|json",
     "text, or json for one JSON object per line.", &SetText<&Config::log_format>,
     &ShowText<&Config::log_format>, nullptr},
    {"namespaces", "--namespace", "CACHECAR_NAMESPACES", "namespaces", K::kNamespaceList, "",
     "A cache namespace, name[:ttl[:share]]: ttl 0 means no expiry, share "
     "is its fraction of max_bytes. Repeatable; \"default\" always exists.",
     &AddNamespaces, &ShowNamespaces, &ClearNamespaces},
};

template <typename Key>
const Option* FindOption(absl::string_view wanted, Key key) {
  for (const Option& option : Options()) {
    const absl::string_view have = option.*key;
    if (!have.empty() && have == wanted) return &option;
  }
  return nullptr;
}

}  // namespace

const std::vector<Option>& Options() {
  static const std::vector<Option>* const options =
      new std::vector<Option>(std::begin(kOptionTable), std::end(kOptionTable));
  return *options;
}

const Option* FindOptionByFlag(absl::string_view flag) { return FindOption(flag, &Option::flag); }
const Option* FindOptionByEnv(absl::string_view env) { return FindOption(env, &Option::env); }
const Option* FindOptionByYamlKey(absl::string_view key) {
  return FindOption(key, &Option::yaml_key);
}

}  // namespace cachecar::config
