// librdkafka client configurations for the Kafka adapter: our defaults with
// the user's `properties` on top, and EventLogger, which routes a client's
// logs and errors into spdlog and flags fatal errors. Internal to
// src/sync/kafka/ (librdkafka types do not leave it).
//
// Thread-safety: the functions are pure. EventLogger::event_cb runs on
// librdkafka's threads; TakeFatal may be called from any thread.
#ifndef CACHECAR_SYNC_KAFKA_CLIENT_CONFIG_H_
#define CACHECAR_SYNC_KAFKA_CLIENT_CONFIG_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "librdkafka/rdkafkacpp.h"

namespace cachecar::sync::kafka {

// `d` in whole milliseconds, as librdkafka's timeouts take it.
int Millis(absl::Duration d);

// Sets every property on `conf`; the error names the first one refused.
absl::Status ApplyProperties(RdKafka::Conf& conf, const std::map<std::string, std::string>& props);

// librdkafka's logs and errors into spdlog; flags fatal producer errors.
class EventLogger final : public RdKafka::EventCb {
 public:
  explicit EventLogger(std::string who) : who_(std::move(who)) {}
  void event_cb(RdKafka::Event& event) override;
  // Whether a fatal error arrived since the last call.
  bool TakeFatal() { return fatal_.exchange(false); }

 private:
  const std::string who_;
  std::atomic<bool> fatal_{false};
};

// A client configuration: `defaults`, then `overrides` on top, and `events`
// as its log and error callback.
absl::StatusOr<std::unique_ptr<RdKafka::Conf>> MakeConf(
    const std::map<std::string, std::string>& defaults,
    const std::map<std::string, std::string>& overrides, EventLogger* events);

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_CLIENT_CONFIG_H_
