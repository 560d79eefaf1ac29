// KafkaSync: the Sync interface over Apache Kafka (librdkafka 2.0), the
// rules of docs/DESIGN.md "Kafka rules learned the hard way":
//   - The consumer never joins a group: it lists the topic's partitions,
//     looks up each one's high watermark and assign()s all of them there
//     (the cache starts empty, so older events have nothing to update).
//     Every `partition_check_interval` it looks for new partitions and reads
//     them from the beginning. An offset past retention means lost events:
//     the sink is told (it flushes), the partition restarts at its end.
//   - A probe thread asks for one partition's high watermark every
//     `probe_interval` to tell whether the broker answers; the lag comes
//     from the offsets the consumer's fetches bring back. The staleness
//     bound does not rest on either: relays' watermarks (WATERMARK
//     messages) reach the sink through OnWatermark.
//   - The producer is idempotent with acks=all, tuned for latency, and is
//     recreated after a fatal error.
// Any librdkafka property can be set through `properties` (TLS, SASL, ...);
// they apply to the producer and the consumer alike and override ours.
#ifndef CACHECAR_SYNC_KAFKA_KAFKA_SYNC_H_
#define CACHECAR_SYNC_KAFKA_KAFKA_SYNC_H_

#include <map>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "sync/sync.h"

namespace cachecar::sync {

struct KafkaOptions {
  std::string brokers;  // bootstrap.servers
  std::string topic = "cachecar-sync";
  std::string replica_id;                         // client.id and the events' origin
  std::map<std::string, std::string> properties;  // librdkafka overrides
  absl::Duration probe_interval = absl::Milliseconds(250);
  absl::Duration partition_check_interval = absl::Seconds(2);
  // How long a publish may wait for the broker before it fails
  // (message.timeout.ms unless `properties` sets it).
  absl::Duration publish_timeout = absl::Seconds(10);
};

// The librdkafka settings cachecar uses before `properties` override them
// (documented in --help and the README; tests check them).
std::map<std::string, std::string> DefaultProducerProperties(const KafkaOptions& options);
std::map<std::string, std::string> DefaultConsumerProperties(const KafkaOptions& options);

// Checks `properties` against librdkafka (unknown names, bad values) without
// connecting; the error names the property.
absl::Status ValidateKafkaProperties(const std::map<std::string, std::string>& properties);

class KafkaSync final : public Sync {
 public:
  // Builds the clients (no connection is made yet: Start connects, and a
  // broker that is down is retried, not fatal). `clock` is the adapter's
  // time source; it must outlive the adapter's threads (see
  // watermark_probe.h: the probe thread may outlive the KafkaSync).
  static absl::StatusOr<std::unique_ptr<KafkaSync>> Create(KafkaOptions options,
                                                           const Clock& clock = Clock::Real());
  ~KafkaSync() override;

  void Start(EventSink& sink) override;
  void Stop(absl::Duration timeout) override;
  void Publish(const Event& event, Delivered delivered) override;
  void PublishWatermark(Watermark watermark, Delivered delivered) override;
  bool positioned() const override;
  absl::Time topic_fresh_as_of() const override;
  SyncStats Stats() const override;
  absl::string_view replica_id() const override;

  struct Impl;

 private:
  explicit KafkaSync(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_KAFKA_KAFKA_SYNC_H_
