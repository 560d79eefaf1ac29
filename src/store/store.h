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
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "common/change_op.h"

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

// One write of a batch (Store::WriteBatch): a put of `value`, or a delete.
struct BatchWrite {
  std::string key;
  bool is_delete = false;
  std::string value;          // puts only
  Precondition precondition;  // deletes: kNone or kIfVersion
};

// What one write of a batch did.
struct BatchWriteResult {
  uint64_t version = 0;  // a put's new version; a delete's version (found), or
                         // the key's absent version (not found)
  bool found = false;    // deletes: the key held a value, which this deleted
};

// A key's current version as the store holds it (Store::ReadVersions), with
// when that version was written: what the staleness auditor compares a
// cached entry with.
struct VersionRecord {
  bool found = false;    // the key holds a value
  uint64_t version = 0;  // the value's, or the delete's (0: never written)
  // When the version was written, on the store's clock (PostgreSQL: the
  // row's updated_at, the tombstone's deleted_at); InfinitePast when unknown
  // (never written).
  absl::Time written = absl::InfinitePast();
};

// What ReadVersions read: one VersionRecord per key, in the order given,
// and the store's clock when it read them (to judge `written` against).
struct VersionSnapshot {
  absl::Time as_of = absl::InfinitePast();
  std::vector<VersionRecord> records;
};

// Numbers a store may report for metrics; unset = the store has no such thing.
struct StoreStats {
  std::optional<uint64_t> outbox_rows;              // changes not yet relayed
  std::optional<double> outbox_oldest_age_seconds;  // age of the oldest one
};

// A committed change that may not have reached the sync topic yet: the
// store writes one in the same transaction as every write (the outbox).
struct OutboxEntry {
  using Op = ChangeOp;  // the one op enum (common/change_op.h)
  int64_t id = 0;       // the entry's id in the outbox (relays claim entries by id)
  std::string ns;       // with kFlush, "" means every namespace of the shared table
  std::string key;
  uint64_t version = 0;
  Op op = Op::kUpsert;
  std::optional<std::string> value;  // small upserts carry their value
  // When it was written, on the store's clock.
  absl::Time created = absl::InfinitePast();
  // Written by a cachecar writer, which publishes it itself and then
  // retires it; false for every other program's writes (psql, a migration,
  // another service), which nobody but a relay will ever publish.
  bool announced = false;
};

// What the outbox holds at one moment (docs/DESIGN.md "Watermarks").
struct OutboxSnapshot {
  // The store's clock, read before the snapshot was taken: every write
  // that committed before `as_of` is among `entries`, or its entry was
  // already deleted, which happens only once the broker has its event.
  absl::Time as_of = absl::InfinitePast();
  std::vector<OutboxEntry> entries;  // oldest first
  // false: there were more entries than asked for; the others are not
  // listed (and `as_of` promises nothing).
  bool complete = true;
};

// The outbox, for stores that have one (PostgreSQL). The writer publishes
// its own change right after commit and retires it; relays publish whatever
// nobody retired (the writer crashed, or a program wrote the table directly)
// and the watermarks that let replicas vouch for their freshness. A few
// replicas relay at a time, each holding one of a few leases.
// Thread-safety: safe to call from many threads; calls block on I/O.
class Outbox {
 public:
  virtual ~Outbox() = default;
  using Publish = std::function<absl::Status(const std::vector<OutboxEntry>&)>;

  // Up to `limit` entries, oldest first, without locking them.
  virtual absl::StatusOr<OutboxSnapshot> Snapshot(size_t limit) = 0;
  // Claims the entries with these ids that still exist and that no other
  // relay holds (locked, skipping locked ones, until this returns), hands
  // them to `publish`, and deletes them only if it returns OK (the broker
  // has them). Returns the ids relayed.
  virtual absl::StatusOr<std::vector<int64_t>> Relay(const std::vector<int64_t>& ids,
                                                     const Publish& publish) = 0;
  // Of these ids, the ones still in the outbox.
  virtual absl::StatusOr<std::vector<int64_t>> Present(const std::vector<int64_t>& ids) = 0;
  // Deletes the entries written at these versions (their writer published them).
  virtual absl::Status Retire(const std::vector<uint64_t>& versions) = 0;
  // Blocks until the store announces a new entry nobody will announce
  // (a direct write), or `timeout` passes (also when the store cannot be
  // reached, or cannot announce: the caller then just polls). One caller
  // thread at a time.
  virtual void WaitForNew(absl::Duration timeout) = 0;

  // Relay leases: `slots` of them, each held by one holder until `ttl`
  // after its last renewal (on the store's clock, so holders' clocks do not
  // matter). Takes a free or expired lease, or renews the one `holder`
  // holds; true if `holder` holds one now.
  virtual absl::StatusOr<bool> HoldLease(const std::string& holder, int slots,
                                         absl::Duration ttl) = 0;
  // Whether one of the `slots` leases is free (a cheap read, no lock).
  virtual absl::StatusOr<bool> LeaseAvailable(int slots) = 0;
  // Gives up whatever lease `holder` holds, so another replica can take it
  // at once.
  virtual absl::Status ReleaseLease(const std::string& holder) = 0;
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
  virtual absl::StatusOr<std::vector<Record>> LoadBatch(absl::string_view ns,
                                                        const std::vector<std::string>& keys,
                                                        const CallOptions& options) = 0;

  // The current versions of many keys of one namespace, and when each was
  // written, in one round trip; no values. For the staleness auditor.
  virtual absl::StatusOr<VersionSnapshot> ReadVersions(absl::string_view ns,
                                                       const std::vector<std::string>& keys,
                                                       const CallOptions& options) {
    return absl::UnimplementedError(absl::StrCat("the ", Name(), " store cannot read versions"));
  }

  // Writes `value` if `precondition` holds; returns the new version.
  virtual absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key,
                                       absl::string_view value, Precondition precondition,
                                       const CallOptions& options) = 0;

  // Deletes the key if `if_version` (when given) matches its current version.
  virtual absl::StatusOr<DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                              std::optional<uint64_t> if_version,
                                              const CallOptions& options) = 0;

  // Applies `writes` (distinct keys of one namespace) all or nothing, in one
  // transaction: if any precondition fails, nothing is written and the
  // Aborted error names that write ("writes[i] (key 'k'): ..."). Preconditions
  // mean what they mean for Put and Delete. One result per write, in order;
  // every write gets its own version (and, with an outbox, its own entry).
  virtual absl::StatusOr<std::vector<BatchWriteResult>> WriteBatch(
      absl::string_view ns, const std::vector<BatchWrite>& writes, const CallOptions& options) {
    return absl::UnimplementedError(absl::StrCat("the ", Name(), " store cannot write batches"));
  }

  // A page of a scan over a whole namespace (replicated namespaces load
  // theirs at start): up to `limit` keys, in key order (for a mapped table,
  // the key column's text form), each greater than `after` ("" starts at the
  // beginning). The keys are those that hold a value and those the store
  // still keeps a delete's version for (its tombstones), so that a load
  // caches "absent at version v" where a read would say so, not absent at
  // version 0. Fewer than `limit`: the last page.
  // UNIMPLEMENTED by stores that cannot scan.
  virtual absl::StatusOr<std::vector<std::string>> ScanKeys(absl::string_view ns,
                                                            absl::string_view after, size_t limit,
                                                            const CallOptions& options) {
    return absl::UnimplementedError(absl::StrCat("the ", Name(), " store cannot scan"));
  }

  // Numbers for metrics (read at scrape time).
  virtual absl::StatusOr<StoreStats> Stats(const CallOptions& options) { return StoreStats{}; }

  // Whether the store can be reached now (readiness). The default has
  // nothing to check.
  virtual absl::Status CheckHealth(const CallOptions& options) { return absl::OkStatus(); }

  // The latest version handed out (by any writer, committed or not): a
  // replica joining the sync topic raises its namespaces' floors to it, so
  // a late copy of an older event cannot insert a value. UNIMPLEMENTED by
  // stores that no other replica shares.
  virtual absl::StatusOr<uint64_t> LatestVersion(const CallOptions& options) {
    return absl::UnimplementedError("this store has no shared version sequence");
  }

  // The store's clock now (PostgreSQL: clock_timestamp()). Replicas compare
  // it with their own to read watermarks, which carry the store's time.
  // UNIMPLEMENTED by stores no other replica shares.
  virtual absl::StatusOr<absl::Time> ServerTime(const CallOptions& options) {
    return absl::UnimplementedError("this store has no clock of its own");
  }

  // The store's outbox, or nullptr when it has none (the memory store).
  virtual Outbox* outbox() { return nullptr; }

  // A short name for logs ("memory", "postgres").
  virtual absl::string_view Name() const = 0;
};

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_STORE_H_
