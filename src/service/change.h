// Change: one change to a cached key (or a whole namespace) that this
// replica has applied, whether made through it (a Put, Delete or Invalidate)
// or learned from the sync topic. Watchers (Cache.Watch) receive these.
#ifndef CACHECAR_SERVICE_CHANGE_H_
#define CACHECAR_SERVICE_CHANGE_H_

#include <cstdint>
#include <optional>
#include <string>

#include "absl/time/time.h"
#include "common/change_op.h"

namespace cachecar::service {

// The one op enum (common/change_op.h), also sync::Op.
using cachecar::ChangeOp;
using cachecar::ChangeOpName;

struct Change {
  std::string ns;
  std::string key;       // empty for kFlush
  uint64_t version = 0;  // 0 = unversioned
  ChangeOp op = ChangeOp::kUpsert;
  bool local = false;  // made through this replica (not from the topic)
  // kUpsert made here: the cached copy's ttl the write gave (Put ttl_ms),
  // which its event carries to the other replicas; unset: the namespace's.
  std::optional<absl::Duration> ttl;
};

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_CHANGE_H_
