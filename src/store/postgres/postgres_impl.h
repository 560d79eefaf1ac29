// PostgresStore's insides, shared by the files of the adapter (not part of
// its interface): the prepared statements of a table, the Impl every call
// goes through (its pool, its table mappings, and Run, which maps libpqxx's
// exceptions to absl::Status and retries what is safe to retry).
//   postgres_store.cc   connecting, migrating, maintenance, small reads
//   postgres_reads.cc   Load, LoadBatch, ReadVersions
//   postgres_writes.cc  Put, Delete, WriteBatch
//
// Thread-safety: as PostgresStore (Impl is shared by every calling thread;
// what it holds is set once before `ready` turns true).
#ifndef CACHECAR_STORE_POSTGRES_POSTGRES_IMPL_H_
#define CACHECAR_STORE_POSTGRES_POSTGRES_IMPL_H_

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "pqxx/binarystring"
#include "pqxx/nontransaction"
#include "pqxx/result"
#include "pqxx/row"
#include "pqxx/transaction"
#include "store/postgres/connection_pool.h"
#include "store/postgres/pg_errors.h"
#include "store/postgres/postgres_outbox.h"
#include "store/postgres/postgres_store.h"

namespace cachecar::store {
namespace postgres_internal {

using postgres::TableMapping;

enum Stmt {
  kLoad,
  kLoadBatch,
  kPut,
  kPutIfAbsent,
  kPutIfVersion,
  kRemove,
  kRemoveIfVersion,
  kReadVersions,
  kStmtCount
};
constexpr std::array<const char*, kStmtCount> kStmtNames = {
    "load",   "load_batch",        "put",          "put_if_absent", "put_if_version",
    "remove", "remove_if_version", "read_versions"};
// First try + retries of server-side rollbacks (serialization failures,
// deadlocks: nothing was applied, always safe to retry), with a jittered
// backoff from kRetryBackoff doubling to kRetryBackoffMax, within the
// call's deadline. Many writers of one hot key (a Delete racing Puts, the
// insert trigger's tombstone check) can lose several times in a row.
constexpr int kMaxAttempts = 10;
constexpr absl::Duration kRetryBackoff = absl::Microseconds(200);
constexpr absl::Duration kRetryBackoffMax = absl::Milliseconds(20);
constexpr absl::Duration kCleanupEvery = absl::Minutes(1);
constexpr int kCleanupBatch = 10000;
// Connecting in the background: the first retry, the most between retries
// while PostgreSQL is away, and the period of schema checks.
constexpr absl::Duration kFirstRetry = absl::Milliseconds(100);
constexpr absl::Duration kMaxRetry = absl::Seconds(5);
constexpr absl::Duration kSchemaRetry = absl::Seconds(5);

// One table's statements, with their prepared names.
struct Table {
  TableMapping mapping;
  std::array<std::string, kStmtCount> sql;
  std::array<std::string, kStmtCount> names;
};

Table MakeTable(const postgres::TableMapping& mapping, size_t index);

// INVALID_ARGUMENT for keys PostgreSQL text cannot hold.
absl::Status CheckKey(absl::string_view key);

// Answer rows are (key text, found bool, value bytea, version bigint): the
// live row and the tombstone, either or both.
void Absorb(const pqxx::row& row, Record& record);

}  // namespace postgres_internal

struct PostgresStore::Impl {
  using Table = postgres_internal::Table;
  using Stmt = postgres_internal::Stmt;
  PostgresOptions options;
  bool migrate = false;
  std::string password;
  std::string dsn;  // with defaults
  // Set once by the background thread when the schema checks out, before
  // `ready` turns true; read-only from then on.
  Table shared;
  std::vector<Table> mapped;
  absl::flat_hash_map<std::string, const Table*> by_namespace;
  std::unique_ptr<postgres::ConnectionPool> pool;
  std::atomic<bool> ready{false};
  std::unique_ptr<postgres::PostgresOutbox> outbox;  // uses pool once ready

  // Why the store is not ready (while `ready` is false).
  mutable Mutex mu;
  absl::Status not_ready ABSL_GUARDED_BY(mu) =
      absl::UnavailableError("cachecar has not connected to PostgreSQL yet");
  Notification first_attempt;  // the background thread tried once
  Notification stop;
  std::thread background;

  absl::Status NotReady() const {
    MutexLock lock(&mu);
    return not_ready;
  }
  absl::StatusOr<postgres::ConnectionPool*> Pool() const {
    if (!ready.load(std::memory_order_acquire)) return NotReady();
    return pool.get();
  }

  // Connects (migrating first if asked), checks the schema and builds the
  // tables and the pool; retried with backoff until it works, so a
  // replica started while PostgreSQL is down, or before `cachecar
  // migrate`, becomes useful by itself. Then runs the maintenance.
  void Background();
  absl::Status ConnectOnce();

  const Table& TableFor(absl::string_view ns) const {
    auto it = by_namespace.find(ns);
    return it == by_namespace.end() ? shared : *it->second;
  }

  template <typename... Args>
  pqxx::result Exec(pqxx::connection& c, const Table& t, Stmt s, absl::string_view ns,
                    Args&&... args) {
    pqxx::nontransaction tx(c);
    pqxx::result r = ExecIn(tx, t, s, ns, std::forward<Args>(args)...);
    tx.commit();
    return r;
  }

  // One of a table's statements inside the caller's transaction.
  template <typename... Args>
  pqxx::result ExecIn(pqxx::transaction_base& tx, const Table& t, Stmt s, absl::string_view ns,
                      Args&&... args) {
    pqxx::result r;
    if (t.mapping.shared()) {
      r = options.prepared_statements
              ? tx.exec_prepared(t.names[s], std::string(ns), std::forward<Args>(args)...)
              : tx.exec_params(t.sql[s], std::string(ns), std::forward<Args>(args)...);
    } else {
      r = options.prepared_statements ? tx.exec_prepared(t.names[s], std::forward<Args>(args)...)
                                      : tx.exec_params(t.sql[s], std::forward<Args>(args)...);
    }
    return r;
  }

  // Writes a key that is absent at exactly `deleted_at` (its tombstone's
  // version): in one transaction, locks the tombstone (so no delete of a
  // re-inserted key can move it meanwhile), checks its version, and inserts
  // only if no row exists. nullopt: the key is not absent at that version.
  std::optional<uint64_t> PutIfDeletedAt(pqxx::connection& c, const Table& t, absl::string_view ns,
                                         const std::string& k, const pqxx::binarystring& v,
                                         uint64_t deleted_at);
  // The same inside the caller's transaction (which it commits or not).
  std::optional<uint64_t> PutIfDeletedAtIn(pqxx::transaction_base& tx, const Table& t,
                                           absl::string_view ns, const std::string& k,
                                           const pqxx::binarystring& v, uint64_t deleted_at);

  // One write of a batch inside its transaction: the statements Put and
  // Delete use, with the same precondition rules.
  absl::StatusOr<BatchWriteResult> WriteIn(pqxx::transaction_base& tx, const Table& t,
                                           absl::string_view ns, const BatchWrite& w);

  Record LoadIn(pqxx::transaction_base& tx, absl::string_view ns, absl::string_view key);

  // Runs `fn(connection)` with a pooled connection, mapping exceptions and
  // retrying what is safe to retry: statements the server rolled back
  // (serialization failure, deadlock), and reads that met a dead connection.
  template <typename Fn>
  auto Run(postgres::CallKind kind, const CallOptions& call, Fn fn)
      -> decltype(fn(std::declval<pqxx::connection&>())) {
    if (!ready.load(std::memory_order_acquire)) return NotReady();
    const absl::Time deadline = std::min(call.deadline, absl::Now() + options.query_timeout);
    absl::Status last;
    for (int attempt = 0; attempt < postgres_internal::kMaxAttempts; ++attempt) {
      absl::StatusOr<postgres::ConnectionPool::Lease> lease = pool->Acquire(deadline);
      if (!lease.ok()) return lease.status();
      try {
        return fn(lease->conn());
      } catch (...) {
        const bool cancelled = lease->cancelled();
        postgres::Failure f = postgres::ClassifyCurrentException(kind, cancelled, password);
        if (f.connection_lost || cancelled) lease->Discard();
        const bool retry_read =
            kind == postgres::CallKind::kRead && f.connection_lost && !lease->fresh();
        if (!(f.retryable || retry_read) || absl::Now() >= deadline) return f.status;
        last = f.status;
      }
      if (attempt > 0 && attempt + 1 < postgres_internal::kMaxAttempts) {
        // Jittered (0.5-1.5 x) so racing writers do not collide again.
        thread_local std::minstd_rand jitter(std::random_device{}());
        const absl::Duration pause =
            std::min(postgres_internal::kRetryBackoffMax,
                     postgres_internal::kRetryBackoff * (1 << std::min(attempt - 1, 10))) *
            (0.5 + (jitter() % 1000) / 1000.0);
        if (absl::Now() + pause >= deadline) return last;
        absl::SleepFor(pause);
      }
    }
    return last;
  }

  absl::StatusOr<Record> LoadOn(pqxx::connection& c, absl::string_view ns, absl::string_view key);

  void MaintenanceLoop();
  absl::StatusOr<uint64_t> Cleanup();
};

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_POSTGRES_POSTGRES_IMPL_H_
