// See topic_partitions.h.
#include "sync/kafka/topic_partitions.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace cachecar::sync::kafka {
namespace {

constexpr int kMetadataTimeoutMs = 2000;

}  // namespace

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

absl::StatusOr<std::vector<int32_t>> ListPartitions(RdKafka::Handle* handle,
                                                    const std::string& topic,
                                                    const std::string& brokers) {
  std::unique_ptr<RdKafka::Metadata> md;
  const RdKafka::ErrorCode code = FetchTopicMetadata(handle, topic, &md);
  if (code == RdKafka::ERR__INVALID_ARG) {
    return absl::InternalError(absl::StrCat("cannot make a topic handle for ", topic));
  }
  if (code != RdKafka::ERR_NO_ERROR) {
    return absl::UnavailableError(
        absl::StrCat("cannot reach the Kafka brokers (", brokers, "): ", RdKafka::err2str(code)));
  }
  for (const RdKafka::TopicMetadata* t : *md->topics()) {
    if (t->topic() != topic) continue;
    if (t->err() != RdKafka::ERR_NO_ERROR) {
      return absl::FailedPreconditionError(absl::StrCat(
          "sync topic ", topic, " is not usable on ", brokers, ": ", RdKafka::err2str(t->err()),
          t->err() == RdKafka::ERR_UNKNOWN_TOPIC_OR_PART
              ? " (create it, e.g. kafka-topics.sh --create --topic " + topic + " --partitions 6)"
              : ""));
    }
    std::vector<int32_t> ids;
    for (const RdKafka::PartitionMetadata* p : *t->partitions()) ids.push_back(p->id());
    std::sort(ids.begin(), ids.end());
    if (ids.empty()) break;
    return ids;
  }
  return absl::FailedPreconditionError(
      absl::StrCat("sync topic ", topic, " has no partitions on ", brokers));
}

}  // namespace cachecar::sync::kafka
