// See kafka_sync.h. The wiring of the adapter's parts, each in its own unit:
// client_config (librdkafka settings), topic_partitions (partition
// discovery), publisher (the producer), topic_reader and topic_positioning
// (the consumer and where it reads from), watermark_probe (whether the
// broker answers). This file starts and stops their threads.
#include "sync/kafka/kafka_sync.h"

#include <atomic>
#include <thread>

#include "common/mutex.h"
#include "librdkafka/rdkafkacpp.h"
#include "spdlog/spdlog.h"
#include "sync/kafka/client_config.h"
#include "sync/kafka/publisher.h"
#include "sync/kafka/topic_reader.h"
#include "sync/kafka/watermark_probe.h"

namespace cachecar::sync {

struct KafkaSync::Impl {
  KafkaOptions options;
  std::shared_ptr<kafka::ProbeShared> shared;
  std::unique_ptr<kafka::Publisher> publisher;
  std::unique_ptr<kafka::TopicReader> reader;
  Notification stop;
  std::atomic<bool> stopped{false};
  std::thread consumer_thread, probe_thread, producer_thread;

  bool BrokerReachable() const { return shared->BrokerReachable(options.probe_interval); }
};

absl::StatusOr<std::unique_ptr<KafkaSync>> KafkaSync::Create(KafkaOptions options,
                                                             const Clock& clock) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("kafka_brokers is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->shared = std::make_shared<kafka::ProbeShared>(impl->options.topic, clock);
  impl->publisher = std::make_unique<kafka::Publisher>(impl->options, impl->shared->errors);
  if (absl::Status s = impl->publisher->Init(); !s.ok()) return s;
  impl->reader = std::make_unique<kafka::TopicReader>(impl->options, impl->shared);
  if (absl::Status s = impl->reader->Init(); !s.ok()) return s;
  if (absl::Status s = impl->shared->MakeProber(impl->options); !s.ok()) return s;
  return std::unique_ptr<KafkaSync>(new KafkaSync(std::move(impl)));
}

KafkaSync::KafkaSync(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaSync::~KafkaSync() { Stop(absl::Seconds(5)); }

void KafkaSync::Start(EventSink& sink) {
  Impl* impl = impl_.get();
  impl_->producer_thread = std::thread([impl] { impl->publisher->Loop(impl->stop); });
  impl_->consumer_thread = std::thread([impl, &sink] { impl->reader->Loop(sink, impl->stop); });
  impl_->probe_thread = std::thread(kafka::ProbeLoop, impl_->shared, impl_->options.probe_interval,
                                    kafka::kProbeTimeoutMs);
}

void KafkaSync::Stop(absl::Duration timeout) {
  if (impl_->stopped.exchange(true)) return;
  const Clock& clock = impl_->shared->clock;
  const absl::Time start = clock.Now();
  auto lap = [start, &clock](const char* step) {
    spdlog::debug("sync: stop: {} done after {}", step,
                  absl::FormatDuration(absl::Trunc(clock.Now() - start, absl::Milliseconds(1))));
  };
  // With the broker away, waiting helps nobody: what is unacknowledged
  // stays in the outbox for the relays (and a probe is likely stuck).
  const bool reachable = impl_->BrokerReachable();
  std::shared_ptr<RdKafka::Producer> producer = impl_->publisher->Current();
  producer->flush(reachable ? kafka::Millis(timeout) : 0);
  lap("flush");
  impl_->stop.Notify();
  impl_->shared->stop.Notify();
  for (std::thread* t : {&impl_->producer_thread, &impl_->consumer_thread}) {
    if (t->joinable()) t->join();
  }
  lap("threads");
  if (impl_->probe_thread.joinable()) {
    const absl::Duration probe_wait =
        reachable ? absl::Milliseconds(kafka::kProbeTimeoutMs + 500) : absl::Milliseconds(100);
    if (impl_->shared->probe_exited.WaitForNotificationWithTimeout(probe_wait)) {
      impl_->probe_thread.join();
    } else {  // stuck in librdkafka (see watermark_probe.h); it ends on its own
      impl_->probe_thread.detach();
    }
  }
  lap("probe");
  kafka::Publisher::Retire(producer);  // what is still unacknowledged fails now
  lap("purge");
  impl_->reader->Close();
  lap("consumer close");
}

void KafkaSync::Publish(const Event& event, Delivered delivered) {
  impl_->publisher->Publish(event, std::move(delivered));
}

void KafkaSync::PublishWatermark(Watermark watermark, Delivered delivered) {
  impl_->publisher->PublishWatermark(watermark, std::move(delivered));
}

bool KafkaSync::positioned() const { return impl_->reader->positioned(); }

absl::Time KafkaSync::topic_fresh_as_of() const { return impl_->shared->tracker.fresh_as_of(); }

SyncStats KafkaSync::Stats() const {
  SyncStats s;
  s.positioned = impl_->reader->positioned();
  s.broker_reachable = impl_->BrokerReachable();
  s.topic_fresh_as_of = impl_->shared->tracker.fresh_as_of();
  s.watermarks_published = impl_->publisher->watermarks_published();
  s.partitions = impl_->shared->tracker.Partitions();
  s.events_received = impl_->reader->events_received();
  s.events_undecodable = impl_->reader->events_undecodable();
  s.offset_resets = impl_->reader->offset_resets();
  s.published = impl_->publisher->published();
  s.publish_failures = impl_->publisher->publish_failures();
  s.producer_restarts = impl_->publisher->producer_restarts();
  s.last_error = impl_->shared->errors.Get();
  return s;
}

absl::string_view KafkaSync::replica_id() const { return impl_->options.replica_id; }

}  // namespace cachecar::sync
