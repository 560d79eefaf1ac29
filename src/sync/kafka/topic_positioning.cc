// See topic_reader.h. Positioning: where each partition is read from (the
// high watermark at start, the beginning for partitions found later, the
// end again after retention took our position) and the assign() that
// applies it.
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "spdlog/spdlog.h"
#include "sync/kafka/topic_partitions.h"
#include "sync/kafka/topic_reader.h"

namespace cachecar::sync::kafka {

// First positioning: every partition at its high watermark.
bool TopicReader::PositionAll() {
  const absl::Time started = Now();
  shared_->RefreshMetadata();
  absl::StatusOr<std::vector<int32_t>> ids =
      ListPartitions(consumer_.get(), options_.topic, options_.brokers);
  if (!ids.ok()) {
    SetError(std::string(ids.status().message()));
    return false;
  }
  std::map<int32_t, int64_t> start;
  for (int32_t id : *ids) {
    const int64_t hi = shared_->Watermark(id, true);
    if (hi < 0) return false;
    start[id] = hi;
  }
  for (const auto& [id, offset] : start) tracker().AddPartition(id, offset, started);
  if (!Assign(start)) return false;
  if (absl::Status s = sink_->OnPositioned(); !s.ok()) {
    SetError(std::string(s.message()));
    return false;
  }
  assigned_.clear();
  for (const auto& [id, offset] : start) assigned_.insert(id);
  sink_->OnPartitions(*ids, *ids);
  last_partition_check_ = started;
  positioned_.store(true);
  std::vector<std::string> where;
  where.reserve(start.size());
  for (const auto& [id, offset] : start) where.push_back(absl::StrCat(id, "@", offset));
  spdlog::info("sync: positioned on topic {} ({} partitions: {}); ready", options_.topic,
               start.size(), absl::StrJoin(where, " "));
  return true;
}

// New partitions are read from the beginning: none of their events can
// predate the last check that did not see them.
void TopicReader::CheckPartitions() {
  const absl::Time started = Now();
  absl::StatusOr<std::vector<int32_t>> ids =
      ListPartitions(consumer_.get(), options_.topic, options_.brokers);
  if (!ids.ok()) return;  // the probe reports reachability
  std::map<int32_t, int64_t> fresh;
  bool refreshed = false;
  for (int32_t id : *ids) {
    if (assigned_.count(id) > 0) continue;
    if (!refreshed) {
      shared_->RefreshMetadata();
      refreshed = true;
    }
    const int64_t low = shared_->Watermark(id, false);
    if (low < 0) return;
    fresh[id] = low;
  }
  if (!fresh.empty()) {
    for (const auto& [id, offset] : fresh) {
      tracker().AddPartition(id, offset, last_partition_check_);
    }
    if (!Assign(fresh)) return;
    std::vector<int32_t> restarted;
    for (const auto& [id, offset] : fresh) {
      assigned_.insert(id);
      restarted.push_back(id);
      spdlog::info("sync: new partition {} of topic {}: reading it from offset {}", id,
                   options_.topic, offset);
    }
    sink_->OnPartitions(std::vector<int32_t>(assigned_.begin(), assigned_.end()), restarted);
  }
  last_partition_check_ = started;
}

// Retention passed our position in `partition`: events are lost.
void TopicReader::OnOffsetReset(int32_t partition, const std::string& why) {
  offset_resets_.fetch_add(1);
  spdlog::error(
      "sync: partition {} of topic {}: our position is gone ({}); events were lost, "
      "dropping every cached entry and restarting the partition at its end",
      partition, options_.topic, why);
  sink_->OnEventsLost(absl::StrCat("partition ", partition, ": ", why));
  const absl::Time started = Now();
  const int64_t hi = shared_->Watermark(partition, true);
  if (hi < 0) return;  // the next message retries
  tracker().AddPartition(partition, hi, started);
  Assign({{partition, hi}});
  sink_->OnPartitions(std::vector<int32_t>(assigned_.begin(), assigned_.end()), {partition});
  if (absl::Status s = sink_->OnPositioned(); !s.ok()) {
    SetError(std::string(s.message()));
    positioned_.store(false);  // position everything again
  }
}

// assign() the whole set: known partitions at the tracker's positions,
// `fresh` ones at the offsets given.
bool TopicReader::Assign(const std::map<int32_t, int64_t>& fresh) {
  std::vector<RdKafka::TopicPartition*> list;
  for (const PartitionState& p : tracker().Partitions()) {
    if (fresh.count(p.partition) == 0 && p.position >= 0) {
      list.push_back(RdKafka::TopicPartition::create(options_.topic, p.partition, p.position));
    }
  }
  for (const auto& [id, offset] : fresh) {
    list.push_back(RdKafka::TopicPartition::create(options_.topic, id, offset));
  }
  const RdKafka::ErrorCode code = consumer_->assign(list);
  RdKafka::TopicPartition::destroy(list);
  if (code != RdKafka::ERR_NO_ERROR) {
    SetError(absl::StrCat("assign failed: ", RdKafka::err2str(code)));
    return false;
  }
  return true;
}

}  // namespace cachecar::sync::kafka
