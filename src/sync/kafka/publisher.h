// Publisher: the producer side of the Kafka adapter. Publishes events (keyed
// by namespace and key) and watermarks (one message to every partition),
// reports deliveries, and recreates the idempotent producer after a fatal
// error. Internal to src/sync/kafka/.
//
// Thread-safety: Publish, PublishWatermark, Current and the counters are
// safe from any thread; Loop runs on the one producer thread; delivery
// callbacks run on whichever thread polls (the producer thread, or Retire's
// caller).
#ifndef CACHECAR_SYNC_KAFKA_PUBLISHER_H_
#define CACHECAR_SYNC_KAFKA_PUBLISHER_H_

#include <atomic>
#include <cstdint>
#include <memory>

#include "absl/status/statusor.h"
#include "common/mutex.h"
#include "librdkafka/rdkafkacpp.h"
#include "sync/kafka/client_config.h"
#include "sync/kafka/kafka_sync.h"
#include "sync/kafka/last_error.h"
#include "sync/sync.h"

namespace cachecar::sync::kafka {

class Publisher {
 public:
  // `options` and `errors` must outlive the Publisher. Call Init before use.
  Publisher(const KafkaOptions& options, LastError& errors) : options_(options), errors_(errors) {}
  Publisher(const Publisher&) = delete;
  Publisher& operator=(const Publisher&) = delete;

  // Builds the producer (no connection is made yet).
  absl::Status Init();
  // The producer thread: connects, polls for delivery reports and recreates
  // the producer after a fatal error, until `stop`.
  void Loop(Notification& stop);

  void Publish(const Event& event, Sync::Delivered delivered);
  void PublishWatermark(Watermark watermark, Sync::Delivered delivered);

  // The producer in use now.
  std::shared_ptr<RdKafka::Producer> Current();
  // Fails every message `old` still holds, through its reports.
  static void Retire(const std::shared_ptr<RdKafka::Producer>& old);

  uint64_t published() const { return published_.load(); }
  uint64_t publish_failures() const { return publish_failures_.load(); }
  uint64_t producer_restarts() const { return producer_restarts_.load(); }
  uint64_t watermarks_published() const { return watermarks_published_.load(); }

 private:
  // Delivery reports: the message's opaque is a heap-allocated Pending.
  class Reporter final : public RdKafka::DeliveryReportCb {
   public:
    explicit Reporter(Publisher& publisher) : publisher_(publisher) {}
    void dr_cb(RdKafka::Message& message) override;

   private:
    Publisher& publisher_;
  };

  absl::StatusOr<std::shared_ptr<RdKafka::Producer>> MakeProducer();

  const KafkaOptions& options_;
  LastError& errors_;
  EventLogger events_{"producer"};
  Reporter reporter_{*this};
  Mutex mu_;
  std::shared_ptr<RdKafka::Producer> producer_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> published_{0}, publish_failures_{0}, producer_restarts_{0};
  std::atomic<uint64_t> watermarks_published_{0};
};

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_PUBLISHER_H_
