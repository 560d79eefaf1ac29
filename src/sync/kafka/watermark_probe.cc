// See watermark_probe.h.
#include "sync/kafka/watermark_probe.h"

#include <map>
#include <vector>

#include "absl/strings/str_cat.h"
#include "sync/kafka/topic_partitions.h"

namespace cachecar::sync::kafka {

absl::Status ProbeShared::MakeProber(const KafkaOptions& options) {
  const std::map<std::string, std::string> defaults = {
      {"bootstrap.servers", options.brokers},
      {"client.id", absl::StrCat("cachecar-probe-", options.replica_id)},
      {"topic.metadata.refresh.interval.ms", "10000"},
      {"reconnect.backoff.ms", "100"},
      {"reconnect.backoff.max.ms", "1000"},
      {"log.connection.close", "false"},
  };
  absl::StatusOr<std::unique_ptr<RdKafka::Conf>> conf =
      MakeConf(defaults, options.properties, &events);
  if (!conf.ok()) return conf.status();
  std::string err;
  prober.reset(RdKafka::Consumer::create(conf->get(), err));
  if (prober == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("kafka watermark client: ", err));
  }
  return absl::OkStatus();
}

void ProbeShared::RefreshMetadata() { FetchTopicMetadata(prober.get(), topic, nullptr); }

int64_t ProbeShared::Watermark(int32_t partition, bool high, int timeout_ms) {
  int64_t low = -1, hi = -1;
  const RdKafka::ErrorCode code =
      prober->query_watermark_offsets(topic, partition, &low, &hi, timeout_ms);
  if (code != RdKafka::ERR_NO_ERROR) {
    errors.Set(absl::StrCat("cannot read the offsets of partition ", partition, ": ",
                            RdKafka::err2str(code)));
    return -1;
  }
  return high ? hi : low;
}

bool ProbeShared::BrokerReachable(absl::Duration probe_interval) const {
  const absl::Time last_ok = absl::FromUnixMicros(last_probe_ok_us.load());
  return broker_reachable.load() &&
         clock.Now() - last_ok < probe_interval + absl::Milliseconds(2 * kProbeTimeoutMs);
}

void ProbeLoop(const std::shared_ptr<ProbeShared>& shared, absl::Duration interval,
               int timeout_ms) {
  size_t next = 0;
  while (!shared->stop.WaitForNotificationWithTimeout(interval)) {
    const std::vector<int32_t> ids = shared->tracker.PartitionIds();
    bool ok = !ids.empty();
    if (ok) {
      const int32_t id = ids[next++ % ids.size()];
      const absl::Time sent = shared->clock.Now();
      const int64_t hi = shared->Watermark(id, /*high=*/true, timeout_ms);
      ok = hi >= 0 && !shared->stop.HasBeenNotified();
      if (ok) shared->tracker.OnProbe(id, hi, sent);
    }
    shared->broker_reachable.store(ok);
    if (ok) shared->last_probe_ok_us.store(absl::ToUnixMicros(shared->clock.Now()));
  }
  shared->probe_exited.Notify();
}

}  // namespace cachecar::sync::kafka
