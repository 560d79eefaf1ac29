// The Store interface: where values live durably and where versions come
// from. The embedded MemoryStore and the PostgreSQL adapter implement it;
// nothing above this interface sees a driver type.
//
// Every write gets a new version from one strictly increasing 64-bit counter
// shared by all namespaces, so a delete followed by a re-insert still moves
// the key forward.
//
// Errors:
//   InvalidArgument    bad namespace or key (the service checks first)
//   Aborted            a precondition failed; message names expected and found
//   Unavailable        the store could not be reached; nothing was written
//   DeadlineExceeded   the call's deadline passed; nothing was written
//   OutcomeUnknown     (see outcome.h) the write may or may not have committed
//
// Thread-safety: implementations are safe to call from many threads at once.
// Calls block on I/O: never call them from a gRPC callback thread.
#ifndef CACHECAR_STORE_STORE_H_
#define CACHECAR_STORE_STORE_H_

#include <cstdint>
#include <optional>
#include <string>
#include "absl/strings/string_view.h"
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace cachecar::store {

// What a read found for one key.
struct Record {
  bool found = false;    // the key holds a value
  std::string value;     // when found
  uint64_t version = 0;  // the value's version; when !found, the delete's
                         // version (0 if the key was never written)
};

// A write's condition. Default: unconditional.
struct Precondition {
  enum class Kind { kNone, kIfVersion, kIfAbsent };
  Kind kind = Kind::kNone;
  uint64_t version = 0;  // for kIfVersion

  static Precondition None() { return {}; }
  static Precondition IfVersion(uint64_t v) { return {Kind::kIfVersion, v}; }
  static Precondition IfAbsent() { return {Kind::kIfAbsent, 0}; }
};

struct DeleteResult {
  bool found = false;    // a value was deleted
  uint64_t version = 0;  // the delete's version, or the current absent version
};

// Numbers a store may report for metrics; unset = the store has no such thing.
struct StoreStats {
  std::optional<uint64_t> outbox_rows;             // changes not yet relayed
  std::optional<double> outbox_oldest_age_seconds;  // age of the oldest one
};

// Per-call options.
struct CallOptions {
  // The caller gives up at this time; the store should too.
  absl::Time deadline = absl::InfiniteFuture();
};

class Store {
 public:
  virtual ~Store() = default;

  // Reads one key.
  virtual absl::StatusOr<Record> Load(absl::string_view ns, absl::string_view key,
                                      const CallOptions& options) = 0;

  // Reads many keys of one namespace in one round trip; one Record per key,
  // in the order given.
  virtual absl::StatusOr<std::vector<Record>> LoadBatch(
      absl::string_view ns, const std::vector<std::string>& keys,
      const CallOptions& options) = 0;

  // Writes `value` if `precondition` holds; returns the new version.
  virtual absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key,
                                       absl::string_view value,
                                       Precondition precondition,
                                       const CallOptions& options) = 0;

  // Deletes the key if `if_version` (when given) matches its current version.
  virtual absl::StatusOr<DeleteResult> Delete(absl::string_view ns,
                                              absl::string_view key,
                                              std::optional<uint64_t> if_version,
                                              const CallOptions& options) = 0;

  // Numbers for metrics (read at scrape time).
  virtual absl::StatusOr<StoreStats> Stats(const CallOptions& options) { return StoreStats{}; }

  // Whether the store can be reached now (readiness). The default has
  // nothing to check.
  virtual absl::Status CheckHealth(const CallOptions& options) { return absl::OkStatus(); }

  // A short name for logs ("memory", "postgres").
  virtual absl::string_view Name() const = 0;
};

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_STORE_H_
