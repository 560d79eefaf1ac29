// See event.h.
#include "sync/event.h"

#include <algorithm>

#include "absl/strings/str_cat.h"
#include "cachecar/v1/sync.pb.h"

namespace cachecar::sync {
namespace {

constexpr uint64_t kMaxTtlMs = uint64_t{1} << 50;

cachecar::v1::SyncOp ToProto(Op op) {
  switch (op) {
    case Op::kUpsert:
      return cachecar::v1::SYNC_OP_UPSERT;
    case Op::kDelete:
      return cachecar::v1::SYNC_OP_DELETE;
    case Op::kInvalidate:
      return cachecar::v1::SYNC_OP_INVALIDATE;
    case Op::kFlush:
      return cachecar::v1::SYNC_OP_FLUSH;
  }
  return cachecar::v1::SYNC_OP_UNSPECIFIED;
}

}  // namespace

std::string MessageKey(absl::string_view ns, absl::string_view key) {
  std::string out;
  out.reserve(ns.size() + 1 + key.size());
  out.append(ns.data(), ns.size());
  out.push_back('\0');
  out.append(key.data(), key.size());
  return out;
}

std::string EncodeEvent(const Event& event) {
  cachecar::v1::SyncEvent pb;
  pb.set_namespace_(event.ns);
  pb.set_key(event.key);
  pb.set_version(event.version);
  pb.set_op(ToProto(event.op));
  if (event.value.has_value()) pb.set_value(*event.value);
  pb.set_origin(event.origin);
  if (event.committed != absl::InfinitePast()) {
    pb.set_commit_time_unix_micros(absl::ToUnixMicros(event.committed));
  }
  if (event.ttl.has_value() && *event.ttl > absl::ZeroDuration()) {
    // At least 1 ms: a sub-millisecond ttl must not read as "none".
    pb.set_ttl_ms(std::max<int64_t>(1, absl::ToInt64Milliseconds(*event.ttl)));
  }
  return pb.SerializeAsString();
}

std::string EncodeWatermark(const Watermark& watermark) {
  cachecar::v1::SyncEvent pb;
  pb.set_op(cachecar::v1::SYNC_OP_WATERMARK);
  pb.set_origin(watermark.relay);
  pb.set_commit_time_unix_micros(absl::ToUnixMicros(watermark.as_of));
  pb.set_partitions(watermark.partitions);
  return pb.SerializeAsString();
}

namespace {

absl::StatusOr<cachecar::v1::SyncEvent> Parse(absl::string_view payload) {
  cachecar::v1::SyncEvent pb;
  if (!pb.ParseFromArray(payload.data(), static_cast<int>(payload.size()))) {
    return absl::InvalidArgumentError(
        absl::StrCat("not a cachecar.v1.SyncEvent (", payload.size(), " bytes)"));
  }
  return pb;
}

absl::StatusOr<Event> EventOf(const cachecar::v1::SyncEvent& pb) {
  Event e;
  switch (pb.op()) {
    case cachecar::v1::SYNC_OP_UPSERT:
      e.op = Op::kUpsert;
      break;
    case cachecar::v1::SYNC_OP_DELETE:
      e.op = Op::kDelete;
      break;
    case cachecar::v1::SYNC_OP_INVALIDATE:
      e.op = Op::kInvalidate;
      break;
    case cachecar::v1::SYNC_OP_FLUSH:
      e.op = Op::kFlush;
      break;
    default:
      return absl::InvalidArgumentError(
          absl::StrCat("SyncEvent without a known op (", pb.op(), ")"));
  }
  if ((e.op == Op::kUpsert || e.op == Op::kDelete) && pb.version() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SyncEvent ", ChangeOpName(e.op), " without a version"));
  }
  if (pb.has_value() && e.op != Op::kUpsert) {
    return absl::InvalidArgumentError(
        absl::StrCat("SyncEvent ", ChangeOpName(e.op), " carries a value"));
  }
  if (pb.ttl_ms() != 0 && e.op != Op::kUpsert) {
    return absl::InvalidArgumentError(
        absl::StrCat("SyncEvent ", ChangeOpName(e.op), " carries a ttl"));
  }
  if (e.op == Op::kFlush && !pb.key().empty()) {
    return absl::InvalidArgumentError("SyncEvent FLUSH carries a key");
  }
  if (e.op != Op::kFlush && pb.key().empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("SyncEvent ", ChangeOpName(e.op), " without a key"));
  }
  e.ns = pb.namespace_();
  e.key = pb.key();
  e.version = pb.version();
  if (pb.has_value()) e.value = pb.value();
  e.origin = pb.origin();
  if (pb.commit_time_unix_micros() != 0) {
    e.committed = absl::FromUnixMicros(pb.commit_time_unix_micros());
  }
  if (pb.ttl_ms() != 0) {
    // The same cap as PutRequest.ttl_ms (2^50 ms, ~35,000 years).
    e.ttl = absl::Milliseconds(static_cast<int64_t>(std::min<uint64_t>(pb.ttl_ms(), kMaxTtlMs)));
  }
  return e;
}

}  // namespace

absl::StatusOr<Event> DecodeEvent(absl::string_view payload) {
  absl::StatusOr<cachecar::v1::SyncEvent> pb = Parse(payload);
  if (!pb.ok()) return pb.status();
  return EventOf(*pb);
}

absl::StatusOr<Message> DecodeMessage(absl::string_view payload) {
  absl::StatusOr<cachecar::v1::SyncEvent> pb = Parse(payload);
  if (!pb.ok()) return pb.status();
  Message m;
  if (pb->op() != cachecar::v1::SYNC_OP_WATERMARK) {
    absl::StatusOr<Event> e = EventOf(*pb);
    if (!e.ok()) return e.status();
    m.event = *std::move(e);
    return m;
  }
  if (pb->origin().empty() || pb->commit_time_unix_micros() <= 0 || pb->partitions() <= 0 ||
      !pb->key().empty() || pb->has_value() || pb->version() != 0 || pb->ttl_ms() != 0) {
    return absl::InvalidArgumentError(
        "SyncEvent WATERMARK needs an origin, a time and a partition count, and nothing else");
  }
  m.is_watermark = true;
  m.watermark.relay = pb->origin();
  m.watermark.as_of = absl::FromUnixMicros(pb->commit_time_unix_micros());
  m.watermark.partitions = pb->partitions();
  return m;
}

}  // namespace cachecar::sync
