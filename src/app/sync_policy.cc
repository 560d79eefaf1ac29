// See sync_policy.h.
#include "app/sync_policy.h"

#include <unistd.h>

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cachecar::app {

std::string DefaultReplicaId() {
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "cachecar", "-", getpid());
}

std::string ReplicaId(const config::Config& config) {
  return config.replica_id.empty() ? DefaultReplicaId() : config.replica_id;
}

std::map<std::string, std::string> KafkaPropertyMap(const config::Config& config) {
  std::map<std::string, std::string> out;
  for (const std::string& item : config.kafka_properties) {
    const size_t eq = item.find('=');
    out[item.substr(0, eq)] = item.substr(eq + 1);
  }
  return out;
}

sync::KafkaOptions KafkaOptionsFrom(const config::Config& config, const std::string& replica_id) {
  sync::KafkaOptions kafka;
  kafka.brokers = config.kafka_brokers;
  kafka.topic = config.sync_topic;
  kafka.replica_id = replica_id;
  kafka.properties = KafkaPropertyMap(config);
  // Only tells whether the broker answers (the bound rests on watermarks).
  kafka.probe_interval = absl::Seconds(1);
  // A relay's watermark that names more partitions makes the consumer look
  // at once (the bound waits for it); this periodic look is only a backstop,
  // so it can be rare: a metadata request per replica per 30 s.
  kafka.partition_check_interval = absl::Seconds(30);
  return kafka;
}

std::string RelayHolderId(const std::string& replica_id, uint32_t random) {
  return absl::StrCat(replica_id, "/", absl::Hex(random, absl::kZeroPad8));
}

sync::RelayOptions RelayOptionsFrom(const config::Config& config, const std::string& replica_id,
                                    const std::string& holder) {
  sync::RelayOptions relay;
  relay.min_age = config.outbox_relay_delay;
  relay.origin = absl::StrCat("relay/", replica_id);
  relay.holder = holder;
  relay.leases = static_cast<int>(config.outbox_relays);
  // Watermarks often enough that the replicas' staleness stays a small
  // part of the bound; the lease outlives a few of them.
  relay.watermark_interval =
      std::clamp(config.max_staleness / 10, absl::Milliseconds(50), absl::Seconds(1));
  relay.takeover_after = std::max(absl::Seconds(1), relay.watermark_interval * 3);
  relay.lease_ttl = std::max(absl::Milliseconds(1500), relay.watermark_interval * 4);
  return relay;
}

}  // namespace cachecar::app
