// See postgres_store.h: connecting, migrating and checking the schema,
// maintenance, and the small reads (latest version, clock, stats, health).
// Load/LoadBatch are in postgres_reads.cc, writes in postgres_writes.cc.
#include "store/postgres/postgres_store.h"

#include <algorithm>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "common/mutex.h"
#include "common/redact.h"
#include "spdlog/spdlog.h"
#include "store/postgres/dsn.h"
#include "store/postgres/postgres_impl.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store {

using postgres::CallKind;
using postgres::SchemaOptions;
using postgres::TableMapping;
using postgres_internal::kCleanupBatch;
using postgres_internal::kCleanupEvery;
using postgres_internal::kFirstRetry;
using postgres_internal::kMaxRetry;
using postgres_internal::kSchemaRetry;
using postgres_internal::kStmtCount;
using postgres_internal::MakeTable;

namespace postgres_internal {

Table MakeTable(const TableMapping& mapping, size_t index) {
  const postgres::TableStatements s = postgres::StatementsFor(mapping);
  Table t{mapping,
          {s.load, s.load_batch, s.put, s.put_if_absent, s.put_if_version, s.remove,
           s.remove_if_version, s.read_versions},
          {}};
  for (int i = 0; i < kStmtCount; ++i)
    t.names[i] = absl::StrCat("cachecar_t", index, "_", kStmtNames[i]);
  return t;
}

}  // namespace postgres_internal

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
          column_type(m.table, m.updated_column).empty() ||
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

absl::StatusOr<std::unique_ptr<PostgresStore>> PostgresStore::Open(const PostgresOptions& options,
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

void PostgresStore::Impl::MaintenanceLoop() {
  while (!stop.WaitForNotificationWithTimeout(kCleanupEvery)) {
    absl::StatusOr<uint64_t> n = Cleanup();
    if (!n.ok()) {
      spdlog::debug("postgres: tombstone cleanup: {}", std::string(n.status().message()));
    } else if (*n > 0) {
      spdlog::debug("postgres: deleted {} expired tombstone/outbox rows", *n);
    }
  }
}

absl::StatusOr<uint64_t> PostgresStore::Impl::Cleanup() {
  return Run(CallKind::kWrite, CallOptions{}, [&](pqxx::connection& c) -> absl::StatusOr<uint64_t> {
    pqxx::nontransaction tx(c);
    uint64_t deleted =
        tx.exec_params(postgres::kTombstoneCleanupQuery,
                       absl::ToDoubleSeconds(options.tombstone_retention), kCleanupBatch)
            .affected_rows();
    if (options.prune_outbox_after > absl::ZeroDuration()) {
      deleted += tx.exec_params(postgres::kOutboxPruneQuery,
                                absl::ToDoubleSeconds(options.prune_outbox_after), kCleanupBatch)
                     .affected_rows();
    }
    tx.commit();
    return deleted;
  });
}

}  // namespace cachecar::store
