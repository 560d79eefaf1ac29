// The Sync interface: how a replica announces its committed changes and
// learns everyone else's. The Kafka adapter (sync/kafka/) implements it; no
// librdkafka type appears above it.
//
// Publishing is asynchronous: `delivered` runs once, on the sync's own
// thread, when the broker acknowledged the event (OK) or gave up on it.
// Consuming: after Start, the sync calls the EventSink from one thread, in
// topic order per partition.
//
// Freshness (docs/DESIGN.md C4): the staleness bound rests on the relays'
// watermarks (EventSink::OnWatermark), which cover commit -> topic -> cache.
// `topic_fresh_as_of()` is only a time T such that every event the topic
// held at T has been handed to the sink (topic -> cache), for metrics.
//
// Thread-safety: every method may be called from any thread.
#ifndef CACHECAR_SYNC_SYNC_H_
#define CACHECAR_SYNC_SYNC_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "sync/event.h"

namespace cachecar::sync {

// Receives what the consumer reads. Called from the consumer thread only.
class EventSink {
 public:
  virtual ~EventSink() = default;
  virtual void OnEvent(const Event& event) = 0;
  // Events were lost (the topic's retention passed our position): whatever
  // the cache holds may be stale; drop it all.
  virtual void OnEventsLost(absl::string_view why) = 0;
  // The consumer was just (re)positioned, before it reads anything there.
  // Returning an error makes it position again a little later (the replica
  // is not ready meanwhile).
  virtual absl::Status OnPositioned() { return absl::OkStatus(); }
  // A relay's watermark, read from `partition` (after every event before
  // it there was handed to OnEvent).
  virtual void OnWatermark(int32_t partition, const Watermark& watermark) {}
  // The partitions the consumer reads now, each time they change; the
  // `restarted` ones were (re)positioned, skipping what came before (all of
  // them at the first positioning; one whose events were lost).
  virtual void OnPartitions(const std::vector<int32_t>& partitions,
                            const std::vector<int32_t>& restarted) {}
};

struct PartitionState {
  int32_t partition = 0;
  int64_t position = -1;        // next offset to read
  int64_t high_watermark = -1;  // as of the last probe
  int64_t lag() const {
    return position < 0 || high_watermark < 0 ? 0 : std::max<int64_t>(0, high_watermark - position);
  }
};

struct SyncStats {
  bool positioned = false;        // every partition assigned at its start offset
  bool broker_reachable = false;  // the last probe answered
  absl::Time topic_fresh_as_of = absl::InfinitePast();
  std::vector<PartitionState> partitions;
  uint64_t events_received = 0;
  uint64_t events_undecodable = 0;
  uint64_t offset_resets = 0;  // positions past retention: events lost
  uint64_t published = 0;      // acknowledged by the broker
  uint64_t publish_failures = 0;
  uint64_t producer_restarts = 0;     // after fatal producer errors
  uint64_t watermarks_published = 0;  // rounds acknowledged in every partition
  std::string last_error;             // for health messages
};

class Sync {
 public:
  using Delivered = std::function<void(absl::Status)>;
  virtual ~Sync() = default;

  // Starts consuming into `sink` (which must outlive Stop).
  virtual void Start(EventSink& sink) = 0;
  // Stops consuming and publishing; waits (up to `timeout`) for publishes
  // in flight, whose `delivered` then runs with UNAVAILABLE if unacked.
  virtual void Stop(absl::Duration timeout) = 0;

  // Queues `event` for the topic; never blocks on the broker.
  virtual void Publish(const Event& event, Delivered delivered) = 0;
  // Publishes `watermark` into every partition of the topic, listing them
  // afresh first (may block that long) and setting watermark.partitions;
  // `delivered` runs once: OK when every partition acknowledged it, else
  // the first failure.
  virtual void PublishWatermark(Watermark watermark, Delivered delivered) = 0;

  virtual bool positioned() const = 0;
  virtual absl::Time topic_fresh_as_of() const = 0;
  virtual SyncStats Stats() const = 0;
  virtual absl::string_view replica_id() const = 0;
};

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_SYNC_H_
