// The watermark probe of the Kafka adapter: a client of its own (a plain
// consumer, no group) that answers partitions' low and high watermarks, and
// the probe thread, which asks for one partition's high watermark every
// `probe_interval` to tell whether the broker answers. Internal to
// src/sync/kafka/.
//
// librdkafka 2.0's query_watermark_offsets can block far past its timeout
// while the broker is down (it waits for the request's reply), so
// KafkaSync::Stop() cannot promise to join the probe thread: it waits a
// little, then detaches it, and ProbeShared lives on (shared) until the call
// returns. Nothing in it refers back to KafkaSync. Its `clock` (the
// adapter's time source) must therefore outlive the probe thread too:
// Clock::Real() does.
//
// Thread-safety: every member of ProbeShared is safe to use from the probe,
// consumer and caller threads at once (atomics, FreshnessTracker, LastError,
// and the prober client, whose queries librdkafka serialises).
#ifndef CACHECAR_SYNC_KAFKA_WATERMARK_PROBE_H_
#define CACHECAR_SYNC_KAFKA_WATERMARK_PROBE_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "librdkafka/rdkafkacpp.h"
#include "sync/freshness.h"
#include "sync/kafka/client_config.h"
#include "sync/kafka/kafka_sync.h"
#include "sync/kafka/last_error.h"

namespace cachecar::sync::kafka {

// How long one watermark query may wait for the broker.
constexpr int kProbeTimeoutMs = 1000;

// What the probe thread touches (see the header comment).
struct ProbeShared {
  ProbeShared(std::string t, const Clock& c) : topic(std::move(t)), clock(c) {}
  const std::string topic;
  const Clock& clock;  // the adapter's time (probes, positioning, lag updates)
  FreshnessTracker tracker;
  LastError errors;
  EventLogger events{"probe"};
  std::unique_ptr<RdKafka::Consumer> prober;  // watermark queries only
  std::atomic<bool> broker_reachable{false};  // the last probe round answered
  std::atomic<int64_t> last_probe_ok_us{0};   // when a round last answered
  Notification stop;
  Notification probe_exited;

  // Makes `prober` (with options.properties too: TLS and SASL settings apply
  // to it as well).
  absl::Status MakeProber(const KafkaOptions& options);
  // Brings the watermark client's view of the topic up to date (it would
  // otherwise learn of new partitions only at its periodic refresh).
  void RefreshMetadata();
  // A partition's low or high watermark; -1 (and the error recorded) if
  // the broker did not answer within `timeout_ms`.
  int64_t Watermark(int32_t partition, bool high, int timeout_ms = kProbeTimeoutMs);
  // Whether the broker answers. A probe stuck in librdkafka never reports
  // failure: judge by the last answer's age as well.
  bool BrokerReachable(absl::Duration probe_interval) const;
};

// The probe thread's loop; owns a share of `shared`, never touches KafkaSync.
// It only tells whether the broker answers (one partition's offsets per
// round: the staleness bound rests on watermarks, and the lag metric on
// the offsets the consumer's fetches bring back), so its load on the
// brokers is one small request per replica per `interval`.
void ProbeLoop(const std::shared_ptr<ProbeShared>& shared, absl::Duration interval, int timeout_ms);

}  // namespace cachecar::sync::kafka

#endif  // CACHECAR_SYNC_KAFKA_WATERMARK_PROBE_H_
