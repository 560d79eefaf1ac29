// Partition discovery for the Kafka adapter: a topic's metadata and its
// partition ids, asked through any librdkafka handle (which also refreshes
// that handle's own view of the topic). Internal to src/sync/kafka/.
//
// Thread-safety: as the handle's metadata() (safe from any thread).
#ifndef CACHECAR_SYNC_KAFKA_TOPIC_PARTITIONS_H_
#define CACHECAR_SYNC_KAFKA_TOPIC_PARTITIONS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "librdkafka/rdkafkacpp.h"

namespace cachecar::sync::kafka {

// Asks for `topic`'s metadata through `handle`, which also refreshes the
// handle's own view of the topic (its partitions, their leaders). `out` may
// be null.
RdKafka::ErrorCode FetchTopicMetadata(RdKafka::Handle* handle, const std::string& topic,
                                      std::unique_ptr<RdKafka::Metadata>* out);

// `topic`'s partition ids, sorted, or an error saying why not (`brokers`
// only names the cluster in it).
absl::StatusOr<std::vector<int32_t>> ListPartitions(RdKafka::Handle* handle,
                                                    const std::string& topic,
                                                    const std::string& brokers);

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_TOPIC_PARTITIONS_H_
