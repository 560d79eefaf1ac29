// Schema and SQL building: names are checked and quoted, values never reach
// the SQL text, DSN defaults never override what the operator wrote.
#include "store/postgres/schema.h"

#include "absl/strings/match.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "store/postgres/dsn.h"
#include "store/postgres/sql_names.h"

namespace cachecar::store::postgres {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(SqlNamesTest, AcceptsPlainNamesAndRejectsEverythingElse) {
  EXPECT_TRUE(CheckIdentifier("users", "t").ok());
  EXPECT_TRUE(CheckIdentifier("_Users2", "t").ok());
  EXPECT_TRUE(CheckTableName("app.users", "t").ok());
  for (const char* bad : {"", "1users", "users;drop", "a\"b", "us ers", "a.b.c", "é"}) {
    EXPECT_FALSE(CheckTableName(bad, "table").ok()) << bad;
  }
  EXPECT_FALSE(CheckIdentifier(std::string(64, 'a'), "t").ok());
  EXPECT_EQ(CheckIdentifier("x-y", "namespace users: key_column").message(),
            "namespace users: key_column \"x-y\" is not a plain SQL identifier: letters, "
            "digits and _ (not first), at most 63 characters; a table may be schema.table");
}

TEST(SqlNamesTest, QuotesNamesAndLiterals) {
  EXPECT_EQ(QuoteName("app.Users"), "\"app\".\"Users\"");
  EXPECT_EQ(QuoteLiteral("it's"), "'it''s'");
  EXPECT_EQ(TextArrayLiteral({"a", "b\"c", "d\\e", "'); DROP TABLE x; --"}),
            R"({"a","b\"c","d\\e","'); DROP TABLE x; --"})");
}

TEST(SchemaTest, MigrationIsIdempotentDdl) {
  SchemaOptions options;
  TableMapping users = TableMapping::Mapped("users", "app.users", "id", "profile");
  users.value_type = "jsonb";
  options.mapped.push_back(users);
  for (const std::string& statement : MigrationStatements(options)) {
    if (absl::StartsWith(statement, "CREATE TABLE") ||
        absl::StartsWith(statement, "CREATE SEQUENCE") ||
        absl::StartsWith(statement, "CREATE INDEX")) {
      EXPECT_THAT(statement, HasSubstr("IF NOT EXISTS"));
    } else if (absl::StartsWith(statement, "CREATE TRIGGER")) {
      // Every CREATE TRIGGER follows a DROP TRIGGER IF EXISTS.
      SUCCEED();
    } else if (absl::StartsWith(statement, "ALTER TABLE")) {
      // Adding a column if missing, or setting a default: both idempotent.
      EXPECT_TRUE(absl::StrContains(statement, "ADD COLUMN IF NOT EXISTS") ||
                  absl::StrContains(statement, "SET DEFAULT nextval('cachecar_version_seq')"))
          << statement;
    } else if (absl::StartsWith(statement, "INSERT INTO cachecar_relay_lease")) {
      EXPECT_THAT(statement, HasSubstr("ON CONFLICT (slot) DO NOTHING"));
    }
  }
  const std::vector<std::string> all = MigrationStatements(options);
  int creates = 0, drops = 0;
  for (const std::string& s : all) {
    creates += absl::StartsWith(s, "CREATE TRIGGER");
    drops += absl::StartsWith(s, "DROP TRIGGER IF EXISTS");
  }
  EXPECT_EQ(creates, 8);  // four per table
  EXPECT_GE(drops, creates);
}

TEST(SchemaTest, MappedTableStatementsQuoteNamesAndBindValues) {
  TableMapping users = TableMapping::Mapped("users", "app.users", "id", "profile");
  users.value_type = "jsonb";
  const TableStatements s = StatementsFor(users);
  EXPECT_THAT(s.load, HasSubstr("FROM \"app\".\"users\" WHERE \"id\" = $1"));
  EXPECT_THAT(s.load, HasSubstr("\"namespace\" = 'users'"));
  EXPECT_THAT(s.load, HasSubstr("convert_to(\"profile\"::text, 'UTF8')"));
  EXPECT_THAT(s.put, HasSubstr("CAST(convert_from($2::bytea, 'UTF8') AS jsonb)"));
  EXPECT_THAT(s.put_if_version, HasSubstr("\"cachecar_version\" = $3::bigint"));
  EXPECT_THAT(s.load_batch, HasSubstr("= ANY($1)"));
}

TEST(SchemaTest, SharedTableStatementsTakeTheNamespaceFirst) {
  const TableStatements s = StatementsFor(TableMapping::Shared("cachecar_entries"));
  EXPECT_THAT(s.load, HasSubstr("\"namespace\" = $1 AND \"key\" = $2"));
  EXPECT_THAT(s.put, HasSubstr("VALUES ($1, $2, CASE WHEN set_config('cachecar.writer'"));
  EXPECT_THAT(s.put, HasSubstr("THEN $3::bytea END)"));
  EXPECT_THAT(s.remove, HasSubstr("RETURNING current_setting('cachecar.deleted_version')"));
  EXPECT_THAT(s.put, Not(HasSubstr("'users'")));
}

// cachecar's writes mark themselves (the triggers then skip the BEFORE
// trigger and the NOTIFY, and the relays leave their outbox rows to them),
// and take their new version under the row lock.
TEST(SchemaTest, EveryWriteStatementMarksItsTransactionAsACachecarWriters) {
  for (const TableMapping& m : {TableMapping::Shared("cachecar_entries"),
                                TableMapping::Mapped("users", "app.users", "id", "profile")}) {
    const TableStatements s = StatementsFor(m);
    for (const std::string* statement :
         {&s.put, &s.put_if_absent, &s.put_if_version, &s.remove, &s.remove_if_version}) {
      EXPECT_THAT(*statement, HasSubstr("set_config('cachecar.writer', 'on', true)")) << *statement;
    }
    EXPECT_THAT(s.load, Not(HasSubstr("set_config")));
    EXPECT_THAT(s.put, HasSubstr("DO UPDATE SET"));
    EXPECT_THAT(s.put, HasSubstr(" = nextval('cachecar_version_seq')"));
    EXPECT_THAT(s.put_if_version, HasSubstr(" = nextval('cachecar_version_seq')"));
  }
}

TEST(SchemaTest, TriggersSkipTheBeforeTriggerAndTheNotifyForCachecarsWrites) {
  std::string before_write_trigger, after_write_function;
  for (const std::string& statement : MigrationStatements(SchemaOptions{})) {
    if (absl::StartsWith(statement, "CREATE TRIGGER cachecar_before_write")) {
      before_write_trigger = statement;
    }
    if (absl::StartsWith(statement, "CREATE OR REPLACE FUNCTION") &&
        absl::StrContains(statement, "_after_write\"()")) {
      after_write_function = statement;
    }
  }
  EXPECT_THAT(before_write_trigger,
              HasSubstr("WHEN (coalesce(current_setting('cachecar.writer', true), '') <> 'on')"));
  EXPECT_THAT(after_write_function, HasSubstr("IF NOT announced THEN PERFORM pg_notify"));
  EXPECT_THAT(after_write_function, HasSubstr("announced)"));
}

TEST(SchemaTest, CheckMappingRejectsBadNames) {
  EXPECT_FALSE(CheckMapping(TableMapping::Mapped("u", "users; drop", "id", "v")).ok());
  EXPECT_FALSE(CheckMapping(TableMapping::Mapped("u", "users", "id", "id")).ok());
  EXPECT_TRUE(CheckMapping(TableMapping::Mapped("u", "users", "id", "v")).ok());
}

TEST(DsnTest, KeywordFormGetsOnlyMissingSettingsAndKeepsTheOperatorsOwn) {
  EXPECT_EQ(WithConnectionDefaults("host=db connect_timeout=30", absl::Seconds(5)),
            "keepalives=1 keepalives_idle=10 keepalives_interval=5 keepalives_count=3 "
            "application_name=cachecar host=db connect_timeout=30");
}

TEST(DsnTest, ASettingsNameInsideAValueIsNotTakenForTheSetting) {
  // The substring check this replaced saw "connect_timeout=" in the URI's
  // password and added no connect timeout at all.
  EXPECT_TRUE(absl::StartsWith(
      WithConnectionDefaults("host=db password='connect_timeout=1' options='-c x=y'",
                             absl::Seconds(5)),
      "connect_timeout=5 "));
  EXPECT_EQ(WithConnectionDefaults("postgresql://u:connect_timeout=1@db/x?application_name=app",
                                   absl::Seconds(2)),
            "postgresql://u:connect_timeout=1@db/x?application_name=app&connect_timeout=2&"
            "keepalives=1&keepalives_idle=10&keepalives_interval=5&keepalives_count=3");
}

TEST(DsnTest, ADsnLibpqCannotParseIsPassedThroughForLibpqToReport) {
  EXPECT_EQ(WithConnectionDefaults("host=db no_such_setting=1", absl::Seconds(5)),
            "host=db no_such_setting=1");
}

TEST(DsnTest, UriGetsOnlyMissingParameters) {
  EXPECT_EQ(WithConnectionDefaults("postgresql://u@db/x?connect_timeout=9&keepalives=0",
                                   absl::Seconds(5)),
            "postgresql://u@db/x?connect_timeout=9&keepalives=0&keepalives_idle=10&"
            "keepalives_interval=5&keepalives_count=3&application_name=cachecar");
}

}  // namespace
}  // namespace cachecar::store::postgres
