// sync::Event: one change announced on the sync topic, and its wire format
// (proto/cachecar/v1/sync.proto: the value is a serialized SyncEvent, the
// message key is namespace NUL key).
#ifndef CACHECAR_SYNC_EVENT_H_
#define CACHECAR_SYNC_EVENT_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/change_op.h"

namespace cachecar::sync {

// The one op enum (common/change_op.h), also service::ChangeOp.
using Op = ChangeOp;

struct Event {
  std::string ns;        // with kFlush, "" means every namespace
  std::string key;       // empty for kFlush
  uint64_t version = 0;  // 0 = unversioned (INVALIDATE, FLUSH only)
  Op op = Op::kUpsert;
  std::optional<std::string> value;  // kUpsert only, when inlined
  std::string origin;                // replica id, or "relay/<replica id>"
  absl::Time committed = absl::InfinitePast();
  // kUpsert only: the cached copy's ttl the writer gave (Put ttl_ms);
  // unset: each replica's namespace ttl.
  std::optional<absl::Duration> ttl;
};

// A relay's watermark (sync.proto WATERMARK): every change committed before
// `as_of` (on the store's clock) is ahead of it in its partition.
struct Watermark {
  std::string relay;  // who published it (one relay's successive watermarks
                      // in a partition are in order)
  absl::Time as_of = absl::InfinitePast();
  int32_t partitions = 0;  // how many partitions the relay published it to
};

// One message of the sync topic: a change or a watermark.
struct Message {
  bool is_watermark = false;
  Event event;          // when !is_watermark
  Watermark watermark;  // when is_watermark
};

// The Kafka message key: namespace, NUL, key.
std::string MessageKey(absl::string_view ns, absl::string_view key);

// Serialized SyncEvent.
std::string EncodeEvent(const Event& event);
std::string EncodeWatermark(const Watermark& watermark);

// Parses a message value; INVALID_ARGUMENT saying what is wrong (not a
// SyncEvent, no op, an UPSERT/DELETE without a version, a value or a ttl on
// anything but an UPSERT, a key on a FLUSH).
absl::StatusOr<Event> DecodeEvent(absl::string_view payload);
// Either; a WATERMARK needs an origin, a time and a partition count.
absl::StatusOr<Message> DecodeMessage(absl::string_view payload);

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_EVENT_H_
