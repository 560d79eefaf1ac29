// TopicReader: the consumer side of the Kafka adapter. It never joins a
// group: it positions every partition at its high watermark and assign()s
// them (topic_positioning.cc), reads new partitions from the beginning,
// restarts a partition whose position retention took, and hands what it
// reads to the EventSink (topic_reader.cc). Internal to src/sync/kafka/.
//
// Thread-safety: Loop runs on the one consumer thread, which alone touches
// the consumer state; positioned() and the counters are safe from any
// thread; Init before the thread starts, Close after it has ended.
#ifndef CACHECAR_SYNC_KAFKA_TOPIC_READER_H_
#define CACHECAR_SYNC_KAFKA_TOPIC_READER_H_

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/mutex.h"
#include "librdkafka/rdkafkacpp.h"
#include "sync/kafka/client_config.h"
#include "sync/kafka/kafka_sync.h"
#include "sync/kafka/watermark_probe.h"
#include "sync/sync.h"

namespace cachecar::sync::kafka {

class TopicReader {
 public:
  // `options` must outlive the reader; `shared` holds the freshness tracker,
  // the watermark client and the last error.
  TopicReader(const KafkaOptions& options, std::shared_ptr<ProbeShared> shared)
      : options_(options), shared_(std::move(shared)) {}

  // Builds the consumer (no connection is made yet).
  absl::Status Init();
  // The consumer thread: positions, reads and hands events to `sink` until
  // `stop`.
  void Loop(EventSink& sink, Notification& stop);
  // Closes the consumer (after Loop has returned).
  void Close() { consumer_->close(); }

  bool positioned() const { return positioned_.load(); }
  uint64_t events_received() const { return events_received_.load(); }
  uint64_t events_undecodable() const { return events_undecodable_.load(); }
  uint64_t offset_resets() const { return offset_resets_.load(); }
  uint64_t watermarks_received() const { return watermarks_received_.load(); }

 private:
  FreshnessTracker& tracker() { return shared_->tracker; }
  absl::Time Now() const { return shared_->clock.Now(); }
  void SetError(std::string error) { shared_->errors.Set(std::move(error)); }

  // topic_reader.cc: reading.
  void Handle(RdKafka::Message& m);
  // The high watermarks the consumer's fetches brought back (no request).
  void UpdateHighWatermarks();

  // topic_positioning.cc: where each partition is read from.
  bool PositionAll();
  void CheckPartitions();
  void OnOffsetReset(int32_t partition, const std::string& why);
  bool Assign(const std::map<int32_t, int64_t>& fresh);

  const KafkaOptions& options_;
  const std::shared_ptr<ProbeShared> shared_;
  EventLogger events_{"consumer"};
  std::unique_ptr<RdKafka::KafkaConsumer> consumer_;
  EventSink* sink_ = nullptr;
  std::atomic<bool> positioned_{false};
  std::atomic<uint64_t> events_received_{0}, events_undecodable_{0}, offset_resets_{0};
  std::atomic<uint64_t> watermarks_received_{0};

  // Consumer thread state.
  std::set<int32_t> assigned_;
  absl::Time last_partition_check_ = absl::InfinitePast();
  absl::Time last_lag_update_ = absl::InfinitePast();
};

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_TOPIC_READER_H_
