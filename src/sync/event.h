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

namespace cachecar::sync {

enum class Op { kUpsert, kDelete, kInvalidate, kFlush };

struct Event {
  std::string ns;        // with kFlush, "" means every namespace
  std::string key;       // empty for kFlush
  uint64_t version = 0;  // 0 = unversioned (INVALIDATE, FLUSH only)
  Op op = Op::kUpsert;
  std::optional<std::string> value;  // kUpsert only, when inlined
  std::string origin;                // replica id, or "relay/<replica id>"
  absl::Time committed = absl::InfinitePast();
};

// The Kafka message key: namespace, NUL, key.
std::string MessageKey(absl::string_view ns, absl::string_view key);

// Serialized SyncEvent.
std::string EncodeEvent(const Event& event);

// Parses a message value; INVALID_ARGUMENT saying what is wrong (not a
// SyncEvent, no op, an UPSERT/DELETE without a version, a value on anything
// but an UPSERT, a key on a FLUSH).
absl::StatusOr<Event> DecodeEvent(absl::string_view payload);

const char* OpName(Op op);

}  // namespace cachecar::sync

#endif  // CACHECAR_SYNC_EVENT_H_
