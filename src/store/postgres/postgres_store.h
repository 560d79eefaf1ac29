// PostgresStore: the Store interface over PostgreSQL with libpqxx. Rows,
// versions, tombstones and outbox rows are written by one statement each
// (the triggers of schema.h do the rest in the same transaction), so a write
// is one round trip and a BatchGet is one query (= ANY($1)).
//
// Errors become absl::Status here and nowhere else:
//   connection lost / server down      UNAVAILABLE (reads retry once first)
//   lost while a write was in flight   OutcomeUnknown (store/outcome.h)
//   deadline or postgres_query_timeout DEADLINE_EXCEEDED (statement cancelled)
//   precondition failed                ABORTED naming expected and found
//   constraint violated                ABORTED
//   value/key not valid for a column   INVALID_ARGUMENT
//   schema missing or out of date      FAILED_PRECONDITION (run `cachecar migrate`)
// Error texts never contain the DSN's password.
//
// Thread-safety: safe to call from many threads; each call holds one pooled
// connection for its duration. A background thread connects (see Open) and
// then cleans up tombstones.
#ifndef CACHECAR_STORE_POSTGRES_POSTGRES_STORE_H_
#define CACHECAR_STORE_POSTGRES_POSTGRES_STORE_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "store/postgres/schema.h"
#include "store/store.h"

namespace cachecar::store {

struct PostgresOptions {
  std::string dsn;  // libpq key=value or URI; may hold a password
  size_t pool_size = 8;
  absl::Duration connect_timeout = absl::Seconds(5);
  // Cap on one statement when the caller's deadline is later (or none).
  absl::Duration query_timeout = absl::Seconds(5);
  // false: unnamed statements only, for PgBouncer in transaction mode.
  bool prepared_statements = true;
  // Tombstones older than this are deleted (a read of such a key then
  // reports "absent at version 0").
  absl::Duration tombstone_retention = absl::Hours(24);
  // When nothing relays the outbox (no sync topic), rows older than this
  // are deleted so the table stays small; zero keeps them (a relay
  // retires them).
  absl::Duration prune_outbox_after = absl::ZeroDuration();
  postgres::SchemaOptions schema;
  // Open waits this long for the first connection attempt, so that with
  // PostgreSQL up the store is usable as soon as Open returns.
  absl::Duration first_connect_wait = absl::Seconds(2);
};

class PostgresStore final : public Store {
 public:
  // Checks the options (INVALID_ARGUMENT for bad names: nothing else makes
  // Open fail), then connects in the background: creates the schema when
  // `migrate`, then checks it (every table exists, has its key and value
  // columns, a unique key and the cachecar triggers), and retries with
  // backoff until that works. Until then every call fails with UNAVAILABLE
  // (PostgreSQL cannot be reached) or FAILED_PRECONDITION (the schema is
  // missing: run `cachecar migrate`), saying so; a replica started before
  // its database becomes useful by itself. Waits up to
  // options.first_connect_wait for the first attempt.
  static absl::StatusOr<std::unique_ptr<PostgresStore>> Open(const PostgresOptions& options,
                                                             bool migrate);

  // Until the store is usable, at most `timeout`; why not if it is not.
  absl::Status WaitUntilReady(absl::Duration timeout);

  // `cachecar migrate`: creates or updates the schema, then checks it.
  // Returns a one-line summary per table.
  static absl::StatusOr<std::vector<std::string>> Migrate(const PostgresOptions& options);

  ~PostgresStore() override;

  absl::StatusOr<Record> Load(absl::string_view ns, absl::string_view key,
                              const CallOptions& options) override;
  absl::StatusOr<std::vector<Record>> LoadBatch(absl::string_view ns,
                                                const std::vector<std::string>& keys,
                                                const CallOptions& options) override;
  // One query (= ANY($1)) over the rows and tombstones; `written` is the
  // row's updated_at (cachecar_updated_at in a mapped table) or the
  // tombstone's deleted_at: the writing transaction's now().
  absl::StatusOr<VersionSnapshot> ReadVersions(absl::string_view ns,
                                               const std::vector<std::string>& keys,
                                               const CallOptions& options) override;

  // postgres_scan.h: a page of keys in key order.
  absl::StatusOr<std::vector<std::string>> ScanKeys(absl::string_view ns, absl::string_view after,
                                                    size_t limit,
                                                    const CallOptions& options) override;
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               Precondition precondition, const CallOptions& options) override;
  absl::StatusOr<DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                      std::optional<uint64_t> if_version,
                                      const CallOptions& options) override;
  // One transaction (READ COMMITTED) running each write's Put or Delete
  // statement, rows locked in key order; a failed precondition rolls it back.
  absl::StatusOr<std::vector<BatchWriteResult>> WriteBatch(absl::string_view ns,
                                                           const std::vector<BatchWrite>& writes,
                                                           const CallOptions& options) override;
  // Outbox rows and the oldest one's age.
  absl::StatusOr<StoreStats> Stats(const CallOptions& options) override;
  // SELECT 1 on a pooled connection (fails fast while reconnects back off).
  absl::Status CheckHealth(const CallOptions& options) override;
  absl::string_view Name() const override { return "postgres"; }
  // last_value of cachecar_version_seq.
  absl::StatusOr<uint64_t> LatestVersion(const CallOptions& options) override;
  // clock_timestamp().
  absl::StatusOr<absl::Time> ServerTime(const CallOptions& options) override;
  // cachecar_outbox: relayed by the lease holders, retired by writers.
  Outbox* outbox() override;

  // Deletes tombstones past tombstone_retention (and, with
  // prune_outbox_after, old outbox rows); returns how many rows. Runs every
  // minute on a background thread; public for tests.
  absl::StatusOr<uint64_t> CleanupTombstones();

  struct Impl;

 private:
  explicit PostgresStore(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_POSTGRES_POSTGRES_STORE_H_
