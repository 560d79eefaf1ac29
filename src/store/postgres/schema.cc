// See schema.h.
#include "store/postgres/schema.h"

#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store::postgres {
namespace {

// Serializes concurrent migrations (replicas started together with
// --migrate): an arbitrary constant, "cachecar" in ASCII.
constexpr const char kMigrationLock[] = "SELECT pg_advisory_xact_lock(7161130569367791218)";

// Names and expressions one table's SQL is built from.
struct Parts {
  std::string table;          // quoted
  std::string key;            // quoted key column
  std::string value;          // quoted value column
  std::string version;        // quoted version column
  std::string updated;        // quoted updated_at column
  std::string param_ns_cond;  // "namespace = $1 AND " or ""
  int first_param = 1;        // number of the first parameter after $1 ns
  std::string ns_literal;     // for mapped tables: 'users'

  // The value as bytea, for reads and the outbox.
  std::string ValueAsBytea(const std::string& row, const TableMapping& m) const {
    std::string column = row.empty() ? value : absl::StrCat(row, ".", value);
    if (m.value_is_bytea()) return column;
    return absl::StrCat("convert_to(", column, "::text, 'UTF8')");
  }
  // A bytea parameter as the value column's type.
  std::string ValueFromParam(int n, const TableMapping& m) const {
    if (m.value_is_bytea()) return absl::StrCat("$", n, "::bytea");
    return absl::StrCat("CAST(convert_from($", n, "::bytea, 'UTF8') AS ", m.value_type, ")");
  }
  std::string P(int offset) const { return absl::StrCat("$", first_param + offset); }
  // The namespace of the row in `row` (NEW / OLD) inside a trigger.
  std::string RowNamespace(const std::string& row) const {
    return ns_literal.empty() ? absl::StrCat(row, ".\"namespace\"") : ns_literal;
  }
};

Parts PartsFor(const TableMapping& m) {
  Parts p;
  p.table = QuoteName(m.table);
  p.key = QuoteName(m.key_column);
  p.value = QuoteName(m.value_column);
  p.version = QuoteName(m.version_column);
  p.updated = QuoteName(m.updated_column);
  if (m.shared()) {
    p.param_ns_cond = "\"namespace\" = $1 AND ";
    p.first_param = 2;
  } else {
    p.ns_literal = QuoteLiteral(m.ns);
  }
  return p;
}

// A trigger function's name: cachecar_<table>_<what>, in the table's schema,
// quoted (the base is cut to fit PostgreSQL's 63-byte limit).
std::string Fn(const TableMapping& m, absl::string_view what) {
  std::string base = absl::StrCat("cachecar_", BaseName(m.table));
  const size_t room = 63 - what.size() - 1;
  if (base.size() > room) base.resize(room);
  return QuoteName(absl::StrCat(SchemaPrefix(m.table), base, "_", what));
}

std::string TombstoneUpsert(const std::string& ns, const std::string& key,
                            const std::string& version) {
  return absl::StrCat("INSERT INTO ", kTombstoneTable,
                      " (\"namespace\", \"key\", version) VALUES (", ns, ", ", key, ", ", version,
                      ") ON CONFLICT (\"namespace\", \"key\") DO UPDATE SET version = "
                      "EXCLUDED.version, deleted_at = now();");
}

// `announced` is the trigger's variable saying a cachecar writer made the
// change (it publishes the event itself).
std::string OutboxInsert(const std::string& ns, const std::string& key, const std::string& version,
                         absl::string_view op, const std::string& value) {
  return absl::StrCat("INSERT INTO ", kOutboxTable,
                      " (\"namespace\", \"key\", version, op, value, announced) VALUES (", ns, ", ",
                      key, ", ", version, ", '", op, "', ", value, ", announced);");
}

// The trigger variable `announced`: the statement came from a cachecar
// writer, which set kWriterSetting for its transaction (WriterMark).
std::string AnnouncedDeclaration() {
  return absl::StrCat("  announced boolean := coalesce(current_setting('", kWriterSetting,
                      "', true), '') = 'on';\n");
}

// The trigger functions and triggers of a mapped table, as SQL statements.
// One function on purpose: the statements read top to bottom in the order
// PostgreSQL runs them and share the fragments built at the top; split up,
// each piece would need all of them passed in.
std::vector<std::string> TriggerStatements(  // NOLINT(readability-function-size)
    const TableMapping& m, uint32_t inline_max) {
  const Parts p = PartsFor(m);
  const std::string seq = absl::StrCat("nextval('", kVersionSequence, "')");
  // Only changes no cachecar writer will announce wake the relays: the
  // writers publish their own at once.
  const std::string notify =
      absl::StrCat("IF NOT announced THEN PERFORM pg_notify('", kOutboxChannel, "', ''); END IF;");
  const std::string new_key = absl::StrCat("NEW.", p.key, "::text");
  const std::string old_key = absl::StrCat("OLD.", p.key, "::text");
  const std::string new_value = p.ValueAsBytea("NEW", m);
  std::vector<std::string> out;

  // BEFORE INSERT OR UPDATE, for every writer but cachecar: the version. An
  // UPDATE holds the row lock here, so versions of one key follow commit
  // order. An INSERT first waits for a delete of the same key that is in
  // flight (it holds the row), so the insert's version comes after the
  // delete's. cachecar's own statements (WriterMarked) skip this trigger
  // (its WHEN clause): the version column's default gives an insert its
  // version, and their ON CONFLICT / UPDATE sets it under the row lock; an
  // insert that lost the race with a delete is caught by the tombstone check
  // below and retried.
  std::string wait_for_delete =
      absl::StrCat("PERFORM 1 FROM ", p.table, " WHERE ",
                   m.shared() ? "\"namespace\" = NEW.\"namespace\" AND " : "", p.key, " = NEW.",
                   p.key, " FOR UPDATE;");
  out.push_back(absl::StrCat("CREATE OR REPLACE FUNCTION ", Fn(m, "before_write"),
                             "() RETURNS trigger LANGUAGE plpgsql AS $cachecar$\nBEGIN\n"
                             "  IF TG_OP = 'INSERT' THEN\n    ",
                             wait_for_delete,
                             "\n  END IF;\n"
                             "  NEW.",
                             p.version, " := ", seq, ";\n", "  NEW.", p.updated, " := now();\n",
                             "  RETURN NEW;\nEND\n$cachecar$"));

  // AFTER INSERT OR UPDATE: the outbox row. A key changed by UPDATE is a
  // delete of the old key as well. An insert that (in a three-way race) got a
  // version below the key's tombstone fails with serialization_failure, so it
  // is retried rather than committed out of order.
  const std::string old_ns = p.RowNamespace("OLD");
  const std::string new_ns = p.RowNamespace("NEW");
  const std::string key_changed =
      m.shared() ? absl::StrCat("OLD.", p.key, " IS DISTINCT FROM NEW.", p.key,
                                " OR OLD.\"namespace\" IS DISTINCT FROM NEW.\"namespace\"")
                 : absl::StrCat("OLD.", p.key, " IS DISTINCT FROM NEW.", p.key);
  out.push_back(absl::StrCat(
      "CREATE OR REPLACE FUNCTION ", Fn(m, "after_write"),
      "() RETURNS trigger LANGUAGE plpgsql AS $cachecar$\n"
      "DECLARE\n  tomb bigint;\n  v bigint;\n",
      AnnouncedDeclaration(),
      "BEGIN\n"
      "  IF TG_OP = 'INSERT' THEN\n"
      "    SELECT t.version INTO tomb FROM ",
      kTombstoneTable, " t WHERE t.\"namespace\" = ", new_ns, " AND t.\"key\" = ", new_key,
      ";\n"
      "    IF tomb > NEW.",
      p.version,
      " THEN\n"
      "      RAISE EXCEPTION USING ERRCODE = 'serialization_failure', MESSAGE = format("
      "'cachecar: key %s was deleted at version %s while this insert (version %s) waited; "
      "retry the transaction', ",
      new_key, ", tomb, NEW.", p.version,
      ");\n"
      "    END IF;\n"
      "  ELSIF ",
      key_changed,
      " THEN\n"
      "    v := ",
      seq, ";\n    ", TombstoneUpsert(old_ns, old_key, "v"), "\n    ",
      OutboxInsert(old_ns, old_key, "v", "DELETE", "NULL"),
      "\n"
      "  END IF;\n  ",
      OutboxInsert(new_ns, new_key, absl::StrCat("NEW.", p.version), "UPSERT",
                   absl::StrCat("CASE WHEN octet_length(", new_value, ") <= ", inline_max, " THEN ",
                                new_value, " END")),
      "\n  ", notify, "\n  RETURN NULL;\nEND\n$cachecar$"));

  // BEFORE DELETE (the row is locked here): the tombstone, the outbox row,
  // and the version for the DELETE's RETURNING clause.
  out.push_back(absl::StrCat("CREATE OR REPLACE FUNCTION ", Fn(m, "before_delete"),
                             "() RETURNS trigger LANGUAGE plpgsql AS $cachecar$\n"
                             "DECLARE\n  v bigint := ",
                             seq, ";\n", AnnouncedDeclaration(), "BEGIN\n  ",
                             TombstoneUpsert(old_ns, old_key, "v"), "\n  ",
                             OutboxInsert(old_ns, old_key, "v", "DELETE", "NULL"),
                             "\n"
                             "  PERFORM set_config('",
                             kDeletedVersionSetting, "', v::text, true);\n  ", notify,
                             "\n  RETURN OLD;\nEND\n$cachecar$"));

  // AFTER TRUNCATE: a FLUSH of the namespace ("" = every namespace).
  out.push_back(absl::StrCat(
      "CREATE OR REPLACE FUNCTION ", Fn(m, "truncate"),
      "() RETURNS trigger LANGUAGE plpgsql AS $cachecar$\nDECLARE\n", AnnouncedDeclaration(),
      "BEGIN\n  ", OutboxInsert(m.shared() ? "''" : p.ns_literal, "''", seq, "FLUSH", "NULL"),
      "\n  ", notify, "\n  RETURN NULL;\nEND\n$cachecar$"));

  struct Trigger {
    const char* name;
    const char* when;
    const char* function;
    const char* level;
    std::string condition;  // WHEN (...), or empty
  };
  const Trigger triggers[] = {
      {"cachecar_before_write", "BEFORE INSERT OR UPDATE", "before_write", "ROW",
       absl::StrCat("coalesce(current_setting('", kWriterSetting, "', true), '') <> 'on'")},
      {"cachecar_after_write", "AFTER INSERT OR UPDATE", "after_write", "ROW", ""},
      {"cachecar_before_delete", "BEFORE DELETE", "before_delete", "ROW", ""},
      {"cachecar_truncate", "AFTER TRUNCATE", "truncate", "STATEMENT", ""},
  };
  for (const Trigger& t : triggers) {
    out.push_back(absl::StrCat("DROP TRIGGER IF EXISTS ", t.name, " ON ", p.table));
    out.push_back(absl::StrCat("CREATE TRIGGER ", t.name, " ", t.when, " ON ", p.table,
                               " FOR EACH ", t.level,
                               t.condition.empty() ? "" : absl::StrCat(" WHEN (", t.condition, ")"),
                               " EXECUTE FUNCTION ", Fn(m, t.function), "()"));
  }
  return out;
}

// cachecar's own tables: the version sequence, the shared table, the
// tombstones, the outbox and the relay leases.
std::vector<std::string> OwnTableStatements(const SchemaOptions& options) {
  return {
      kMigrationLock,
      absl::StrCat("CREATE SEQUENCE IF NOT EXISTS ", kVersionSequence, " AS bigint"),
      absl::StrCat("CREATE TABLE IF NOT EXISTS ", QuoteName(options.shared_table),
                   " (\"namespace\" text NOT NULL, \"key\" text NOT NULL, "
                   "value bytea NOT NULL, version bigint NOT NULL DEFAULT 0, "
                   "updated_at timestamptz NOT NULL DEFAULT now(), "
                   "PRIMARY KEY (\"namespace\", \"key\"))"),
      absl::StrCat("CREATE TABLE IF NOT EXISTS ", kTombstoneTable,
                   " (\"namespace\" text NOT NULL, \"key\" text NOT NULL, "
                   "version bigint NOT NULL, deleted_at timestamptz NOT NULL DEFAULT now(), "
                   "PRIMARY KEY (\"namespace\", \"key\"))"),
      absl::StrCat("CREATE INDEX IF NOT EXISTS cachecar_tombstones_deleted_at ON ", kTombstoneTable,
                   " (deleted_at)"),
      absl::StrCat("CREATE TABLE IF NOT EXISTS ", kOutboxTable,
                   " (id bigint GENERATED BY DEFAULT AS IDENTITY PRIMARY KEY, "
                   "\"namespace\" text NOT NULL, \"key\" text NOT NULL, "
                   "version bigint NOT NULL, "
                   "op text NOT NULL CHECK (op IN ('UPSERT', 'DELETE', 'INVALIDATE', 'FLUSH')), "
                   "value bytea, created_at timestamptz NOT NULL DEFAULT now())"),
      absl::StrCat("CREATE INDEX IF NOT EXISTS cachecar_outbox_version ON ", kOutboxTable,
                   " (version)"),
      // Which entries a cachecar writer announces itself (relays publish the
      // others as soon as they are told of them).
      absl::StrCat("ALTER TABLE ", kOutboxTable,
                   " ADD COLUMN IF NOT EXISTS announced boolean NOT NULL DEFAULT false"),
      // The relay leases: a fixed set of slots, each free once expired.
      absl::StrCat("CREATE TABLE IF NOT EXISTS ", kRelayLeaseTable,
                   " (slot int PRIMARY KEY, holder text NOT NULL DEFAULT '', "
                   "expires_at timestamptz NOT NULL DEFAULT '-infinity')"),
      absl::StrCat("INSERT INTO ", kRelayLeaseTable, " (slot) SELECT generate_series(0, ",
                   kRelayLeaseSlots - 1, ") ON CONFLICT (slot) DO NOTHING"),
  };
}

// A mapped table's migration, appended to `out`: its version and updated
// columns (existing rows versioned) and its triggers. `seq_default` is the
// " SET DEFAULT nextval(...)" clause.
void AppendMappedTable(const TableMapping& m, const std::string& seq_default, uint32_t inline_max,
                       std::vector<std::string>& out) {
  const std::string table = QuoteName(m.table);
  const std::string version = QuoteName(m.version_column);
  // Drop the triggers first so the backfill below does not fire them: rows
  // that predate cachecar get versions, not outbox rows.
  for (const char* name : {"cachecar_before_write", "cachecar_after_write",
                           "cachecar_before_delete", "cachecar_truncate"}) {
    out.push_back(absl::StrCat("DROP TRIGGER IF EXISTS ", name, " ON ", table));
  }
  out.push_back(absl::StrCat("ALTER TABLE ", table, " ADD COLUMN IF NOT EXISTS ", version,
                             " bigint NOT NULL DEFAULT 0"));
  out.push_back(absl::StrCat("UPDATE ", table, " SET ", version, " = nextval('", kVersionSequence,
                             "') WHERE ", version, " = 0"));
  out.push_back(absl::StrCat("ALTER TABLE ", table, " ALTER COLUMN ", version, seq_default));
  // When each row's version was written (rows that predate it: the
  // migration's time).
  out.push_back(absl::StrCat("ALTER TABLE ", table, " ADD COLUMN IF NOT EXISTS ",
                             QuoteName(m.updated_column), " timestamptz NOT NULL DEFAULT now()"));
  std::vector<std::string> triggers = TriggerStatements(m, inline_max);
  out.insert(out.end(), triggers.begin(), triggers.end());
}

}  // namespace

TableMapping TableMapping::Shared(std::string table) {
  TableMapping m;
  m.table = std::move(table);
  return m;
}

TableMapping TableMapping::Mapped(std::string ns, std::string table, std::string key_column,
                                  std::string value_column) {
  TableMapping m;
  m.ns = std::move(ns);
  m.table = std::move(table);
  m.key_column = std::move(key_column);
  m.value_column = std::move(value_column);
  m.version_column = kMappedVersionColumn;
  m.updated_column = kMappedUpdatedColumn;
  return m;
}

absl::Status CheckMapping(const TableMapping& m) {
  const std::string who = m.shared() ? "postgres_table" : absl::StrCat("namespace ", m.ns);
  if (absl::Status s = CheckTableName(m.table, absl::StrCat(who, ": table")); !s.ok()) return s;
  if (absl::Status s = CheckIdentifier(m.key_column, absl::StrCat(who, ": key_column")); !s.ok()) {
    return s;
  }
  if (absl::Status s = CheckIdentifier(m.value_column, absl::StrCat(who, ": value_column"));
      !s.ok()) {
    return s;
  }
  if (m.key_column == m.value_column) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": key_column and value_column must differ"));
  }
  return absl::OkStatus();
}

std::vector<std::string> MigrationStatements(const SchemaOptions& options) {
  std::vector<std::string> out = OwnTableStatements(options);
  // cachecar's own inserts skip the BEFORE trigger: the default versions them.
  const std::string seq_default = absl::StrCat(" SET DEFAULT nextval('", kVersionSequence, "')");
  out.push_back(absl::StrCat("ALTER TABLE ", QuoteName(options.shared_table),
                             " ALTER COLUMN version", seq_default));
  const std::vector<std::string> shared = TriggerStatements(
      TableMapping::Shared(options.shared_table), options.outbox_inline_max_bytes);
  out.insert(out.end(), shared.begin(), shared.end());
  for (const TableMapping& m : options.mapped) {
    AppendMappedTable(m, seq_default, options.outbox_inline_max_bytes, out);
  }
  return out;
}

// `value` (an expression) with kWriterSetting set for the transaction on
// the way: evaluated before the row is formed, so before the triggers run.
std::string WriterMarked(const std::string& value) {
  return absl::StrCat("CASE WHEN set_config('", kWriterSetting, "', 'on', true) = 'on' THEN ",
                      value, " END");
}

TableStatements StatementsFor(const TableMapping& m) {
  const Parts p = PartsFor(m);
  const std::string mark_writer =
      absl::StrCat(" AND set_config('", kWriterSetting, "', 'on', true) = 'on'");
  const std::string tomb_ns = m.shared() ? "$1" : p.ns_literal;
  const std::string value = p.ValueAsBytea("", m);
  const std::string deleted_version =
      absl::StrCat("current_setting('", kDeletedVersionSetting, "')::bigint");
  std::string insert_columns, insert_values, conflict;
  if (m.shared()) {
    insert_columns = absl::StrCat("(\"namespace\", ", p.key, ", ", p.value, ")");
    insert_values =
        absl::StrCat("($1, ", p.P(0), ", ", WriterMarked(p.ValueFromParam(2 + 1, m)), ")");
    conflict = absl::StrCat("(\"namespace\", ", p.key, ")");
  } else {
    insert_columns = absl::StrCat("(", p.key, ", ", p.value, ")");
    insert_values = absl::StrCat("(", p.P(0), ", ", WriterMarked(p.ValueFromParam(2, m)), ")");
    conflict = absl::StrCat("(", p.key, ")");
  }
  const std::string insert = absl::StrCat("INSERT INTO ", p.table, " ", insert_columns, " VALUES ",
                                          insert_values, " ON CONFLICT ", conflict);
  // The new version, set under the row lock (the BEFORE trigger skips
  // cachecar's statements), and when it was written.
  const std::string new_version = absl::StrCat(", ", p.version, " = nextval('", kVersionSequence,
                                               "'), ", p.updated, " = now()");
  TableStatements s;
  s.load =
      absl::StrCat("SELECT ", p.key, "::text, true, ", value, ", ", p.version, " FROM ", p.table,
                   " WHERE ", p.param_ns_cond, p.key, " = ", p.P(0),
                   " UNION ALL SELECT \"key\", false, NULL::bytea, version FROM ", kTombstoneTable,
                   " WHERE \"namespace\" = ", tomb_ns, " AND \"key\" = ", p.P(1), "::text");
  s.load_batch =
      absl::StrCat("SELECT ", p.key, "::text, true, ", value, ", ", p.version, " FROM ", p.table,
                   " WHERE ", p.param_ns_cond, p.key, " = ANY(", p.P(0),
                   ") UNION ALL SELECT \"key\", false, NULL::bytea, version FROM ", kTombstoneTable,
                   " WHERE \"namespace\" = ", tomb_ns, " AND \"key\" = ANY(", p.P(1), "::text[])");
  const std::string micros = "(extract(epoch FROM %s) * 1000000)::int8";
  auto us = [&micros](const std::string& t) { return absl::StrReplaceAll(micros, {{"%s", t}}); };
  s.read_versions = absl::StrCat(
      "SELECT ", us("clock_timestamp()"),
      ", r.k, r.found, r.version, r.written FROM (SELECT 1) AS one LEFT JOIN (SELECT ", p.key,
      "::text AS k, true AS found, ", p.version, " AS version, ", us(p.updated),
      " AS written FROM ", p.table, " WHERE ", p.param_ns_cond, p.key, " = ANY(", p.P(0),
      ") UNION ALL SELECT \"key\", false, version, ", us("deleted_at"), " FROM ", kTombstoneTable,
      " WHERE \"namespace\" = ", tomb_ns, " AND \"key\" = ANY(", p.P(1), "::text[])) AS r ON true");
  s.put = absl::StrCat(insert, " DO UPDATE SET ", p.value, " = EXCLUDED.", p.value, new_version,
                       " RETURNING ", p.version);
  s.put_if_absent = absl::StrCat(insert, " DO NOTHING RETURNING ", p.version);
  s.put_if_version = absl::StrCat("UPDATE ", p.table, " SET ", p.value, " = ",
                                  WriterMarked(p.ValueFromParam(p.first_param + 1, m)), new_version,
                                  " WHERE ", p.param_ns_cond, p.key, " = ", p.P(0), " AND ",
                                  p.version, " = ", p.P(2), "::bigint RETURNING ", p.version);
  s.remove = absl::StrCat("DELETE FROM ", p.table, " WHERE ", p.param_ns_cond, p.key, " = ", p.P(0),
                          mark_writer, " RETURNING ", deleted_version);
  s.remove_if_version = absl::StrCat("DELETE FROM ", p.table, " WHERE ", p.param_ns_cond, p.key,
                                     " = ", p.P(0), " AND ", p.version, " = ", p.P(1), "::bigint",
                                     mark_writer, " RETURNING ", deleted_version);
  return s;
}

const char kColumnTypeQuery[] =
    "SELECT format_type(a.atttypid, a.atttypmod) FROM pg_attribute a "
    "WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND a.attnum > 0 "
    "AND NOT a.attisdropped";

const char kUniqueColumnQuery[] =
    "SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid "
    "AND a.attnum = i.indkey[0] WHERE i.indrelid = to_regclass($1) AND i.indisunique "
    "AND i.indnkeyatts = 1 AND i.indpred IS NULL AND a.attname = $2";

const char kTriggerCountQuery[] =
    "SELECT tgname FROM pg_trigger WHERE tgrelid = to_regclass($1) "
    "AND tgname IN ('cachecar_before_write', 'cachecar_after_write', "
    "'cachecar_before_delete', 'cachecar_truncate')";

const char kTombstoneCleanupQuery[] =
    "DELETE FROM cachecar_tombstones WHERE ctid IN (SELECT ctid FROM cachecar_tombstones "
    "WHERE deleted_at < now() - make_interval(secs => $1::double precision) LIMIT $2::int)";

const char kOutboxPruneQuery[] =
    "DELETE FROM cachecar_outbox WHERE id IN (SELECT id FROM cachecar_outbox "
    "WHERE created_at < now() - make_interval(secs => $1::double precision) ORDER BY id "
    "LIMIT $2::int)";

}  // namespace cachecar::store::postgres
