// The SQL cachecar runs: the migration (sequence, shared table, tombstones,
// outbox, triggers) and the per-table statements the store prepares. Pure
// string building from checked names, so it is unit-tested without a server.
//
// Schema (see README "PostgreSQL schema"):
//   cachecar_version_seq   one bigint sequence; every write, delete and flush
//                          of every namespace takes its version from it
//   <shared table>         (namespace, key, value bytea, version, updated_at),
//                          PRIMARY KEY (namespace, key); default
//                          "cachecar_entries"
//   <mapped tables>        an application's own table for one namespace: its
//                          key and value columns, plus the cachecar_version
//                          and cachecar_updated_at columns the migration adds
//   cachecar_tombstones    (namespace, key, version, deleted_at): the version
//                          of each deleted key, so absence is versioned too
//   cachecar_outbox        (id, namespace, key, version, op, value, created_at,
//                          announced): one row per change, written by the
//                          triggers in the same transaction as the change;
//                          announced = a cachecar writer made it (and
//                          publishes it itself)
//   cachecar_relay_lease   (slot, holder, expires_at): the leases that let a
//                          few replicas relay the outbox at a time
// Triggers on every table give each write a version and an outbox row, so a
// program writing the table directly (psql, another service) is seen too.
// cachecar's own write statements set kWriterSetting for their transaction;
// the triggers copy it into the outbox row (`announced`) and NOTIFY the
// relays only for rows without it, which nobody else will publish.
#ifndef CACHECAR_STORE_POSTGRES_SCHEMA_H_
#define CACHECAR_STORE_POSTGRES_SCHEMA_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"

namespace cachecar::store::postgres {

inline constexpr const char kVersionSequence[] = "cachecar_version_seq";
inline constexpr const char kTombstoneTable[] = "cachecar_tombstones";
inline constexpr const char kOutboxTable[] = "cachecar_outbox";
inline constexpr const char kOutboxChannel[] = "cachecar_outbox";
inline constexpr const char kMappedVersionColumn[] = "cachecar_version";
// When a mapped table's row got its version (the shared table has
// updated_at): what the staleness auditor judges a version's age by.
inline constexpr const char kMappedUpdatedColumn[] = "cachecar_updated_at";
inline constexpr const char kRelayLeaseTable[] = "cachecar_relay_lease";
inline constexpr int kRelayLeaseSlots = 16;  // outbox_relays is at most this
// Set ('on') for its transaction by every cachecar write statement.
inline constexpr const char kWriterSetting[] = "cachecar.writer";
// Where the delete trigger leaves the version it gave a deleted row, for the
// DELETE statement's RETURNING clause (transaction-local).
inline constexpr const char kDeletedVersionSetting[] = "cachecar.deleted_version";

// Where one namespace's rows live.
struct TableMapping {
  std::string ns;     // a mapped table's namespace; "" for the shared table
  std::string table;  // "cachecar_entries", "users" or "app.users"
  std::string key_column = "key";
  std::string value_column = "value";
  std::string version_column = "version";
  // timestamptz, set to now() by every write (the triggers, cachecar's own
  // statements): when the row's version was written.
  std::string updated_column = "updated_at";
  // Filled from the catalog for mapped tables: the value column's type
  // ("bytea", "text", "jsonb", ...). Non-bytea values travel as UTF-8 text.
  std::string value_type = "bytea";

  bool shared() const { return ns.empty(); }
  bool value_is_bytea() const { return value_type == "bytea"; }

  static TableMapping Shared(std::string table);
  static TableMapping Mapped(std::string ns, std::string table, std::string key_column,
                             std::string value_column);
};

// Checks every configured name (tables, columns) before any SQL is built.
absl::Status CheckMapping(const TableMapping& mapping);

struct SchemaOptions {
  std::string shared_table = "cachecar_entries";
  // Outbox rows carry the value when it is at most this long.
  uint32_t outbox_inline_max_bytes = 1024;
  std::vector<TableMapping> mapped;  // value_type filled from the catalog
};

// The migration, in order, meant for one transaction. Idempotent: running it
// again changes nothing but the trigger functions' text.
std::vector<std::string> MigrationStatements(const SchemaOptions& options);

// The statements the store prepares for one table. Parameters, in order:
//   shared table: $1 namespace, then the ones below shifted by one
//   load:              key, key as text
//   load_batch:        keys array, keys as text[]
//     (both answer rows of: key text, found bool, value bytea, version bigint)
//   put, put_if_absent: key, value bytea          → version
//   put_if_version:     key, value bytea, version → version
//   remove:             key                       → delete version
//   remove_if_version:  key, version              → delete version
//   read_versions:      keys array, keys as text[]
//     (rows of: store clock now in µs int8, then key text, found bool,
//     version bigint, written in µs int8 since the epoch, or NULLs when no
//     key has a row: always one row at least)
struct TableStatements {
  std::string load;
  std::string load_batch;
  std::string put;
  std::string put_if_absent;
  std::string put_if_version;
  std::string remove;
  std::string remove_if_version;
  std::string read_versions;
};
TableStatements StatementsFor(const TableMapping& mapping);

// Catalog queries ($1 table name as given, quoted; $2 column name).
// → (format_type text) of the column, no row if the table or column is missing.
extern const char kColumnTypeQuery[];
// → one row if the column alone has a non-partial unique index.
extern const char kUniqueColumnQuery[];
// → one row per cachecar trigger on the table ($1 only).
extern const char kTriggerCountQuery[];
// Deletes tombstones older than $1 seconds, at most $2 at a time.
extern const char kTombstoneCleanupQuery[];
// Deletes outbox rows older than $1 seconds, at most $2 at a time (only when
// nothing relays the outbox: no sync topic configured).
extern const char kOutboxPruneQuery[];

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_SCHEMA_H_
