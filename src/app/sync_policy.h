// The sync topic's policy for this process: the replica id, the Kafka
// client's probe and partition-check intervals, the relay's lease and
// watermark timings, all from the config. Pure functions (DefaultReplicaId
// reads the host name); safe from any thread.
#ifndef CACHECAR_APP_SYNC_POLICY_H_
#define CACHECAR_APP_SYNC_POLICY_H_

#include <cstdint>
#include <map>
#include <string>

#include "config/config.h"
#include "sync/kafka/kafka_sync.h"
#include "sync/outbox_relay.h"

namespace cachecar::app {

// hostname-pid, for replica_id when the config leaves it empty.
std::string DefaultReplicaId();

// config.replica_id, or DefaultReplicaId() when it is empty.
std::string ReplicaId(const config::Config& config);

// kafka_properties ("name=value" each) as a map; a later name wins.
std::map<std::string, std::string> KafkaPropertyMap(const config::Config& config);

// The Kafka client's options: brokers, topic, replica id, properties, and
// the probe (1 s) and partition-check (30 s) intervals.
sync::KafkaOptions KafkaOptionsFrom(const config::Config& config, const std::string& replica_id);

// "<replica id>/<random as 8 hex digits>": a relay's lease holder and
// watermark id, unique per process.
std::string RelayHolderId(const std::string& replica_id, uint32_t random);

// The outbox relay's options (all but relays_seen, which the wiring sets):
// min_age, origin "relay/<replica id>", holder, leases, and watermark,
// takeover and lease timings scaled to max_staleness.
sync::RelayOptions RelayOptionsFrom(const config::Config& config, const std::string& replica_id,
                                    const std::string& holder);

}  // namespace cachecar::app

#endif  // CACHECAR_APP_SYNC_POLICY_H_
