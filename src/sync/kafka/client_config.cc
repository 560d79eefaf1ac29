// See client_config.h. Also defines kafka_sync.h's DefaultProducerProperties,
// DefaultConsumerProperties and ValidateKafkaProperties.
#include "sync/kafka/client_config.h"

#include "absl/strings/str_cat.h"
#include "spdlog/spdlog.h"
#include "sync/kafka/kafka_sync.h"

namespace cachecar::sync {
namespace kafka {
namespace {

std::map<std::string, std::string> Merge(std::map<std::string, std::string> base,
                                         const std::map<std::string, std::string>& overrides) {
  for (const auto& [k, v] : overrides) base[k] = v;
  return base;
}

}  // namespace

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

void EventLogger::event_cb(RdKafka::Event& event) {
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

absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& defaults,
    const std::map<std::string, std::string>& overrides, EventLogger* events) {
  std::unique_ptr<RdKafka::Conf> conf(RdKafka::Conf::create(RdKafka::Conf::CONF_GLOBAL));
  if (absl::Status s = ApplyProperties(*conf, Merge(defaults, overrides)); !s.ok()) return s;
  std::string err;
  conf->set("event_cb", events, err);
  return conf;
}

}  // namespace kafka

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
  return kafka::ApplyProperties(*conf, properties);
}

}  // namespace cachecar::sync
