// See publisher.h.
#include "sync/kafka/publisher.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "sync/event.h"
#include "sync/kafka/topic_partitions.h"

namespace cachecar::sync::kafka {
namespace {

// A message in flight: what to call when the broker answers, and whether
// it is an event (counted in published/publish_failures) or a watermark.
struct Pending {
  Sync::Delivered delivered;
  bool event = true;
};

}  // namespace

void Publisher::Reporter::dr_cb(RdKafka::Message& message) {
  std::unique_ptr<Pending> done(static_cast<Pending*>(message.msg_opaque()));
  const bool event = done == nullptr || done->event;
  if (message.err() == RdKafka::ERR_NO_ERROR) {
    if (event) publisher_.published_.fetch_add(1);
    if (done && done->delivered) done->delivered(absl::OkStatus());
  } else {
    if (event) publisher_.publish_failures_.fetch_add(1);
    publisher_.errors_.Set(absl::StrCat("publish failed: ", message.errstr()));
    if (done && done->delivered) {
      done->delivered(absl::UnavailableError(
          absl::StrCat("the sync topic did not acknowledge the message: ", message.errstr())));
    }
  }
}

absl::Status Publisher::Init() {
  absl::StatusOr<std::shared_ptr<RdKafka::Producer>> producer = MakeProducer();
  if (!producer.ok()) return producer.status();
  MutexLock lock(&mu_);
  producer_ = *std::move(producer);
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<RdKafka::Producer>> Publisher::MakeProducer() {
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
      MakeConf(DefaultProducerProperties(options_), options_.properties, &events_);
  if (!conf.ok()) return conf.status();
  std::string err;
  (*conf)->set("dr_cb", &reporter_, err);
  RdKafka::Producer* p = RdKafka::Producer::create(conf->get(), err);
  if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", err));
  return std::shared_ptr<RdKafka::Producer>(p);
}

std::shared_ptr<RdKafka::Producer> Publisher::Current() {
  MutexLock lock(&mu_);
  return producer_;
}

void Publisher::Retire(const std::shared_ptr<RdKafka::Producer>& old) {
  old->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
  old->poll(0);
  old->flush(1000);
}

void Publisher::Loop(Notification& stop) {
  // Connect (and get the idempotent producer id) now, not on the first
  // write: that first publish would otherwise take most of a second.
  FetchTopicMetadata(Current().get(), options_.topic, nullptr);
  while (!stop.HasBeenNotified()) {
    if (events_.TakeFatal()) {
      absl::StatusOr<std::shared_ptr<RdKafka::Producer>> fresh = MakeProducer();
      if (fresh.ok()) {
        std::shared_ptr<RdKafka::Producer> old;
        {
          MutexLock lock(&mu_);
          old = std::exchange(producer_, *fresh);
        }
        Retire(old);
        producer_restarts_.fetch_add(1);
        spdlog::warn("kafka producer: recreated after a fatal error");
      }
    }
    Current()->poll(100);
  }
}

void Publisher::Publish(const Event& event, Sync::Delivered delivered) {
  const std::string payload = EncodeEvent(event);
  const std::string key = MessageKey(event.ns, event.key);
  auto* opaque = new Pending{std::move(delivered), /*event=*/true};
  std::shared_ptr<RdKafka::Producer> producer = Current();
  const RdKafka::ErrorCode code = producer->produce(
      options_.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(payload.data()), payload.size(), key.data(), key.size(), 0, opaque);
  if (code != RdKafka::ERR_NO_ERROR) {
    std::unique_ptr<Pending> done(opaque);
    publish_failures_.fetch_add(1);
    if (done->delivered) {
      done->delivered(absl::UnavailableError(
          absl::StrCat("cannot queue the event for the sync topic: ", RdKafka::err2str(code))));
    }
  }
}

void Publisher::PublishWatermark(Watermark watermark, Sync::Delivered delivered) {
  std::shared_ptr<RdKafka::Producer> producer = Current();
  // Fresh metadata: every partition a writer may have produced to before
  // the snapshot must get the watermark (docs/DESIGN.md "Watermarks").
  absl::StatusOr<std::vector<int32_t>> ids =
      ListPartitions(producer.get(), options_.topic, options_.brokers);
  if (!ids.ok()) {
    if (delivered) delivered(ids.status());
    return;
  }
  watermark.partitions = static_cast<int32_t>(ids->size());
  const std::string payload = EncodeWatermark(watermark);
  struct Round {
    std::atomic<size_t> pending;
    Mutex mu;
    absl::Status first_error ABSL_GUARDED_BY(mu);
    Sync::Delivered delivered;
    Publisher* publisher;
  };
  auto round = std::make_shared<Round>();
  round->pending.store(ids->size());
  round->delivered = std::move(delivered);
  round->publisher = this;
  for (int32_t id : *ids) {
    auto* opaque = new Pending{[round](const absl::Status& status) {
                                 if (!status.ok()) {
                                   MutexLock lock(&round->mu);
                                   if (round->first_error.ok()) round->first_error = status;
                                 }
                                 if (round->pending.fetch_sub(1) != 1) return;
                                 absl::Status result;
                                 {
                                   MutexLock lock(&round->mu);
                                   result = round->first_error;
                                 }
                                 if (result.ok()) {
                                   round->publisher->watermarks_published_.fetch_add(1);
                                 }
                                 if (round->delivered) round->delivered(result);
                               },
                               /*event=*/false};
    const RdKafka::ErrorCode code =
        producer->produce(options_.topic, id, RdKafka::Producer::RK_MSG_COPY,
                          const_cast<char*>(payload.data()), payload.size(), nullptr, 0, 0, opaque);
    if (code != RdKafka::ERR_NO_ERROR) {
      std::unique_ptr<Pending> done(opaque);
      done->delivered(absl::UnavailableError(absl::StrCat("cannot queue a watermark for partition ",
                                                          id, ": ", RdKafka::err2str(code))));
    }
  }
}

}  // namespace cachecar::sync::kafka
