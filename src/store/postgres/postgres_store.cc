// See postgres_store.h.
#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <array>
#include <atomic>
#include <random>
#include <thread>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "common/redact.h"
#include "pqxx/binarystring"
#include "pqxx/nontransaction"
#include "pqxx/result"
#include "pqxx/row"
#include "pqxx/transaction"
#include "spdlog/spdlog.h"
#include "store/outcome.h"
#include "store/postgres/connection_pool.h"
#include "store/postgres/dsn.h"
#include "store/postgres/pg_errors.h"
#include "store/postgres/postgres_outbox.h"
#include "store/postgres/postgres_scan.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store {

using postgres::CallKind;
using postgres::SchemaOptions;
using postgres::TableMapping;

namespace {

enum Stmt {
  kLoad,
  kLoadBatch,
  kPut,
  kPutIfAbsent,
  kPutIfVersion,
  kRemove,
  kRemoveIfVersion,
  kStmtCount
};
constexpr std::array<const char*, kStmtCount> kStmtNames = {
    "load", "load_batch", "put", "put_if_absent", "put_if_version", "remove", "remove_if_version"};
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

Table MakeTable(const TableMapping& mapping, size_t index) {
  const postgres::TableStatements s = postgres::StatementsFor(mapping);
  Table t{mapping,
          {s.load, s.load_batch, s.put, s.put_if_absent, s.put_if_version, s.remove,
           s.remove_if_version},
          {}};
  for (int i = 0; i < kStmtCount; ++i)
    t.names[i] = absl::StrCat("cachecar_t", index, "_", kStmtNames[i]);
  return t;
}

absl::Status CheckKey(absl::string_view key) {
  if (key.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        "keys may not contain NUL bytes when the store is postgres (PostgreSQL text cannot "
        "hold them)");
  }
  return absl::OkStatus();
}

// Answer rows are (key text, found bool, value bytea, version bigint): the
// live row and the tombstone, either or both.
void Absorb(const pqxx::row& row, Record& record) {
  const bool found = row[1].as<bool>();
  const uint64_t version = static_cast<uint64_t>(row[3].as<int64_t>());
  if (found) {
    record.found = true;
    record.value = pqxx::binarystring(row[2]).str();
    record.version = version;
  } else if (!record.found) {
    record.version = version;
  }
}

}  // namespace

struct PostgresStore::Impl {
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
                                         uint64_t deleted_at) {
    pqxx::work tx(c);
    std::optional<uint64_t> written = PutIfDeletedAtIn(tx, t, ns, k, v, deleted_at);
    if (written.has_value()) tx.commit();
    return written;
  }
  // The same inside the caller's transaction (which it commits or not).
  std::optional<uint64_t> PutIfDeletedAtIn(pqxx::transaction_base& tx, const Table& t,
                                           absl::string_view ns, const std::string& k,
                                           const pqxx::binarystring& v, uint64_t deleted_at) {
    const pqxx::result tomb =
        tx.exec_params(absl::StrCat("SELECT version FROM ", postgres::kTombstoneTable,
                                    " WHERE \"namespace\" = $1 AND \"key\" = $2 FOR UPDATE"),
                       std::string(ns), k);
    if (tomb.empty() || static_cast<uint64_t>(tomb[0][0].as<int64_t>()) != deleted_at) {
      return std::nullopt;
    }
    const pqxx::result r = ExecIn(tx, t, kPutIfAbsent, ns, k, v);
    if (r.empty()) return std::nullopt;
    return static_cast<uint64_t>(r[0][0].as<int64_t>());
  }

  // One write of a batch inside its transaction: the statements Put and
  // Delete use, with the same precondition rules.
  absl::StatusOr<BatchWriteResult> WriteIn(pqxx::transaction_base& tx, const Table& t,
                                           absl::string_view ns, const BatchWrite& w) {
    const std::string& k = w.key;
    const Precondition& p = w.precondition;
    const bool if_version = p.kind == Precondition::Kind::kIfVersion;
    if (!w.is_delete) {
      const pqxx::binarystring v(w.value.data(), w.value.size());
      const bool if_absent =
          p.kind == Precondition::Kind::kIfAbsent || (if_version && p.version == 0);
      pqxx::result r;
      if (p.kind == Precondition::Kind::kNone) {
        r = ExecIn(tx, t, kPut, ns, k, v);
      } else if (if_absent) {
        r = ExecIn(tx, t, kPutIfAbsent, ns, k, v);
      } else {
        r = ExecIn(tx, t, kPutIfVersion, ns, k, v, static_cast<int64_t>(p.version));
      }
      if (!r.empty()) return BatchWriteResult{static_cast<uint64_t>(r[0][0].as<int64_t>()), false};
      Record now = LoadIn(tx, ns, k);
      if (p.kind == Precondition::Kind::kIfAbsent) {
        return NotAbsentError(k, now.found ? now.version : 0);
      }
      if (!now.found && now.version == p.version && !if_absent) {
        if (std::optional<uint64_t> written = PutIfDeletedAtIn(tx, t, ns, k, v, p.version)) {
          return BatchWriteResult{*written, false};
        }
        now = LoadIn(tx, ns, k);
      }
      return VersionMismatchError(k, p.version, now.version, !now.found && now.version != 0);
    }
    for (int attempt = 0; attempt < 3; ++attempt) {
      if (!if_version || p.version != 0) {
        const pqxx::result r =
            if_version ? ExecIn(tx, t, kRemoveIfVersion, ns, k, static_cast<int64_t>(p.version))
                       : ExecIn(tx, t, kRemove, ns, k);
        if (!r.empty()) return BatchWriteResult{static_cast<uint64_t>(r[0][0].as<int64_t>()), true};
      }
      const Record now = LoadIn(tx, ns, k);
      const bool matches = !if_version || (now.found ? p.version == now.version
                                                     : p.version == 0 || p.version == now.version);
      if (!matches) {
        return VersionMismatchError(k, p.version, now.version, !now.found && now.version != 0);
      }
      if (!now.found) return BatchWriteResult{now.version, false};
    }
    return absl::AbortedError("the key kept being re-inserted while deleting it; retry the batch");
  }

  Record LoadIn(pqxx::transaction_base& tx, absl::string_view ns, absl::string_view key) {
    const Table& t = TableFor(ns);
    const std::string k(key);
    Record record;
    for (const pqxx::row& row : ExecIn(tx, t, kLoad, ns, k, k)) Absorb(row, record);
    return record;
  }

  // Runs `fn(connection)` with a pooled connection, mapping exceptions and
  // retrying what is safe to retry: statements the server rolled back
  // (serialization failure, deadlock), and reads that met a dead connection.
  template <typename Fn>
  auto Run(CallKind kind, const CallOptions& call, Fn fn)
      -> decltype(fn(std::declval<pqxx::connection&>())) {
    if (!ready.load(std::memory_order_acquire)) return NotReady();
    const absl::Time deadline = std::min(call.deadline, absl::Now() + options.query_timeout);
    absl::Status last;
    for (int attempt = 0; attempt < kMaxAttempts; ++attempt) {
      absl::StatusOr<postgres::ConnectionPool::Lease> lease = pool->Acquire(deadline);
      if (!lease.ok()) return lease.status();
      try {
        return fn(lease->conn());
      } catch (...) {
        const bool cancelled = lease->cancelled();
        postgres::Failure f = postgres::ClassifyCurrentException(kind, cancelled, password);
        if (f.connection_lost || cancelled) lease->Discard();
        const bool retry_read = kind == CallKind::kRead && f.connection_lost && !lease->fresh();
        if (!(f.retryable || retry_read) || absl::Now() >= deadline) return f.status;
        last = f.status;
      }
      if (attempt > 0 && attempt + 1 < kMaxAttempts) {
        // Jittered (0.5-1.5 x) so racing writers do not collide again.
        thread_local std::minstd_rand jitter(std::random_device{}());
        const absl::Duration pause =
            std::min(kRetryBackoffMax, kRetryBackoff * (1 << std::min(attempt - 1, 10))) *
            (0.5 + (jitter() % 1000) / 1000.0);
        if (absl::Now() + pause >= deadline) return last;
        absl::SleepFor(pause);
      }
    }
    return last;
  }

  absl::StatusOr<Record> LoadOn(pqxx::connection& c, absl::string_view ns, absl::string_view key) {
    pqxx::nontransaction tx(c);
    Record record = LoadIn(tx, ns, key);
    tx.commit();
    return record;
  }

  void MaintenanceLoop() {
    while (!stop.WaitForNotificationWithTimeout(kCleanupEvery)) {
      absl::StatusOr<uint64_t> n = Cleanup();
      if (!n.ok()) {
        spdlog::debug("postgres: tombstone cleanup: {}", std::string(n.status().message()));
      } else if (*n > 0) {
        spdlog::debug("postgres: deleted {} expired tombstone/outbox rows", *n);
      }
    }
  }

  absl::StatusOr<uint64_t> Cleanup() {
    return Run(
        CallKind::kWrite, CallOptions{}, [&](pqxx::connection& c) -> absl::StatusOr<uint64_t> {
          pqxx::nontransaction tx(c);
          uint64_t deleted =
              tx.exec_params(postgres::kTombstoneCleanupQuery,
                             absl::ToDoubleSeconds(options.tombstone_retention), kCleanupBatch)
                  .affected_rows();
          if (options.prune_outbox_after > absl::ZeroDuration()) {
            deleted +=
                tx.exec_params(postgres::kOutboxPruneQuery,
                               absl::ToDoubleSeconds(options.prune_outbox_after), kCleanupBatch)
                    .affected_rows();
          }
          tx.commit();
          return deleted;
        });
  }
};

namespace {

// Fills mapped tables' value types from the catalog and checks every table.
// `after_migration`: also require the triggers.
absl::Status InspectSchema(pqxx::connection& c, SchemaOptions& schema, bool require_triggers) {
  pqxx::nontransaction tx(c);
  auto column_type = [&tx](const std::string& table, const std::string& column) {
    const pqxx::result r =
        tx.exec_params(postgres::kColumnTypeQuery, postgres::QuoteName(table), column);
    return r.empty() ? std::string() : r[0][0].as<std::string>();
  };
  auto check_table = [&](const TableMapping& m, const std::string& who) -> absl::Status {
    const std::string table = postgres::QuoteName(m.table);
    if (tx.exec_params("SELECT to_regclass($1) IS NOT NULL", table)[0][0].as<bool>() == false) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": table ", m.table, " does not exist",
                       m.shared() ? absl::StrCat("; ", postgres::kMigrateHint) : std::string()));
    }
    for (const std::string& column : {m.key_column, m.value_column}) {
      if (column_type(m.table, column).empty()) {
        return absl::FailedPreconditionError(
            absl::StrCat(who, ": table ", m.table, " has no column ", column));
      }
    }
    if (tx.exec_params(postgres::kUniqueColumnQuery, table, m.key_column).empty() && !m.shared()) {
      return absl::FailedPreconditionError(
          absl::StrCat(who, ": key column ", m.key_column, " of table ", m.table,
                       " needs a PRIMARY KEY or UNIQUE constraint of its own"));
    }
    if (require_triggers) {
      if (column_type(m.table, m.version_column).empty() ||
          tx.exec_params(postgres::kTriggerCountQuery, table).size() != 4) {
        return absl::FailedPreconditionError(absl::StrCat(
            who, ": table ", m.table, " lacks the cachecar version column or triggers; ",
            postgres::kMigrateHint));
      }
    }
    return absl::OkStatus();
  };
  if (require_triggers) {
    for (const char* object : {postgres::kVersionSequence, postgres::kTombstoneTable,
                               postgres::kOutboxTable, postgres::kRelayLeaseTable}) {
      if (!tx.exec_params("SELECT to_regclass($1) IS NOT NULL", object)[0][0].as<bool>()) {
        return absl::FailedPreconditionError(
            absl::StrCat(object, " does not exist; ", postgres::kMigrateHint));
      }
    }
    if (column_type(postgres::kOutboxTable, "announced").empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(postgres::kOutboxTable, " predates this cachecar (no announced column); ",
                       postgres::kMigrateHint));
    }
    if (absl::Status s = check_table(TableMapping::Shared(schema.shared_table), "postgres_table");
        !s.ok()) {
      return s;
    }
  }
  for (TableMapping& m : schema.mapped) {
    if (absl::Status s = check_table(m, absl::StrCat("namespace ", m.ns)); !s.ok()) return s;
    m.value_type = column_type(m.table, m.value_column);
  }
  return absl::OkStatus();
}

absl::Status CheckOptions(const PostgresOptions& options) {
  if (absl::Status s = postgres::CheckMapping(TableMapping::Shared(options.schema.shared_table));
      !s.ok()) {
    return s;
  }
  for (const TableMapping& m : options.schema.mapped) {
    if (absl::Status s = postgres::CheckMapping(m); !s.ok()) return s;
  }
  return absl::OkStatus();
}

// Connects once, outside the pool, for start-up work; scrubbed errors.
template <typename Fn>
absl::Status WithStartupConnection(const PostgresOptions& options, Fn fn) {
  const std::string password = DsnPassword(options.dsn);
  try {
    pqxx::connection c(postgres::WithConnectionDefaults(options.dsn, options.connect_timeout));
    return fn(c);
  } catch (const pqxx::broken_connection& e) {
    return absl::UnavailableError(
        ScrubSecret(absl::StrCat("cannot connect to PostgreSQL (", RedactDsn(options.dsn),
                                 "): ", postgres::FirstLine(e.what())),
                    password));
  } catch (...) {
    return postgres::ClassifyCurrentException(CallKind::kRead, false, password).status;
  }
}

absl::Status RunMigration(pqxx::connection& c, SchemaOptions& schema) {
  if (absl::Status s = InspectSchema(c, schema, /*require_triggers=*/false); !s.ok()) return s;
  pqxx::work tx(c);
  tx.exec0("SET LOCAL client_min_messages = warning");
  for (const std::string& statement : postgres::MigrationStatements(schema)) tx.exec(statement);
  tx.commit();
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::vector<std::string>> PostgresStore::Migrate(const PostgresOptions& options) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  SchemaOptions schema = options.schema;
  absl::Status status = WithStartupConnection(options, [&](pqxx::connection& c) {
    if (absl::Status s = RunMigration(c, schema); !s.ok()) return s;
    return InspectSchema(c, schema, /*require_triggers=*/true);
  });
  if (!status.ok()) return status;
  std::vector<std::string> summary = {
      absl::StrCat("shared table ", schema.shared_table,
                   " (namespaces without a table of their own), ", postgres::kTombstoneTable, ", ",
                   postgres::kOutboxTable, ", ", postgres::kVersionSequence, ": ready")};
  for (const TableMapping& m : schema.mapped) {
    summary.push_back(absl::StrCat("namespace ", m.ns, ": table ", m.table, " key ", m.key_column,
                                   " value ", m.value_column, " (", m.value_type, ") version ",
                                   m.version_column, ": ready"));
  }
  return summary;
}

absl::Status PostgresStore::Impl::ConnectOnce() {
  SchemaOptions schema = options.schema;
  absl::Status status = WithStartupConnection(options, [&](pqxx::connection& c) {
    if (migrate) {
      if (absl::Status s = RunMigration(c, schema); !s.ok()) return s;
    }
    return InspectSchema(c, schema, /*require_triggers=*/true);
  });
  if (!status.ok()) return status;
  shared = MakeTable(TableMapping::Shared(schema.shared_table), 0);
  mapped.reserve(schema.mapped.size());
  for (const TableMapping& m : schema.mapped) mapped.push_back(MakeTable(m, mapped.size() + 1));
  for (const Table& t : mapped) by_namespace[t.mapping.ns] = &t;

  postgres::PoolOptions pool_options;
  pool_options.dsn = dsn;
  pool_options.password = password;
  pool_options.size = options.pool_size;
  if (options.prepared_statements) {
    pool_options.on_connect = [this](pqxx::connection& c) {
      auto prepare = [&c](const Table& t) {
        for (int i = 0; i < kStmtCount; ++i) c.prepare(t.names[i], t.sql[i]);
      };
      prepare(shared);
      for (const Table& t : mapped) prepare(t);
    };
  }
  pool = std::make_unique<postgres::ConnectionPool>(std::move(pool_options));
  ready.store(true, std::memory_order_release);
  return absl::OkStatus();
}

void PostgresStore::Impl::Background() {
  absl::Duration backoff = kFirstRetry;
  std::string logged;
  while (!stop.HasBeenNotified()) {
    absl::Status s = ConnectOnce();
    if (s.ok()) {
      if (!logged.empty()) spdlog::info("postgres: connected, schema ready; the store is usable");
      first_attempt.Notify();
      break;
    }
    const bool schema = s.code() == absl::StatusCode::kFailedPrecondition;
    const absl::Duration wait = schema ? kSchemaRetry : backoff;
    absl::Status why =
        schema ? absl::FailedPreconditionError(absl::StrCat(
                     "the PostgreSQL schema is not ready: ", s.message(),
                     " (cachecar checks again every ", absl::FormatDuration(kSchemaRetry), ")"))
               : absl::Status(s.code(), absl::StrCat("PostgreSQL is not reachable: ", s.message(),
                                                     "; cachecar keeps retrying"));
    {
      MutexLock lock(&mu);
      not_ready = why;
    }
    if (logged != s.message()) {
      spdlog::warn(
          "postgres: {}; retrying every {} (up to {}) meanwhile calls that need the "
          "store are {}",
          std::string(s.message()), absl::FormatDuration(wait),
          absl::FormatDuration(schema ? kSchemaRetry : kMaxRetry),
          absl::StatusCodeToString(why.code()));
      logged = std::string(s.message());
    }
    first_attempt.Notify();
    if (!schema) backoff = std::min(backoff * 2, kMaxRetry);
    stop.WaitForNotificationWithTimeout(wait);
  }
  MaintenanceLoop();
}

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(PostgresOptions options,
                                                                   bool migrate) {
  if (absl::Status s = CheckOptions(options); !s.ok()) return s;
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  impl->migrate = migrate;
  impl->password = DsnPassword(options.dsn);
  impl->dsn = postgres::WithConnectionDefaults(options.dsn, options.connect_timeout);
  Impl* raw = impl.get();
  impl->outbox = std::make_unique<postgres::PostgresOutbox>(
      [raw] { return raw->Pool(); }, impl->dsn, impl->password, options.query_timeout);
  impl->background = std::thread([raw] { raw->Background(); });
  // The usual case (PostgreSQL up) is ready before the first call.
  raw->first_attempt.WaitForNotificationWithTimeout(options.first_connect_wait);
  return std::unique_ptr<PostgresStore>(new PostgresStore(std::move(impl)));
}

absl::Status PostgresStore::WaitUntilReady(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  while (!impl_->ready.load(std::memory_order_acquire)) {
    if (absl::Now() >= until) return impl_->NotReady();
    absl::SleepFor(absl::Milliseconds(20));
  }
  return absl::OkStatus();
}

PostgresStore::PostgresStore(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

PostgresStore::~PostgresStore() {
  impl_->stop.Notify();
  impl_->background.join();
}

absl::StatusOr<uint64_t> PostgresStore::CleanupTombstones() { return impl_->Cleanup(); }

Outbox* PostgresStore::outbox() { return impl_->outbox.get(); }

absl::StatusOr<uint64_t> PostgresStore::LatestVersion(const CallOptions& options) {
  return impl_->Run(CallKind::kRead, options, [](pqxx::connection& c) -> absl::StatusOr<uint64_t> {
    pqxx::nontransaction tx(c);
    const pqxx::result r =
        tx.exec("SELECT CASE WHEN is_called THEN last_value ELSE 0 END FROM cachecar_version_seq");
    return static_cast<uint64_t>(r[0][0].as<int64_t>());
  });
}

absl::StatusOr<absl::Time> PostgresStore::ServerTime(const CallOptions& options) {
  return impl_->Run(CallKind::kRead, options,
                    [](pqxx::connection& c) -> absl::StatusOr<absl::Time> {
                      pqxx::nontransaction tx(c);
                      const pqxx::result r =
                          tx.exec("SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8");
                      return absl::FromUnixMicros(r[0][0].as<int64_t>());
                    });
}

absl::StatusOr<StoreStats> PostgresStore::Stats(const CallOptions& options) {
  return impl_->Run(
      CallKind::kRead, options, [](pqxx::connection& c) -> absl::StatusOr<StoreStats> {
        pqxx::nontransaction tx(c);
        const pqxx::result r = tx.exec(
            "SELECT count(*), coalesce(extract(epoch FROM now() - min(created_at)), 0) "
            "FROM cachecar_outbox");
        StoreStats stats;
        stats.outbox_rows = r[0][0].as<uint64_t>();
        stats.outbox_oldest_age_seconds = r[0][1].as<double>();
        return stats;
      });
}

absl::Status PostgresStore::CheckHealth(const CallOptions& options) {
  absl::StatusOr<bool> up =
      impl_->Run(CallKind::kRead, options, [](pqxx::connection& c) -> absl::StatusOr<bool> {
        pqxx::nontransaction tx(c);
        tx.exec("SELECT 1");
        return true;
      });
  return up.status();
}

absl::StatusOr<Record> PostgresStore::Load(absl::string_view ns, absl::string_view key,
                                           const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) { return impl_->LoadOn(c, ns, key); });
}

absl::StatusOr<std::vector<Record>> PostgresStore::LoadBatch(absl::string_view ns,
                                                             const std::vector<std::string>& keys,
                                                             const CallOptions& options) {
  for (const std::string& key : keys) {
    if (absl::Status s = CheckKey(key); !s.ok()) return s;
  }
  if (keys.empty()) return std::vector<Record>{};
  const std::string array = postgres::TextArrayLiteral(keys);
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<Record>> {
                      const Table& t = impl_->TableFor(ns);
                      absl::flat_hash_map<std::string, Record> found;
                      for (const pqxx::row& row : impl_->Exec(c, t, kLoadBatch, ns, array, array)) {
                        Absorb(row, found[row[0].as<std::string>()]);
                      }
                      std::vector<Record> out;
                      out.reserve(keys.size());
                      for (const std::string& key : keys) {
                        auto it = found.find(key);
                        out.push_back(it == found.end() ? Record{} : it->second);
                      }
                      return out;
                    });
}

absl::StatusOr<std::vector<std::string>> PostgresStore::ScanKeys(absl::string_view ns,
                                                                 absl::string_view after,
                                                                 size_t limit,
                                                                 const CallOptions& options) {
  return impl_->Run(CallKind::kRead, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<std::string>> {
                      return postgres::ScanKeysOn(c, impl_->TableFor(ns).mapping, ns, after, limit);
                    });
}

absl::StatusOr<uint64_t> PostgresStore::Put(absl::string_view ns, absl::string_view key,
                                            absl::string_view value, Precondition precondition,
                                            const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string k(key);
  const pqxx::binarystring v(value.data(), value.size());
  // if_version 0 means "absent" (a version names a live value; absent is 0).
  const bool if_absent =
      precondition.kind == Precondition::Kind::kIfAbsent ||
      (precondition.kind == Precondition::Kind::kIfVersion && precondition.version == 0);
  return impl_->Run(CallKind::kWrite, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<uint64_t> {
                      const Table& t = impl_->TableFor(ns);
                      pqxx::result r;
                      if (precondition.kind == Precondition::Kind::kNone) {
                        r = impl_->Exec(c, t, kPut, ns, k, v);
                      } else if (if_absent) {
                        r = impl_->Exec(c, t, kPutIfAbsent, ns, k, v);
                      } else {
                        r = impl_->Exec(c, t, kPutIfVersion, ns, k, v,
                                        static_cast<int64_t>(precondition.version));
                      }
                      if (!r.empty()) return static_cast<uint64_t>(r[0][0].as<int64_t>());
                      // The precondition failed: say what is there now.
                      absl::StatusOr<Record> now = impl_->LoadOn(c, ns, key);
                      if (!now.ok()) return now.status();
                      const uint64_t live = now->found ? now->version : 0;
                      if (precondition.kind == Precondition::Kind::kIfAbsent)
                        return NotAbsentError(key, live);
                      // A key deleted at exactly that version (what Get
                      // reports for it): a read-modify-write of a deleted key.
                      if (!now->found && now->version == precondition.version && !if_absent) {
                        if (std::optional<uint64_t> written =
                                impl_->PutIfDeletedAt(c, t, ns, k, v, precondition.version)) {
                          return *written;
                        }
                        now = impl_->LoadOn(c, ns, key);
                        if (!now.ok()) return now.status();
                      }
                      return VersionMismatchError(key, precondition.version, now->version,
                                                  !now->found && now->version != 0);
                    });
}

absl::StatusOr<std::vector<BatchWriteResult>> PostgresStore::WriteBatch(
    absl::string_view ns, const std::vector<BatchWrite>& writes, const CallOptions& options) {
  for (const BatchWrite& w : writes) {
    if (absl::Status s = CheckKey(w.key); !s.ok()) return s;
  }
  // Rows are locked in key order, so two batches over the same keys cannot
  // deadlock each other.
  std::vector<size_t> order(writes.size());
  for (size_t i = 0; i < order.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(),
            [&writes](size_t a, size_t b) { return writes[a].key < writes[b].key; });
  return impl_->Run(CallKind::kWrite, options,
                    [&](pqxx::connection& c) -> absl::StatusOr<std::vector<BatchWriteResult>> {
                      const Table& t = impl_->TableFor(ns);
                      pqxx::work tx(c);
                      std::vector<BatchWriteResult> out(writes.size());
                      for (size_t i : order) {
                        absl::StatusOr<BatchWriteResult> r = impl_->WriteIn(tx, t, ns, writes[i]);
                        if (!r.ok()) return InBatchWrite(i, r.status());  // rolled back
                        out[i] = *r;
                      }
                      tx.commit();
                      return out;
                    });
}

absl::StatusOr<DeleteResult> PostgresStore::Delete(absl::string_view ns, absl::string_view key,
                                                   std::optional<uint64_t> if_version,
                                                   const CallOptions& options) {
  if (absl::Status s = CheckKey(key); !s.ok()) return s;
  const std::string k(key);
  return impl_->Run(
      CallKind::kWrite, options, [&](pqxx::connection& c) -> absl::StatusOr<DeleteResult> {
        const Table& t = impl_->TableFor(ns);
        // if_version 0 asks "delete only if absent": nothing to delete.
        const bool conditional = if_version.has_value();
        for (int attempt = 0; attempt < 3; ++attempt) {
          if (!conditional || *if_version != 0) {
            const pqxx::result r = conditional ? impl_->Exec(c, t, kRemoveIfVersion, ns, k,
                                                             static_cast<int64_t>(*if_version))
                                               : impl_->Exec(c, t, kRemove, ns, k);
            if (!r.empty()) return DeleteResult{true, static_cast<uint64_t>(r[0][0].as<int64_t>())};
          }
          absl::StatusOr<Record> now = impl_->LoadOn(c, ns, key);
          if (!now.ok()) return now.status();
          // An absent key matches 0 or the version it was deleted at (then
          // there is nothing to delete).
          const bool matches =
              !conditional || (now->found ? *if_version == now->version
                                          : *if_version == 0 || *if_version == now->version);
          if (!matches) {
            return VersionMismatchError(key, *if_version, now->version,
                                        !now->found && now->version != 0);
          }
          if (!now->found) return DeleteResult{false, now->version};
          // Unconditional, and a writer re-inserted the key between our DELETE
          // and the read: delete again.
        }
        return absl::AbortedError(
            absl::StrCat("key kept being re-inserted while deleting it; retry the delete"));
      });
}

}  // namespace cachecar::store
