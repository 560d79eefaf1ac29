// See kafka_sync.h.
#include "sync/kafka/kafka_sync.h"

#include <atomic>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/mutex.h"
#include "librdkafka/rdkafkacpp.h"
#include "spdlog/spdlog.h"
#include "sync/freshness.h"

namespace cachecar::sync {
namespace {

constexpr int kMetadataTimeoutMs = 2000;

int Millis(absl::Duration d) { return static_cast<int>(absl::ToInt64Milliseconds(d)); }

absl::Status ApplyProperties(RdKafka::Conf& conf, const std::map<std::string, std::string>& props) {
  std::string err;
  for (const auto& [name, value] : props) {
    if (conf.set(name, value, err) != RdKafka::Conf::CONF_OK) {
      return absl::InvalidArgumentError(
          absl::StrCat("kafka property ", name, "=", value, ": ", err));
    }
  }
  return absl::OkStatus();
}

std::map<std::string, std::string> Merge(std::map<std::string, std::string> base,
                                         const std::map<std::string, std::string>& overrides) {
  for (const auto& [k, v] : overrides) base[k] = v;
  return base;
}

// Asks for `topic`'s metadata through `handle`, which also refreshes the
// handle's own view of the topic (its partitions, their leaders).
RdKafka::ErrorCode FetchTopicMetadata(RdKafka::Handle* handle, const std::string& topic,
                                      std::unique_ptr<RdKafka::Metadata>* out) {
  std::string err;
  std::unique_ptr<RdKafka::Topic> t(RdKafka::Topic::create(handle, topic, nullptr, err));
  if (t == nullptr) return RdKafka::ERR__INVALID_ARG;
  RdKafka::Metadata* raw = nullptr;
  const RdKafka::ErrorCode code = handle->metadata(false, t.get(), &raw, kMetadataTimeoutMs);
  std::unique_ptr<RdKafka::Metadata> md(raw);
  if (out != nullptr) *out = std::move(md);
  return code;
}

// librdkafka's logs and errors into spdlog; flags fatal producer errors.
class EventLogger final : public RdKafka::EventCb {
 public:
  explicit EventLogger(std::string who) : who_(std::move(who)) {}
  void event_cb(RdKafka::Event& event) override {
    switch (event.type()) {
      case RdKafka::Event::EVENT_ERROR:
        if (event.fatal()) {
          fatal_.store(true);
          spdlog::error("kafka {}: fatal error: {}", who_, event.str());
        } else {
          // Broker down/up is reported through readiness; keep these quiet.
          spdlog::debug("kafka {}: {}", who_, event.str());
        }
        break;
      case RdKafka::Event::EVENT_LOG:
        if (event.severity() <= RdKafka::Event::EVENT_SEVERITY_WARNING) {
          spdlog::warn("kafka {}: {} {}", who_, event.fac(), event.str());
        } else {
          spdlog::debug("kafka {}: {} {}", who_, event.fac(), event.str());
        }
        break;
      default:
        break;
    }
  }
  bool TakeFatal() { return fatal_.exchange(false); }

 private:
  const std::string who_;
  std::atomic<bool> fatal_{false};
};

// A client configuration: `defaults`, then `overrides` on top, and `events`
// as its log and error callback.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& defaults,
    const std::map<std::string, std::string>& overrides, EventLogger* events) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status s = ApplyProperties(*conf, Merge(defaults, overrides)); !s.ok()) return s;
  std::string err;
  conf->set("event_cb", events, err);
  return conf;
}

}  // namespace

std::map<std::string, std::string> DefaultProducerProperties(const KafkaOptions& o) {
  return {
      {"bootstrap.servers", o.brokers},
      {"client.id", absl::StrCat("cachecar-", o.replica_id)},
      {"enable.idempotence", "true"},
      {"acks", "all"},
      {"linger.ms", "1"},
      {"socket.nagle.disable", "true"},
      {"message.timeout.ms", absl::StrCat(absl::ToInt64Milliseconds(o.publish_timeout))},
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log.connection.close", "false"},
  };
}

std::map<std::string, std::string> DefaultConsumerProperties(const KafkaOptions& o) {
  return {
      {"bootstrap.servers", o.brokers},
      {"client.id", absl::StrCat("cachecar-", o.replica_id)},
      // Required by the consumer API; never used: no subscribe, no commit.
      {"group.id", absl::StrCat("cachecar-unused-", o.replica_id)},
      {"enable.auto.commit", "false"},
      {"enable.auto.offset.store", "false"},
      {"auto.offset.reset", "error"},
      {"enable.partition.eof", "true"},
      {"fetch.wait.max.ms", "10"},
      {"fetch.error.backoff.ms", "100"},
      {"socket.nagle.disable", "true"},
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log.connection.close", "false"},
  };
}

absl::Status ValidateKafkaProperties(const std::map<std::string, std::string>& properties) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  return ApplyProperties(*conf, properties);
}

// A message in flight: what to call when the broker answers, and whether
// it is an event (counted in published/publish_failures) or a watermark.
struct Pending {
  Sync::Delivered delivered;
  bool event = true;
};

// What the probe thread touches. librdkafka 2.0's query_watermark_offsets
// can block far past its timeout while the broker is down (it waits for the
// request's reply), so Stop() cannot promise to join that thread: it waits a
// little, then detaches it, and this state lives on (shared) until the call
// returns. Nothing here refers back to KafkaSync.
struct ProbeShared {
  explicit ProbeShared(std::string t) : topic(std::move(t)) {}
  const std::string topic;
  FreshnessTracker tracker;
  EventLogger events{"probe"};
  std::unique_ptr<RdKafka::Consumer> prober;  // watermark queries only
  std::atomic<bool> broker_reachable{false};  // the last probe round answered
  std::atomic<int64_t> last_probe_ok_us{0};   // when a round last answered
  Notification stop;
  Notification probe_exited;
  mutable Mutex error_mu;
  std::string last_error ABSL_GUARDED_BY(error_mu);

  void SetError(std::string error) {
    MutexLock lock(&error_mu);
    last_error = std::move(error);
  }
  std::string LastError() const {
    MutexLock lock(&error_mu);
    return last_error;
  }
  // Brings the watermark client's view of the topic up to date (it would
  // otherwise learn of new partitions only at its periodic refresh).
  void RefreshMetadata() { FetchTopicMetadata(prober.get(), topic, nullptr); }
  // A partition's low or high watermark; -1 (and the error recorded) if
  // the broker did not answer.
  int64_t Watermark(int32_t partition, bool high, int timeout_ms) {
    int64_t low = -1, hi = -1;
    const RdKafka::ErrorCode code =
        prober->query_watermark_offsets(topic, partition, &low, &hi, timeout_ms);
    if (code != RdKafka::ERR_NO_ERROR) {
      SetError(absl::StrCat("cannot read the offsets of partition ", partition, ": ",
                            RdKafka::err2str(code)));
      return -1;
    }
    return high ? hi : low;
  }
};

// The probe thread's loop; owns a share of `shared`, never touches KafkaSync.
// It only tells whether the broker answers (one partition's offsets per
// round: the staleness bound rests on watermarks, and the lag metric on
// the offsets the consumer's fetches bring back), so its load on the
// brokers is one small request per replica per `interval`.
void ProbeLoop(std::shared_ptr<ProbeShared> shared, absl::Duration interval, int timeout_ms) {
  size_t next = 0;
  while (!shared->stop.WaitForNotificationWithTimeout(interval)) {
    const std::vector<int32_t> ids = shared->tracker.PartitionIds();
    bool ok = !ids.empty();
    if (ok) {
      const int32_t id = ids[next++ % ids.size()];
      const absl::Time sent = absl::Now();
      const int64_t hi = shared->Watermark(id, /*high=*/true, timeout_ms);
      ok = hi >= 0 && !shared->stop.HasBeenNotified();
      if (ok) shared->tracker.OnProbe(id, hi, sent);
    }
    shared->broker_reachable.store(ok);
    if (ok) shared->last_probe_ok_us.store(absl::ToUnixMicros(absl::Now()));
  }
  shared->probe_exited.Notify();
}

struct KafkaSync::Impl {
  KafkaOptions options;
  std::shared_ptr<ProbeShared> shared;
  FreshnessTracker& tracker() { return shared->tracker; }
  EventLogger producer_events{"producer"};
  EventLogger consumer_events{"consumer"};

  // Delivery reports: the message's opaque is a heap-allocated Pending.
  class Reporter final : public RdKafka::DeliveryReportCb {
   public:
    explicit Reporter(Impl& impl) : impl_(impl) {}
    void dr_cb(RdKafka::Message& message) override {
      std::unique_ptr<Pending> done(static_cast<Pending*>(message.msg_opaque()));
      const bool event = done == nullptr || done->event;
      if (message.err() == RdKafka::ERR_NO_ERROR) {
        if (event) impl_.published.fetch_add(1);
        if (done && done->delivered) done->delivered(absl::OkStatus());
      } else {
        if (event) impl_.publish_failures.fetch_add(1);
        impl_.SetError(absl::StrCat("publish failed: ", message.errstr()));
        if (done && done->delivered) {
          done->delivered(absl::UnavailableError(
              absl::StrCat("the sync topic did not acknowledge the message: ", message.errstr())));
        }
      }
    }

   private:
    Impl& impl_;
  };
  Reporter reporter{*this};

  mutable Mutex producer_mu;
  std::shared_ptr<RdKafka::Producer> producer ABSL_GUARDED_BY(producer_mu);
  std::unique_ptr<RdKafka::KafkaConsumer> consumer;

  EventSink* sink = nullptr;
  std::atomic<bool> positioned{false};
  std::atomic<uint64_t> events_received{0}, events_undecodable{0}, offset_resets{0};
  std::atomic<uint64_t> published{0}, publish_failures{0}, producer_restarts{0};
  std::atomic<uint64_t> watermarks_received{0}, watermarks_published{0};
  Notification stop;
  std::atomic<bool> stopped{false};
  std::thread consumer_thread, probe_thread, producer_thread;

  // Consumer thread state.
  std::set<int32_t> assigned;
  absl::Time last_partition_check = absl::InfinitePast();
  absl::Time last_lag_update = absl::InfinitePast();

  // The high watermarks the consumer's fetches brought back (no request).
  void UpdateHighWatermarks() {
    last_lag_update = absl::Now();
    for (int32_t id : assigned) {
      int64_t low = -1, high = -1;
      if (consumer->get_watermark_offsets(options.topic, id, &low, &high) ==
              RdKafka::ERR_NO_ERROR &&
          high >= 0) {
        tracker().OnProbe(id, high, absl::InfinitePast());
      }
    }
  }

  void SetError(std::string error) { shared->SetError(std::move(error)); }
  std::string LastError() const { return shared->LastError(); }
  int ProbeTimeoutMs() const { return 1000; }

  // A probe stuck in librdkafka never reports failure: judge by the last
  // answer's age as well.
  bool BrokerReachable() const {
    const absl::Time last_ok = absl::FromUnixMicros(shared->last_probe_ok_us.load());
    return shared->broker_reachable.load() &&
           absl::Now() - last_ok <
               options.probe_interval + absl::Milliseconds(2 * ProbeTimeoutMs());
  }

  absl::StatusOr<std::shared_ptr<RdKafka::Producer>> MakeProducer() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
        MakeConf(DefaultProducerProperties(options), options.properties, &producer_events);
    if (!conf.ok()) return conf.status();
    std::string err;
    (*conf)->set("dr_cb", &reporter, err);
    RdKafka::Producer* p = RdKafka::Producer::create(conf->get(), err);
    if (p == nullptr) return absl::InvalidArgumentError(absl::StrCat("kafka producer: ", err));
    return std::shared_ptr<RdKafka::Producer>(p);
  }

  // The watermark client: a plain consumer (no group) of its own.
  absl::Status MakeProber() {
    const std::map<std::string, std::string> defaults = {
        {"bootstrap.servers", options.brokers},
        {"client.id", absl::StrCat("cachecar-probe-", options.replica_id)},
        {"topic.metadata.refresh.interval.ms", "10000"},
        {"reconnect.backoff.ms", "100"},
        {"reconnect.backoff.max.ms", "1000"},
        {"log.connection.close", "false"},
    };
    // options.properties too: TLS and SASL settings apply to it as well.
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
        MakeConf(defaults, options.properties, &shared->events);
    if (!conf.ok()) return conf.status();
    std::string err;
    shared->prober.reset(RdKafka::Consumer::create(conf->get(), err));
    if (shared->prober == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("kafka watermark client: ", err));
    }
    return absl::OkStatus();
  }

  absl::Status MakeConsumer() {
    absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
        MakeConf(DefaultConsumerProperties(options), options.properties, &consumer_events);
    if (!conf.ok()) return conf.status();
    std::string err;
    consumer.reset(RdKafka::KafkaConsumer::create(conf->get(), err));
    if (consumer == nullptr)
      return absl::InvalidArgumentError(absl::StrCat("kafka consumer: ", err));
    return absl::OkStatus();
  }

  std::shared_ptr<RdKafka::Producer> CurrentProducer() {
    MutexLock lock(&producer_mu);
    return producer;
  }

  // Fails every message the old producer still holds, through its reports.
  static void Retire(const std::shared_ptr<RdKafka::Producer>& old) {
    old->purge(RdKafka::Producer::PURGE_QUEUE | RdKafka::Producer::PURGE_INFLIGHT);
    old->poll(0);
    old->flush(1000);
  }

  void ProducerLoop() {
    // Connect (and get the idempotent producer id) now, not on the first
    // write: that first publish would otherwise take most of a second.
    FetchTopicMetadata(CurrentProducer().get(), options.topic, nullptr);
    while (!stop.HasBeenNotified()) {
      if (producer_events.TakeFatal()) {
        absl::StatusOr<std::shared_ptr<RdKafka::Producer>> fresh = MakeProducer();
        if (fresh.ok()) {
          std::shared_ptr<RdKafka::Producer> old;
          {
            MutexLock lock(&producer_mu);
            old = std::exchange(producer, *fresh);
          }
          Retire(old);
          producer_restarts.fetch_add(1);
          spdlog::warn("kafka producer: recreated after a fatal error");
        }
      }
      CurrentProducer()->poll(100);
    }
  }

  // The topic's partition ids, or an error saying why not.
  absl::StatusOr<std::vector<int32_t>> ListPartitions() {
    return ListPartitionsVia(consumer.get());
  }
  // The same through `handle` (which also refreshes its view of the topic).
  absl::StatusOr<std::vector<int32_t>> ListPartitionsVia(RdKafka::Handle* handle) {
    std::unique_ptr<RdKafka::Metadata> md;
    const RdKafka::ErrorCode code = FetchTopicMetadata(handle, options.topic, &md);
    if (code == RdKafka::ERR__INVALID_ARG) {
      return absl::InternalError(absl::StrCat("cannot make a topic handle for ", options.topic));
    }
    if (code != RdKafka::ERR_NO_ERROR) {
      return absl::UnavailableError(absl::StrCat("cannot reach the Kafka brokers (",
                                                 options.brokers, "): ", RdKafka::err2str(code)));
    }
    for (const RdKafka::TopicMetadata* t : *md->topics()) {
      if (t->topic() != options.topic) continue;
      if (t->err() != RdKafka::ERR_NO_ERROR) {
        return absl::FailedPreconditionError(
            absl::StrCat("sync topic ", options.topic, " is not usable on ", options.brokers, ": ",
                         RdKafka::err2str(t->err()),
                         t->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART
                             ? " (create it, e.g. kafka-topics.sh --create --topic " +
                                   options.topic + " --partitions 6)"
                             : ""));
      }
      std::vector<int32_t> ids;
      for (const RdKafka::PartitionMetadata* p : *t->partitions()) ids.push_back(p->id());
      std::sort(ids.begin(), ids.end());
      if (ids.empty()) break;
      return ids;
    }
    return absl::FailedPreconditionError(
        absl::StrCat("sync topic ", options.topic, " has no partitions on ", options.brokers));
  }

  // assign() the whole set: known partitions at the tracker's positions,
  // `fresh` ones at the offsets given.
  bool Assign(const std::map<int32_t, int64_t>& fresh) {
    std::vector<RdKafka::TopicPartition*> list;
    for (const PartitionState& p : tracker().Partitions()) {
      if (fresh.count(p.partition) == 0 && p.position >= 0) {
        list.push_back(RdKafka::TopicPartition::create(options.topic, p.partition, p.position));
      }
    }
    for (const auto& [id, offset] : fresh) {
      list.push_back(RdKafka::TopicPartition::create(options.topic, id, offset));
    }
    const RdKafka::ErrorCode code = consumer->assign(list);
    RdKafka::TopicPartition::destroy(list);
    if (code != RdKafka::ERR_NO_ERROR) {
      SetError(absl::StrCat("assign failed: ", RdKafka::err2str(code)));
      return false;
    }
    return true;
  }

  // A partition's low or high watermark; -1 on failure.
  int64_t Watermark(int32_t partition, bool high) {
    return shared->Watermark(partition, high, ProbeTimeoutMs());
  }

  // First positioning: every partition at its high watermark.
  bool PositionAll() {
    const absl::Time started = absl::Now();
    shared->RefreshMetadata();
    absl::StatusOr<std::vector<int32_t>> ids = ListPartitions();
    if (!ids.ok()) {
      SetError(std::string(ids.status().message()));
      return false;
    }
    std::map<int32_t, int64_t> start;
    for (int32_t id : *ids) {
      const int64_t hi = Watermark(id, true);
      if (hi < 0) return false;
      start[id] = hi;
    }
    for (const auto& [id, offset] : start) tracker().AddPartition(id, offset, started);
    if (!Assign(start)) return false;
    if (absl::Status s = sink->OnPositioned(); !s.ok()) {
      SetError(std::string(s.message()));
      return false;
    }
    assigned.clear();
    for (const auto& [id, offset] : start) assigned.insert(id);
    sink->OnPartitions(*ids, *ids);
    last_partition_check = started;
    positioned.store(true);
    std::vector<std::string> where;
    for (const auto& [id, offset] : start) where.push_back(absl::StrCat(id, "@", offset));
    spdlog::info("sync: positioned on topic {} ({} partitions: {}); ready", options.topic,
                 start.size(), absl::StrJoin(where, " "));
    return true;
  }

  // New partitions are read from the beginning: none of their events can
  // predate the last check that did not see them.
  void CheckPartitions() {
    const absl::Time started = absl::Now();
    absl::StatusOr<std::vector<int32_t>> ids = ListPartitions();
    if (!ids.ok()) return;  // the probe reports reachability
    std::map<int32_t, int64_t> fresh;
    bool refreshed = false;
    for (int32_t id : *ids) {
      if (assigned.count(id) > 0) continue;
      if (!refreshed) {
        shared->RefreshMetadata();
        refreshed = true;
      }
      const int64_t low = Watermark(id, false);
      if (low < 0) return;
      fresh[id] = low;
    }
    if (!fresh.empty()) {
      for (const auto& [id, offset] : fresh) {
        tracker().AddPartition(id, offset, last_partition_check);
      }
      if (!Assign(fresh)) return;
      std::vector<int32_t> restarted;
      for (const auto& [id, offset] : fresh) {
        assigned.insert(id);
        restarted.push_back(id);
        spdlog::info("sync: new partition {} of topic {}: reading it from offset {}", id,
                     options.topic, offset);
      }
      sink->OnPartitions(std::vector<int32_t>(assigned.begin(), assigned.end()), restarted);
    }
    last_partition_check = started;
  }

  // Retention passed our position in `partition`: events are lost.
  void OnOffsetReset(int32_t partition, const std::string& why) {
    offset_resets.fetch_add(1);
    spdlog::error(
        "sync: partition {} of topic {}: our position is gone ({}); events were lost, "
        "dropping every cached entry and restarting the partition at its end",
        partition, options.topic, why);
    sink->OnEventsLost(absl::StrCat("partition ", partition, ": ", why));
    const absl::Time started = absl::Now();
    const int64_t hi = Watermark(partition, true);
    if (hi < 0) return;  // the next message retries
    tracker().AddPartition(partition, hi, started);
    Assign({{partition, hi}});
    sink->OnPartitions(std::vector<int32_t>(assigned.begin(), assigned.end()), {partition});
    if (absl::Status s = sink->OnPositioned(); !s.ok()) {
      SetError(std::string(s.message()));
      positioned.store(false);  // position everything again
    }
  }

  void Handle(RdKafka::Message& m) {
    switch (m.err()) {
      case RdKafka::ERR_NO_ERROR: {
        absl::StatusOr<Message> message =
            DecodeMessage(absl::string_view(static_cast<const char*>(m.payload()), m.len()));
        if (message.ok() && message->is_watermark) {
          watermarks_received.fetch_add(1);
          sink->OnWatermark(m.partition(), message->watermark);
          // A relay knows partitions we do not read yet: look now.
          if (message->watermark.partitions > static_cast<int32_t>(assigned.size())) {
            last_partition_check = absl::InfinitePast();
          }
        } else if (message.ok()) {
          events_received.fetch_add(1);
          sink->OnEvent(message->event);
        } else {
          events_received.fetch_add(1);
          const absl::Status event = message.status();
          events_undecodable.fetch_add(1);
          spdlog::warn(
              "sync: skipping undecodable message at partition {} offset {} of topic "
              "{}: {}",
              m.partition(), m.offset(), options.topic, std::string(event.message()));
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

  void ConsumerLoop() {
    while (!stop.HasBeenNotified()) {
      if (!positioned.load()) {
        if (!PositionAll()) {
          spdlog::debug("sync: not positioned yet: {}", LastError());
          stop.WaitForNotificationWithTimeout(absl::Milliseconds(500));
        }
        continue;
      }
      if (absl::Now() - last_partition_check >= options.partition_check_interval) {
        CheckPartitions();
      }
      if (absl::Now() - last_lag_update >= absl::Milliseconds(500)) UpdateHighWatermarks();
      std::unique_ptr<RdKafka::Message> m(consumer->consume(100));
      if (m != nullptr) Handle(*m);
    }
  }
};

absl::StatusOr<std::unique_ptr<KafkaSync>> KafkaSync::Create(KafkaOptions options) {
  if (options.brokers.empty()) return absl::InvalidArgumentError("kafka_brokers is empty");
  auto impl = std::make_unique<Impl>();
  impl->options = std::move(options);
  impl->shared = std::make_shared<ProbeShared>(impl->options.topic);
  absl::StatusOr<std::shared_ptr<RdKafka::Producer>> producer = impl->MakeProducer();
  if (!producer.ok()) return producer.status();
  {
    MutexLock lock(&impl->producer_mu);
    impl->producer = *std::move(producer);
  }
  if (absl::Status s = impl->MakeConsumer(); !s.ok()) return s;
  if (absl::Status s = impl->MakeProber(); !s.ok()) return s;
  return std::unique_ptr<KafkaSync>(new KafkaSync(std::move(impl)));
}

KafkaSync::KafkaSync(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

KafkaSync::~KafkaSync() { Stop(absl::Seconds(5)); }

void KafkaSync::Start(EventSink& sink) {
  impl_->sink = &sink;
  Impl* impl = impl_.get();
  impl_->producer_thread = std::thread([impl] { impl->ProducerLoop(); });
  impl_->consumer_thread = std::thread([impl] { impl->ConsumerLoop(); });
  impl_->probe_thread =
      std::thread(ProbeLoop, impl_->shared, impl_->options.probe_interval, impl_->ProbeTimeoutMs());
}

void KafkaSync::Stop(absl::Duration timeout) {
  if (impl_->stopped.exchange(true)) return;
  const absl::Time start = absl::Now();
  auto lap = [start](const char* step) {
    spdlog::debug("sync: stop: {} done after {}", step,
                  absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))));
  };
  // With the broker away, waiting helps nobody: what is unacknowledged
  // stays in the outbox for the relays (and a probe is likely stuck).
  const bool reachable = impl_->BrokerReachable();
  std::shared_ptr<RdKafka::Producer> producer = impl_->CurrentProducer();
  producer->flush(reachable ? Millis(timeout) : 0);
  lap("flush");
  impl_->stop.Notify();
  impl_->shared->stop.Notify();
  for (std::thread* t : {&impl_->producer_thread, &impl_->consumer_thread}) {
    if (t->joinable()) t->join();
  }
  lap("threads");
  if (impl_->probe_thread.joinable()) {
    const absl::Duration probe_wait =
        reachable ? absl::Milliseconds(impl_->ProbeTimeoutMs() + 500) : absl::Milliseconds(100);
    if (impl_->shared->probe_exited.WaitForNotificationWithTimeout(probe_wait)) {
      impl_->probe_thread.join();
    } else {  // stuck in librdkafka (see ProbeShared); it ends on its own
      impl_->probe_thread.detach();
    }
  }
  lap("probe");
  Impl::Retire(producer);  // what is still unacknowledged fails now
  lap("purge");
  impl_->consumer->close();
  lap("consumer close");
}

void KafkaSync::Publish(const Event& event, Delivered delivered) {
  const std::string payload = EncodeEvent(event);
  const std::string key = MessageKey(event.ns, event.key);
  auto* opaque = new Pending{std::move(delivered), /*event=*/true};
  std::shared_ptr<RdKafka::Producer> producer = impl_->CurrentProducer();
  const RdKafka::ErrorCode code = producer->produce(
      impl_->options.topic, RdKafka::Topic::PARTITION_UA, RdKafka::Producer::RK_MSG_COPY,
      const_cast<char*>(payload.data()), payload.size(), key.data(), key.size(), 0, opaque);
  if (code != RdKafka::ERR_NO_ERROR) {
    std::unique_ptr<Pending> done(opaque);
    impl_->publish_failures.fetch_add(1);
    if (done->delivered) {
      done->delivered(absl::UnavailableError(
          absl::StrCat("cannot queue the event for the sync topic: ", RdKafka::err2str(code))));
    }
  }
}

void KafkaSync::PublishWatermark(Watermark watermark, Delivered delivered) {
  std::shared_ptr<RdKafka::Producer> producer = impl_->CurrentProducer();
  // Fresh metadata: every partition a writer may have produced to before
  // the snapshot must get the watermark (docs/DESIGN.md "Watermarks").
  absl::StatusOr<std::vector<int32_t>> ids = impl_->ListPartitionsVia(producer.get());
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
    Delivered delivered;
    Impl* impl;
  };
  auto round = std::make_shared<Round>();
  round->pending.store(ids->size());
  round->delivered = std::move(delivered);
  round->impl = impl_.get();
  for (int32_t id : *ids) {
    auto* opaque = new Pending{[round](absl::Status status) {
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
                                 if (result.ok()) round->impl->watermarks_published.fetch_add(1);
                                 if (round->delivered) round->delivered(result);
                               },
                               /*event=*/false};
    const RdKafka::ErrorCode code =
        producer->produce(impl_->options.topic, id, RdKafka::Producer::RK_MSG_COPY,
                          const_cast<char*>(payload.data()), payload.size(), nullptr, 0, 0, opaque);
    if (code != RdKafka::ERR_NO_ERROR) {
      std::unique_ptr<Pending> done(opaque);
      done->delivered(absl::UnavailableError(absl::StrCat("cannot queue a watermark for partition ",
                                                          id, ": ", RdKafka::err2str(code))));
    }
  }
}

bool KafkaSync::positioned() const { return impl_->positioned.load(); }

absl::Time KafkaSync::topic_fresh_as_of() const { return impl_->shared->tracker.fresh_as_of(); }

SyncStats KafkaSync::Stats() const {
  SyncStats s;
  s.positioned = impl_->positioned.load();
  s.broker_reachable = impl_->BrokerReachable();
  s.topic_fresh_as_of = impl_->shared->tracker.fresh_as_of();
  s.watermarks_published = impl_->watermarks_published.load();
  s.partitions = impl_->shared->tracker.Partitions();
  s.events_received = impl_->events_received.load();
  s.events_undecodable = impl_->events_undecodable.load();
  s.offset_resets = impl_->offset_resets.load();
  s.published = impl_->published.load();
  s.publish_failures = impl_->publish_failures.load();
  s.producer_restarts = impl_->producer_restarts.load();
  s.last_error = impl_->LastError();
  return s;
}

absl::string_view KafkaSync::replica_id() const { return impl_->options.replica_id; }

}  // namespace cachecar::sync
