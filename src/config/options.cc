#include "config/options.h"

#include <algorithm>
#include <type_traits>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/redact.h"
#include "config/values.h"

namespace cachecar::config {
namespace {

// Setters and printers, one template per value kind over the Config member.

template <auto kField>
absl::Status SetText(Config& c, absl::string_view text) {
  c.*kField = std::string(absl::StripAsciiWhitespace(text));
  return absl::OkStatus();
}
template <auto kField>
std::string ShowText(const Config& c) {
  return c.*kField;
}

template <auto kField>
absl::Status SetBytes(Config& c, absl::string_view text) {
  using Field = std::remove_reference_t<decltype(c.*kField)>;
  if constexpr (std::is_same_v<Field, uint64_t>) {
    absl::StatusOr<uint64_t> bytes = ParseBytes(std::string(text));
    if (!bytes.ok()) return bytes.status();
    c.*kField = *bytes;
  } else {
    static_assert(std::is_same_v<Field, uint32_t>);
    absl::StatusOr<uint32_t> bytes = ParseBytes32(text);
    if (!bytes.ok()) return bytes.status();
    c.*kField = *bytes;
  }
  return absl::OkStatus();
}
template <auto kField>
std::string ShowBytes(const Config& c) {
  return FormatBytes(c.*kField);
}

template <auto kField>
absl::Status SetCount(Config& c, absl::string_view text) {
  absl::StatusOr<uint32_t> n = ParseCount(text);
  if (!n.ok()) return n.status();
  c.*kField = *n;
  return absl::OkStatus();
}
template <auto kField>
std::string ShowCount(const Config& c) {
  return absl::StrCat(c.*kField);
}

template <auto kField>
absl::Status SetDuration(Config& c, absl::string_view text) {
  absl::StatusOr<absl::Duration> d = ParseDuration(std::string(text));
  if (!d.ok()) return d.status();
  c.*kField = *d;
  return absl::OkStatus();
}
template <auto kField>
std::string ShowDuration(const Config& c) {
  return FormatDurationText(c.*kField);
}

template <auto kField>
absl::Status SetBool(Config& c, absl::string_view text) {
  const std::string v = absl::AsciiStrToLower(absl::StripAsciiWhitespace(text));
  if (v == "true" || v == "1" || v == "yes") {
    c.*kField = true;
  } else if (v == "false" || v == "0" || v == "no") {
    c.*kField = false;
  } else {
    return absl::InvalidArgumentError(absl::StrCat("expected true or false, got ", Quote(text)));
  }
  return absl::OkStatus();
}
template <auto kField>
std::string ShowBool(const Config& c) {
  return c.*kField ? "true" : "false";
}

std::string ShowDsn(const Config& c) { return RedactDsn(c.postgres_dsn); }

// "a=1,b=x,y" is a=1 and b=x,y: a comma starts a new property only when
// what follows it has a '=' (librdkafka values such as debug contexts and
// cipher suites are comma lists themselves).
absl::Status AddKafkaProperties(Config& c, absl::string_view text) {
  std::vector<std::string> items;
  for (std::string& part : SplitList(text)) {
    if (part.find('=') == std::string::npos && !items.empty()) {
      absl::StrAppend(&items.back(), ",", part);
    } else {
      items.push_back(std::move(part));
    }
  }
  for (std::string& item : items) {
    const size_t eq = item.find('=');
    if (eq == std::string::npos || eq == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("\"", item, "\" is not name=value (e.g. security.protocol=SSL)"));
    }
    c.kafka_properties.push_back(std::move(item));
  }
  return absl::OkStatus();
}
// Values of properties that look secret are not shown.
std::string ShowKafkaProperties(const Config& c) {
  std::vector<std::string> shown;
  for (const std::string& item : c.kafka_properties) {
    const std::string name = item.substr(0, item.find('='));
    const std::string lower = absl::AsciiStrToLower(name);
    const bool secret = lower.find("password") != std::string::npos ||
                        lower.find("secret") != std::string::npos ||
                        absl::EndsWith(lower, ".key.pem") || lower == "sasl.oauthbearer.config";
    shown.push_back(secret ? name + "=***" : item);
  }
  return absl::StrJoin(shown, ",");
}
void ClearKafkaProperties(Config& c) { c.kafka_properties.clear(); }

absl::Status AddListen(Config& c, absl::string_view text) {
  for (std::string& address : SplitList(text)) {
    c.listen.push_back(std::move(address));
  }
  return absl::OkStatus();
}
std::string ShowListen(const Config& c) { return absl::StrJoin(c.listen, ","); }
void ClearListen(Config& c) { c.listen.clear(); }

absl::Status AddProbeListen(Config& c, absl::string_view text) {
  for (std::string& address : SplitList(text)) c.probe_listen.push_back(std::move(address));
  return absl::OkStatus();
}
std::string ShowProbeListen(const Config& c) { return absl::StrJoin(c.probe_listen, ","); }
void ClearProbeListen(Config& c) { c.probe_listen.clear(); }

absl::Status AddNamespaces(Config& c, absl::string_view text) {
  for (const std::string& spec : SplitList(text)) {
    absl::StatusOr<NamespaceConfig> ns = ParseNamespaceSpec(spec);
    if (!ns.ok()) return ns.status();
    c.namespaces.push_back(*std::move(ns));
  }
  return absl::OkStatus();
}
std::string ShowNamespaces(const Config& c) {
  std::vector<std::string> specs;
  for (const NamespaceConfig& ns : c.namespaces) {
    specs.push_back(FormatNamespaceSpec(ns));
  }
  return absl::StrJoin(specs, ",");
}
void ClearNamespaces(Config& c) { c.namespaces.clear(); }

std::vector<Option>* BuildOptions() {
  using K = ValueKind;
  return new std::vector<Option>{
      {"config", "--config", "CACHECAR_CONFIG", "", K::kPath, "",
       "YAML file to read options from; flags and env vars override it.",
       &SetText<&Config::config_file>, &ShowText<&Config::config_file>, nullptr},
      {"listen", "--listen", "CACHECAR_LISTEN", "listen", K::kAddressList, "",
       "Address to serve gRPC on: host:port, [v6]:port or unix:///abs/path. "
       "Repeat the flag or give a comma-separated list for several.",
       &AddListen, &ShowListen, &ClearListen},
      {"probe_listen", "--probe-listen", "CACHECAR_PROBE_LISTEN", "probe_listen", K::kAddressList,
       "",
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
      {"max_message_bytes", "--max-message-bytes", "CACHECAR_MAX_MESSAGE_BYTES",
       "max_message_bytes", K::kBytes, "",
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
       "Threads that run store I/O (misses and writes), from 1 to 1024.",
       &SetCount<&Config::workers>, &ShowCount<&Config::workers>, nullptr},
      {"worker_queue", "--worker-queue", "CACHECAR_WORKER_QUEUE", "worker_queue", K::kCount, "",
       "Store calls that may wait for a worker (at least 1).", &SetCount<&Config::worker_queue>,
       &ShowCount<&Config::worker_queue>, nullptr},
      {"max_watchers", "--max-watchers", "CACHECAR_MAX_WATCHERS", "max_watchers", K::kCount, "",
       "Cache.Watch streams open at once, from 1 to 100000 (more: RESOURCE_EXHAUSTED). "
       "With watch_queue_bytes it bounds what watchers hold: 64 x 1MiB by default.",
       &SetCount<&Config::max_watchers>, &ShowCount<&Config::max_watchers>, nullptr},
      {"watch_queue_bytes", "--watch-queue-bytes", "CACHECAR_WATCH_QUEUE_BYTES",
       "watch_queue_bytes", K::kBytes, "",
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
      {"postgres_dsn_file", "--postgres-dsn-file", "CACHECAR_POSTGRES_DSN_FILE",
       "postgres_dsn_file", K::kPath, "",
       "File holding the DSN (a mounted Kubernetes Secret); instead of postgres_dsn.",
       &SetText<&Config::postgres_dsn_file>, &ShowText<&Config::postgres_dsn_file>, nullptr},
      {"postgres_pool_size", "--postgres-pool-size", "CACHECAR_POSTGRES_POOL_SIZE",
       "postgres_pool_size", K::kCount, "",
       "PostgreSQL connections per replica, from 1 to 1024 (store calls beyond it wait).",
       &SetCount<&Config::postgres_pool_size>, &ShowCount<&Config::postgres_pool_size>, nullptr},
      {"postgres_connect_timeout", "--postgres-connect-timeout",
       "CACHECAR_POSTGRES_CONNECT_TIMEOUT", "postgres_connect_timeout", K::kDuration, "",
       "How long one connection attempt may take, 1s to 10m.",
       &SetDuration<&Config::postgres_connect_timeout>,
       &ShowDuration<&Config::postgres_connect_timeout>, nullptr},
      {"postgres_query_timeout", "--postgres-query-timeout", "CACHECAR_POSTGRES_QUERY_TIMEOUT",
       "postgres_query_timeout", K::kDuration, "",
       "Longest a statement may run when the request's deadline allows more (it is "
       "cancelled then); 10ms to 10m.",
       &SetDuration<&Config::postgres_query_timeout>,
       &ShowDuration<&Config::postgres_query_timeout>, nullptr},
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
}

template <typename Key>
const Option* FindOption(absl::string_view wanted, Key key) {
  for (const Option& option : Options()) {
    const absl::string_view have = option.*key;
    if (!have.empty() && have == wanted) return &option;
  }
  return nullptr;
}

size_t EditDistance(absl::string_view a, absl::string_view b) {
  std::vector<size_t> row(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    size_t diagonal = row[0];
    row[0] = i;
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t above = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diagonal + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diagonal = above;
    }
  }
  return row[b.size()];
}

}  // namespace

const std::vector<Option>& Options() {
  static const std::vector<Option>* const options = BuildOptions();
  return *options;
}

const Option* FindOptionByFlag(absl::string_view flag) { return FindOption(flag, &Option::flag); }
const Option* FindOptionByEnv(absl::string_view env) { return FindOption(env, &Option::env); }
const Option* FindOptionByYamlKey(absl::string_view key) {
  return FindOption(key, &Option::yaml_key);
}

absl::string_view ValuePlaceholder(const Option& option) {
  if (!option.placeholder.empty()) return option.placeholder;
  switch (option.kind) {
    case ValueKind::kText:
      return "NAME";
    case ValueKind::kPath:
      return "PATH";
    case ValueKind::kAddressList:
      return "ADDR";
    case ValueKind::kBytes:
      return "SIZE";
    case ValueKind::kCount:
      return "N";
    case ValueKind::kDuration:
      return "DURATION";
    case ValueKind::kNamespaceList:
      return "NAME[:TTL[:SHARE]]";
    case ValueKind::kBool:
      return "true|false";
    case ValueKind::kSecret:
      return "SECRET";
    case ValueKind::kPropertyList:
      return "NAME=VALUE";
  }
  return "VALUE";
}

absl::string_view ExpectedForm(ValueKind kind) {
  switch (kind) {
    case ValueKind::kText:
      return "a string";
    case ValueKind::kPath:
      return "a file path";
    case ValueKind::kAddressList:
      return "an address or a list of addresses (host:port, unix:///path)";
    case ValueKind::kBytes:
      return kBytesForm;
    case ValueKind::kCount:
      return kCountForm;
    case ValueKind::kDuration:
      return kDurationForm;
    case ValueKind::kNamespaceList:
      return "a list of namespaces (maps with name, ttl, negative_ttl, max_bytes_share, "
             "table, key_column, value_column, sync, replicated)";
    case ValueKind::kBool:
      return "true or false";
    case ValueKind::kSecret:
      return "a string";
    case ValueKind::kPropertyList:
      return "name=value pairs (a YAML map, a list, or comma-separated)";
  }
  return "a value";
}

std::string DidYouMean(absl::string_view word, const std::vector<absl::string_view>& candidates) {
  absl::string_view best;
  size_t best_distance = 3;  // more edits than this is not a typo
  for (absl::string_view candidate : candidates) {
    const size_t d = EditDistance(word, candidate);
    if (d < best_distance) {
      best = candidate;
      best_distance = d;
    }
  }
  if (best.empty()) return "";
  return absl::StrCat(" (did you mean ", best, "?)");
}

std::string FieldErrorText(absl::string_view field, absl::string_view source,
                           absl::string_view reason) {
  if (source.empty()) return absl::StrCat("config: ", field, ": ", reason);
  return absl::StrCat("config: ", field, " (from ", source, "): ", reason);
}

absl::Status FieldError(absl::string_view field, absl::string_view source,
                        absl::string_view reason) {
  return absl::InvalidArgumentError(FieldErrorText(field, source, reason));
}

const char kExampleYaml[] = R"(# /etc/cachecar/cachecar.yaml
listen:
  - 127.0.0.1:50051
  - unix:///run/cachecar/cachecar.sock
probe_listen: 0.0.0.0:50052   # kubelet gRPC probes
metrics_listen: 0.0.0.0:9464  # Prometheus
max_bytes: 512MiB
shards: 32
eviction: s3fifo
local_read_path: /run/cachecar-local/cache  # docs/LOCAL_READS.md
max_key_bytes: 1KiB
max_value_bytes: 1MiB
max_message_bytes: 4MiB
max_batch_keys: 1000
polling_threads: 1
workers: 8
worker_queue: 10000
max_watchers: 64
watch_queue_bytes: 1MiB
max_connections: 1024
store: postgres
# The DSN, or postgres_dsn_file: /etc/cachecar/secret/dsn (a mounted Secret)
postgres_dsn: host=db.internal dbname=app user=cachecar sslmode=require
postgres_pool_size: 8
postgres_connect_timeout: 5s
postgres_query_timeout: 5s
postgres_prepared_statements: true  # false behind PgBouncer
postgres_table: cachecar_entries
postgres_outbox_inline_max: 1KiB
postgres_tombstone_retention: 24h
migrate: false
kafka_brokers: kafka-0.kafka:9092,kafka-1.kafka:9092
sync_topic: cachecar-sync
replica_id: ""          # empty: hostname-pid (the pod name in Kubernetes)
max_staleness: 2s
stale_reads: bypass
sync_inline_max: 1KiB
outbox_relay_delay: 500ms
min_version_wait: 1s    # a min_version read waits this long for the event
outbox_relays: 2        # replicas relaying the outbox at a time
kafka_properties:
  security.protocol: SSL
shutdown_grace: 15s
warm_start_file: /var/cache/cachecar/warm  # on an emptyDir
warm_start_rate: 50000  # keys per second reloaded at most
log_level: info
log_format: json
namespaces:
  - name: sessions
    ttl: 30m
    negative_ttl: 5s       # "absent" answers are cached for 5 s only
    max_bytes_share: 0.25
  - name: users
    ttl: 10m
    table: app.users       # an existing table: cachecar migrate adds
    key_column: id         # a cachecar_version column and triggers
    value_column: profile
    sync: invalidate       # replicas drop changed keys (no values on Kafka)
  - name: countries
    replicated: true       # every replica holds the whole (small) table
  - name: default   # requests that name no namespace
)";

}  // namespace cachecar::config
