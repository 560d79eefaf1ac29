// See topic_reader.h. Reading: the consumer thread's loop and what it does
// with each message.
#include "sync/kafka/topic_reader.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "sync/event.h"

namespace cachecar::sync::kafka {

absl::Status TopicReader::Init() {
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
      MakeConf(DefaultConsumerProperties(options_), options_.properties, &events_);
  if (!conf.ok()) return conf.status();
  std::string err;
  consumer_.reset(RdKafka::KafkaConsumer::create(conf->get(), err));
  if (consumer_ == nullptr)
    return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", err));
  return absl::OkStatus();
}

void TopicReader::UpdateHighWatermarks() {
  last_lag_update_ = Now();
  for (int32_t id : assigned_) {
    int64_t low = -1, high = -1;
    if (consumer_->get_watermark_offsets(options_.topic, id, &low, &high) ==
            RdKafka::ERR_NO_ERROR &&
        high >= 0) {
      tracker().OnProbe(id, high, absl::InfinitePast());
    }
  }
}

void TopicReader::Handle(RdKafka::Message& m) {
  switch (m.err()) {
    case RdKafka::ERR_NO_ERROR: {
      absl::StatusOr<Message> message =
          DecodeMessage(absl::string_view(static_cast<const char*>(m.payload()), m.len()));
      if (message.ok() && message->is_watermark) {
        watermarks_received_.fetch_add(1);
        sink_->OnWatermark(m.partition(), message->watermark);
        // A relay knows partitions we do not read yet: look now.
        if (message->watermark.partitions > static_cast<int32_t>(assigned_.size())) {
          last_partition_check_ = absl::InfinitePast();
        }
      } else if (message.ok()) {
        events_received_.fetch_add(1);
        sink_->OnEvent(message->event);
      } else {
        events_received_.fetch_add(1);
        const absl::Status& event = message.status();
        events_undecodable_.fetch_add(1);
        spdlog::warn(
            "sync: skipping undecodable message at partition {} offset {} of topic "
            "{}: {}",
            m.partition(), m.offset(), options_.topic, std::string(event.message()));
      }
      tracker().OnPosition(m.partition(), m.offset() + 1);
      break;
    }
    case RdKafka::ERR__PARTITION_EOF:
      tracker().OnPosition(m.partition(), m.offset());
      break;
    case RdKafka::ERR__TIMED_OUT:
      break;
    case RdKafka::ERR__AUTO_OFFSET_RESET:
    case RdKafka::ERR_OFFSET_OUT_OF_RANGE:
      OnOffsetReset(m.partition(), m.errstr());
      break;
    default:
      SetError(absl::StrCat("consume: ", m.errstr()));
      spdlog::debug("sync: consume error: {}", m.errstr());
      break;
  }
}

void TopicReader::Loop(EventSink& sink, Notification& stop) {
  sink_ = &sink;
  while (!stop.HasBeenNotified()) {
    if (!positioned_.load()) {
      if (!PositionAll()) {
        spdlog::debug("sync: not positioned yet: {}", shared_->errors.Get());
        stop.WaitForNotificationWithTimeout(absl::Milliseconds(500));
      }
      continue;
    }
    if (Now() - last_partition_check_ >= options_.partition_check_interval) {
      CheckPartitions();
    }
    if (Now() - last_lag_update_ >= absl::Milliseconds(500)) UpdateHighWatermarks();
    std::unique_ptr<RdKafka::Message> m(consumer_->consume(100));
    if (m != nullptr) Handle(*m);
  }
}

}  // namespace cachecar::sync::kafka
