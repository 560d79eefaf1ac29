// Validate: range and cross-field checks, run once after loading. Every
// problem is reported, one per line, so a bad deployment is fixed in one go.

#include <arpa/inet.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <set>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "cache/limits.h"
#include "common/logging.h"
#include "common/sql_identifier.h"
#include "config/config.h"
#include "config/options.h"
#include "config/values.h"

namespace cachecar::config {
namespace {

constexpr uint64_t kKiB = 1ull << 10;
constexpr uint64_t kMiB = 1ull << 20;
constexpr uint64_t kMessageOverhead = 4096;  // framing, fields around a value
constexpr size_t kMaxUnixPath = 107;         // sun_path is 108 bytes with NUL
constexpr double kShareSlack = 1e-9;         // 0.1 + 0.2 + 0.7 is not 1.0

class Problems {
 public:
  explicit Problems(const Config& config) : config_(config) {}

  void Add(absl::string_view field, absl::string_view reason) {
    const auto it = config_.sources.find(std::string(field));
    lines_.push_back(FieldErrorText(field, it == config_.sources.end() ? "" : it->second, reason));
  }

  absl::Status ToStatus() const {
    if (lines_.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrJoin(lines_, "\n"));
  }

 private:
  const Config& config_;
  std::vector<std::string> lines_;
};

// Empty if `address` is one gRPC can listen on, else why not.
std::string CheckAddress(absl::string_view address) {
  if (absl::StartsWith(address, "unix:")) {
    absl::string_view path = address.substr(5);
    if (absl::StartsWith(path, "//")) path.remove_prefix(2);
    if (!absl::StartsWith(path, "/") || path.size() < 2) {
      return "a unix socket needs an absolute path: unix:///abs/path";
    }
    if (path.size() > kMaxUnixPath) {
      return absl::StrCat("unix socket path is ", path.size(), " bytes; the limit is ",
                          kMaxUnixPath);
    }
    return "";
  }
  if (absl::StrContains(address, "/") || absl::StrContains(address, " ")) {
    return "must be host:port, [v6]:port or unix:///abs/path";
  }
  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close == 1 || address.substr(close + 1, 1) != ":") {
      return "must be [v6]:port, e.g. [::1]:50051";
    }
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) {
      return "must be host:port, e.g. 127.0.0.1:50051";
    }
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
    if (absl::StrContains(host, ":")) {
      return "an IPv6 address needs brackets, e.g. [::1]:50051";
    }
    if (host.empty()) {
      return "needs a host; 0.0.0.0 or [::] listen on all interfaces";
    }
  }
  // "256.0.0.0" or "999.1.1.1" must be refused, never read as something
  // else (a listener once bound 0.0.0.0 for the first, issue #17).
  const bool looks_v4 = !host.empty() && std::all_of(host.begin(), host.end(), [](char c) {
    return absl::ascii_isdigit(c) || c == '.';
  });
  in_addr v4{};
  if (looks_v4 && inet_pton(AF_INET, std::string(host).c_str(), &v4) != 1) {
    return absl::StrCat(Quote(host), " is not an IPv4 address (four numbers 0-255)");
  }
  in6_addr v6{};
  if (absl::StartsWith(address, "[") && inet_pton(AF_INET6, std::string(host).c_str(), &v6) != 1) {
    return absl::StrCat(Quote(host), " is not an IPv6 address");
  }
  uint32_t number = 0;
  const bool digits_only =
      !port.empty() && port.size() <= 5 &&
      std::all_of(port.begin(), port.end(), [](char c) { return absl::ascii_isdigit(c); });
  if (!digits_only || !absl::SimpleAtoi(port, &number) || number > 65535) {
    return absl::StrCat("port must be 0 to 65535, got ", Quote(port));
  }
  return "";
}

void CheckListen(const Config& c, Problems& problems) {
  if (c.listen.empty()) {
    problems.Add("listen", "must name at least one address");
  }
  for (const std::string& address : c.probe_listen) {
    const std::string reason = CheckAddress(address);
    if (!reason.empty()) problems.Add("probe_listen", absl::StrCat(Quote(address), ": ", reason));
    if (std::find(c.listen.begin(), c.listen.end(), address) != c.listen.end()) {
      problems.Add("probe_listen", absl::StrCat(Quote(address), " is also in listen"));
    }
  }
  if (!c.metrics_listen.empty()) {
    std::string reason = CheckAddress(c.metrics_listen);
    if (reason.empty() && absl::StartsWith(c.metrics_listen, "unix:")) {
      reason = "must be host:port (HTTP, not a unix socket)";
    }
    // The /metrics server takes numeric addresses only.
    const std::string host = c.metrics_listen.substr(0, c.metrics_listen.rfind(':'));
    in_addr v4{};
    if (reason.empty() && !absl::StartsWith(host, "[") &&
        inet_pton(AF_INET, host.c_str(), &v4) != 1) {
      reason = "the host must be a numeric address (127.0.0.1, 0.0.0.0, [::1])";
    }
    if (!reason.empty()) {
      problems.Add("metrics_listen", absl::StrCat(Quote(c.metrics_listen), ": ", reason));
    }
  }
  std::set<std::string> seen;
  for (const std::string& address : c.listen) {
    const std::string reason = CheckAddress(address);
    if (!reason.empty()) {
      problems.Add("listen", absl::StrCat(Quote(address), ": ", reason));
    } else if (!seen.insert(address).second) {
      problems.Add("listen", absl::StrCat(Quote(address), " is listed twice"));
    }
  }
}

void CheckRange(Problems& problems, absl::string_view field, uint64_t value, uint64_t low,
                uint64_t high, bool bytes) {
  if (value >= low && value <= high) return;
  const auto show = [bytes](uint64_t v) { return bytes ? FormatBytes(v) : absl::StrCat(v); };
  if (high == std::numeric_limits<uint64_t>::max()) {
    problems.Add(field, absl::StrCat("must be at least ", show(low), ", got ", show(value)));
  } else {
    problems.Add(
        field, absl::StrCat("must be from ", show(low), " to ", show(high), ", got ", show(value)));
  }
}

void CheckEngineAndLimits(const Config& c, Problems& problems) {
  constexpr uint64_t kNoLimit = std::numeric_limits<uint64_t>::max();
  // One shard's budget is bounded by what its arena can hold (cache/limits.h).
  constexpr uint64_t kMaxBytesPerShard = cache::kMaxBytesPerShard;
  if (c.shards >= 1 && c.max_bytes / c.shards > kMaxBytesPerShard) {
    problems.Add("max_bytes",
                 absl::StrCat("must be at most ", FormatBytes(kMaxBytesPerShard), " per shard (",
                              FormatBytes(kMaxBytesPerShard * c.shards), " with shards ", c.shards,
                              "), got ", FormatBytes(c.max_bytes),
                              ": lower max_bytes or raise shards (up to 1024)"));
  } else {
    CheckRange(problems, "max_bytes", c.max_bytes, kMiB, kNoLimit, true);
  }
  if (c.shards < 1 || c.shards > 1024 || (c.shards & (c.shards - 1)) != 0) {
    problems.Add("shards", absl::StrCat("must be a power of two from 1 to "
                                        "1024, got ",
                                        c.shards));
  }
  if (c.eviction != "s3fifo" && c.eviction != "lru") {
    problems.Add("eviction", absl::StrCat("must be s3fifo or lru, got ", Quote(c.eviction)));
  }
  CheckRange(problems, "max_key_bytes", c.max_key_bytes, 1, 64 * kKiB, true);
  CheckRange(problems, "max_value_bytes", c.max_value_bytes, 1, 64 * kMiB, true);
  const uint64_t needed = uint64_t{c.max_key_bytes} + c.max_value_bytes + kMessageOverhead;
  if (c.max_message_bytes < needed) {
    problems.Add("max_message_bytes", absl::StrCat("must be at least max_key_bytes + "
                                                   "max_value_bytes + 4096 = ",
                                                   needed, " so the largest Put fits, got ",
                                                   FormatBytes(c.max_message_bytes)));
  }
  // gRPC takes the message limit as an int.
  CheckRange(problems, "max_message_bytes", c.max_message_bytes, 0,
             std::numeric_limits<int32_t>::max(), true);
  CheckRange(problems, "max_batch_keys", c.max_batch_keys, 1, 100000, false);
  CheckRange(problems, "polling_threads", c.polling_threads, 1, 64, false);
  CheckRange(problems, "workers", c.workers, 1, 1024, false);
  CheckRange(problems, "worker_queue", c.worker_queue, 1, kNoLimit, false);
  CheckRange(problems, "max_watchers", c.max_watchers, 1, 100000, false);
  CheckRange(problems, "watch_queue_bytes", c.watch_queue_bytes, 4 * kKiB, 1ull << 30, true);
  CheckRange(problems, "max_connections", c.max_connections, 16, 1000000, false);
}

void CheckLocalRead(const Config& c, Problems& problems) {
  const std::string& p = c.local_read_path;
  if (p.empty()) return;
  // Its hit-report socket, p + ".hits", must fit a unix socket address.
  if (p[0] != '/' || p.back() == '/' || p.size() > 100 || absl::StrContains(p, '\0')) {
    problems.Add("local_read_path",
                 absl::StrCat("must be an absolute file path of at most 100 bytes (e.g. "
                              "/run/cachecar-local/cache), got ",
                              Quote(p)));
  }
}

void CheckWarmStart(const Config& c, Problems& problems) {
  const std::string& p = c.warm_start_file;
  if (!p.empty() &&
      (p[0] != '/' || p.back() == '/' || absl::StrContains(p, absl::string_view("\0", 1)))) {
    problems.Add("warm_start_file",
                 absl::StrCat("must be an absolute file path (e.g. /var/cache/cachecar/warm), got ",
                              Quote(p)));
  }
  CheckRange(problems, "warm_start_rate", c.warm_start_rate, 1, 10000000, false);
}

void CheckServing(const Config& c, Problems& problems) {
  if (c.store != "memory" && c.store != "postgres") {
    problems.Add("store", absl::StrCat("must be memory or postgres, got ", Quote(c.store)));
  }
  if (c.shutdown_grace < absl::ZeroDuration() || c.shutdown_grace > absl::Minutes(10)) {
    problems.Add("shutdown_grace",
                 absl::StrCat("must be from 0 to 10m, got ", FormatDurationText(c.shutdown_grace)));
  }
  if (!IsValidLogLevel(c.log_level)) {
    problems.Add("log_level", absl::StrCat("must be trace, debug, info, warning, error, "
                                           "critical or off, got ",
                                           Quote(c.log_level)));
  }
  if (c.log_format != "text" && c.log_format != "json") {
    problems.Add("log_format", absl::StrCat("must be text or json, got ", Quote(c.log_format)));
  }
}

void CheckPostgres(const Config& c, Problems& problems) {
  if (c.store == "postgres" && c.postgres_dsn.empty()) {
    problems.Add("postgres_dsn",
                 "store is postgres but no DSN is set: use --postgres-dsn, "
                 "CACHECAR_POSTGRES_DSN or postgres_dsn_file (e.g. "
                 "\"host=db dbname=app user=cachecar sslmode=require\")");
  }
  CheckRange(problems, "postgres_pool_size", c.postgres_pool_size, 1, 1024, false);
  auto check_duration = [&](absl::string_view field, absl::Duration d, absl::Duration low,
                            absl::Duration high) {
    if (d < low || d > high) {
      problems.Add(field, absl::StrCat("must be from ", FormatDurationText(low), " to ",
                                       FormatDurationText(high), ", got ", FormatDurationText(d)));
    }
  };
  check_duration("postgres_connect_timeout", c.postgres_connect_timeout, absl::Seconds(1),
                 absl::Minutes(10));
  check_duration("postgres_query_timeout", c.postgres_query_timeout, absl::Milliseconds(10),
                 absl::Minutes(10));
  check_duration("postgres_tombstone_retention", c.postgres_tombstone_retention, absl::Minutes(1),
                 absl::Hours(24 * 365));
  CheckRange(problems, "postgres_outbox_inline_max", c.postgres_outbox_inline_max, 0, kMiB, true);
  if (!IsSqlTableName(c.postgres_table)) {
    problems.Add("postgres_table", absl::StrCat(Quote(c.postgres_table),
                                                " is not a plain SQL name: ", kSqlIdentifierRule));
  }
}

void CheckSync(const Config& c, Problems& problems) {
  if (c.stale_reads != "bypass" && c.stale_reads != "serve") {
    problems.Add("stale_reads",
                 absl::StrCat("must be bypass or serve, got ", Quote(c.stale_reads)));
  }
  if (c.max_staleness < absl::Milliseconds(100) || c.max_staleness > absl::Hours(1)) {
    problems.Add("max_staleness", absl::StrCat("must be from 100ms to 1h, got ",
                                               FormatDurationText(c.max_staleness)));
  }
  CheckRange(problems, "outbox_relays", c.outbox_relays, 1, 16, false);
  CheckRange(problems, "audit_rate", c.audit_rate, 0, 100000, false);
  if (c.min_version_wait > absl::Minutes(1)) {
    problems.Add("min_version_wait",
                 absl::StrCat("must be at most 1m, got ", FormatDurationText(c.min_version_wait)));
  }
  if (c.outbox_relay_delay > absl::Minutes(1)) {
    problems.Add("outbox_relay_delay", absl::StrCat("must be at most 1m, got ",
                                                    FormatDurationText(c.outbox_relay_delay)));
  }
  CheckRange(problems, "sync_inline_max", c.sync_inline_max, 0, kMiB, true);
  if (c.kafka_brokers.empty()) return;
  if (c.store != "postgres") {
    problems.Add("kafka_brokers",
                 absl::StrCat("a sync topic needs store: postgres (store is ", Quote(c.store),
                              ": each memory store is private to its process, so there is "
                              "nothing to keep in sync)"));
  }
  const bool topic_ok = !c.sync_topic.empty() && c.sync_topic.size() <= 249 &&
                        std::all_of(c.sync_topic.begin(), c.sync_topic.end(), [](char ch) {
                          return absl::ascii_isalnum(ch) || ch == '_' || ch == '.' || ch == '-';
                        });
  if (!topic_ok) {
    problems.Add("sync_topic", absl::StrCat(Quote(c.sync_topic),
                                            " is not a Kafka topic name: 1 to 249 of "
                                            "[a-zA-Z0-9._-]"));
  }
}

bool IsValidNamespaceName(absl::string_view name) {
  return !name.empty() && name.size() <= 64 && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(c) || c == '_' || c == '.' || c == '-';
  });
}

// A namespace in an application table: all of table, key_column and
// value_column, plain SQL names, and store postgres.
void CheckNamespaceTable(const Config& c, const NamespaceConfig& ns, const std::string& who,
                         Problems& problems) {
  const int set = !ns.table.empty() + !ns.key_column.empty() + !ns.value_column.empty();
  if (set == 0) return;
  if (set != 3) {
    problems.Add("namespaces", absl::StrCat(who,
                                            "table, key_column and value_column go "
                                            "together: set all three or none"));
    return;
  }
  if (c.store != "postgres") {
    problems.Add("namespaces", absl::StrCat(who, "table is set but store is ", Quote(c.store),
                                            "; an application table needs store: postgres"));
  }
  if (!IsSqlTableName(ns.table) || !IsSqlIdentifier(ns.key_column) ||
      !IsSqlIdentifier(ns.value_column)) {
    problems.Add("namespaces", absl::StrCat(who,
                                            "table, key_column and value_column must "
                                            "be plain SQL names: ",
                                            kSqlIdentifierRule));
  }
  if (ns.key_column == ns.value_column) {
    problems.Add("namespaces", absl::StrCat(who, "key_column and value_column must differ"));
  }
}

void CheckNamespaces(const Config& c, Problems& problems) {
  std::set<std::string> seen;
  double share_sum = 0;
  for (const NamespaceConfig& ns : c.namespaces) {
    const std::string who = absl::StrCat("namespace ", Quote(ns.name), ": ");
    if (!IsValidNamespaceName(ns.name)) {
      problems.Add("namespaces", absl::StrCat(who, "a name is 1 to 64 of a-z A-Z 0-9 _ . -"));
    } else if (!seen.insert(ns.name).second) {
      problems.Add("namespaces", absl::StrCat(who, "declared twice"));
    }
    if (ns.ttl < absl::ZeroDuration() || ns.ttl == absl::InfiniteDuration()) {
      problems.Add("namespaces", absl::StrCat(who, "ttl must be 0 (no expiry) or more, got ",
                                              FormatDurationText(ns.ttl)));
    }
    if (ns.negative_ttl.has_value() &&
        (*ns.negative_ttl < absl::ZeroDuration() || *ns.negative_ttl == absl::InfiniteDuration())) {
      problems.Add("namespaces",
                   absl::StrCat(who, "negative_ttl must be 0 (no expiry) or more, got ",
                                FormatDurationText(*ns.negative_ttl)));
    }
    CheckNamespaceTable(c, ns, who, problems);
    if (ns.replicated && (ns.sync != "update" || ns.ttl != absl::ZeroDuration() ||
                          ns.negative_ttl.value_or(absl::ZeroDuration()) != absl::ZeroDuration())) {
      problems.Add("namespaces",
                   absl::StrCat(who,
                                "replicated: true needs sync: update and no ttl or negative_ttl "
                                "(every replica holds the whole table, kept current by the "
                                "values on the topic; entries must not expire)"));
    }
    if (ns.max_bytes_share != 0 && !(ns.max_bytes_share > 0 && ns.max_bytes_share <= 1)) {
      problems.Add("namespaces", absl::StrCat(who, "max_bytes_share must be in (0, 1], got ",
                                              ns.max_bytes_share));
    } else {
      share_sum += ns.max_bytes_share;
    }
  }
  if (share_sum > 1 + kShareSlack) {
    problems.Add("namespaces", absl::StrCat("the max_bytes_share values add up to ", share_sum,
                                            "; they may add up to 1 at most"));
  }
}

}  // namespace

absl::Status Validate(Config& config) {
  Problems problems(config);
  CheckListen(config, problems);
  CheckEngineAndLimits(config, problems);
  CheckLocalRead(config, problems);
  CheckWarmStart(config, problems);
  CheckServing(config, problems);
  CheckPostgres(config, problems);
  CheckSync(config, problems);
  CheckNamespaces(config, problems);
  // An empty namespace in a request means "default", so it always exists.
  const bool has_default =
      std::any_of(config.namespaces.begin(), config.namespaces.end(),
                  [](const NamespaceConfig& ns) { return ns.name == "default"; });
  if (!has_default) config.namespaces.push_back(NamespaceConfig{"default"});
  return problems.ToStatus();
}

}  // namespace cachecar::config
