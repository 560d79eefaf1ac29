// See store_factory.h.
#include "cmd/cachecar/store_factory.h"

#include "app/store_policy.h"
#include "store/memory/memory_store.h"
#include "store/postgres/postgres_store.h"

namespace cachecar {
namespace {

store::PostgresOptions PostgresOptionsFrom(const config::Config& c) {
  store::PostgresOptions o;
  o.dsn = c.postgres_dsn;
  o.pool_size = c.postgres_pool_size;
  o.connect_timeout = c.postgres_connect_timeout;
  o.query_timeout = c.postgres_query_timeout;
  o.prepared_statements = c.postgres_prepared_statements;
  o.tombstone_retention = c.postgres_tombstone_retention;
  o.prune_outbox_after = app::OutboxPruneAfter(c);
  o.schema.shared_table = c.postgres_table;
  o.schema.outbox_inline_max_bytes = c.postgres_outbox_inline_max;
  for (const config::NamespaceConfig& ns : c.namespaces) {
    if (ns.table.empty()) continue;
    o.schema.mapped.push_back(
        store::postgres::TableMapping::Mapped(ns.name, ns.table, ns.key_column, ns.value_column));
  }
  return o;
}

}  // namespace

absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const config::Config& config) {
  if (config.store == "postgres") {
    auto opened = store::PostgresStore::Open(PostgresOptionsFrom(config), config.migrate);
    if (!opened.ok()) return opened.status();
    return std::unique_ptr<store::Store>(std::move(*opened));
  }
  return std::unique_ptr<store::Store>(std::make_unique<store::MemoryStore>());
}

absl::StatusOr<std::vector<std::string>> MigrateStore(const config::Config& config) {
  if (config.store != "postgres") {
    return absl::FailedPreconditionError(
        "migrate needs store: postgres and a DSN (--store=postgres --postgres-dsn=...); "
        "the memory store has no schema");
  }
  return store::PostgresStore::Migrate(PostgresOptionsFrom(config));
}

}  // namespace cachecar
