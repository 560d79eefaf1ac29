// PostgresStore against a real PostgreSQL 15: read-through and write-through,
// versions, preconditions under concurrency, one-query batches, the triggers
// seeing writes made with psql, an application table, injection-looking
// keys, deadlines, PgBouncer in transaction mode, and start-up errors.
#include "store/postgres/postgres_store.h"

#include <atomic>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "pqxx/connection"
#include "pqxx/transaction"
#include "store/outcome.h"
#include "tests/integration/pg_harness.h"

namespace cachecar::store {
namespace {

using ::cachecar::testing::PgHarness;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kDb[] = "store_test";

PostgresOptions OptionsFor(const std::string& dsn) {
  PostgresOptions o;
  o.dsn = dsn;
  o.pool_size = 8;
  o.schema.outbox_inline_max_bytes = 16;
  auto users = postgres::TableMapping::Mapped("users", "app_users", "id", "profile");
  o.schema.mapped.push_back(users);
  return o;
}

class PostgresStoreTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const PgHarness& pg = PgHarness::Get();
    pg.CreateDatabase(kDb);
    pg.Psql(kDb,
            "CREATE EXTENSION pg_stat_statements;"
            "CREATE TABLE app_users (id bigint PRIMARY KEY, profile jsonb NOT NULL, name text);"
            "INSERT INTO app_users VALUES (1, '{\"name\": \"before cachecar\"}', 'ann');");
    auto summary = PostgresStore::Migrate(OptionsFor(pg.Dsn(kDb)));
    ASSERT_TRUE(summary.ok()) << summary.status();
    auto opened = PostgresStore::Open(OptionsFor(pg.Dsn(kDb)), /*migrate=*/false);
    ASSERT_TRUE(opened.ok()) << opened.status();
    store_ = opened->release();
  }
  static void TearDownTestSuite() {
    delete store_;
    store_ = nullptr;
  }

  static std::string Psql(const std::string& sql) { return PgHarness::Get().Psql(kDb, sql); }

  static PostgresStore* store_;
  CallOptions opts_;
};
PostgresStore* PostgresStoreTest::store_ = nullptr;

TEST_F(PostgresStoreTest, WritesGoToPostgresAndReadsComeFromIt) {
  auto v = store_->Put("rw", "k", std::string("v\0al", 4), Precondition::None(), opts_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(Psql("SELECT encode(value, 'hex'), version FROM cachecar_entries "
                 "WHERE namespace = 'rw' AND key = 'k'"),
            absl::StrCat("7600616c|", *v));
  Psql("UPDATE cachecar_entries SET value = 'from psql' WHERE namespace = 'rw' AND key = 'k'");
  auto r = store_->Load("rw", "k", opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_TRUE(r->found);
  EXPECT_EQ(r->value, "from psql");
  EXPECT_GT(r->version, *v);
  auto absent = store_->Load("rw", "never", opts_);
  ASSERT_TRUE(absent.ok());
  EXPECT_FALSE(absent->found);
  EXPECT_EQ(absent->version, 0u);
}

TEST_F(PostgresStoreTest, DeleteThenReinsertMovesVersionsForward) {
  auto v1 = store_->Put("dr", "k", "one", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto d = store_->Delete("dr", "k", std::nullopt, opts_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_TRUE(d->found);
  EXPECT_GT(d->version, *v1);
  EXPECT_EQ(Psql("SELECT count(*) FROM cachecar_entries WHERE namespace = 'dr'"), "0");
  auto gone = store_->Load("dr", "k", opts_);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->found);
  EXPECT_EQ(gone->version, d->version) << "absence carries the delete's version";
  auto again = store_->Delete("dr", "k", std::nullopt, opts_);
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->found);
  EXPECT_EQ(again->version, d->version);
  auto v3 = store_->Put("dr", "k", "three", Precondition::None(), opts_);
  ASSERT_TRUE(v3.ok());
  EXPECT_GT(*v3, d->version);
}

TEST_F(PostgresStoreTest, VersionsAreSharedAcrossNamespacesAndTables) {
  auto a = store_->Put("ns-a", "k", "x", Precondition::None(), opts_);
  auto b = store_->Put("users", "2", "{\"n\": 2}", Precondition::None(), opts_);
  auto c = store_->Put("ns-b", "k", "y", Precondition::None(), opts_);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_LT(*a, *b);
  EXPECT_LT(*b, *c);
}

TEST_F(PostgresStoreTest, IfVersionRaceHasExactlyOneWinnerPerVersion) {
  constexpr int kThreads = 8;
  constexpr int kRounds = 25;
  auto v = store_->Put("cas", "hot", "start", Precondition::None(), opts_);
  ASSERT_TRUE(v.ok());
  uint64_t current = *v;
  for (int round = 0; round < kRounds; ++round) {
    std::atomic<int> wins{0}, aborted{0}, other{0};
    std::atomic<uint64_t> winner_version{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        auto r = store_->Put("cas", "hot", absl::StrCat("r", round, "t", t),
                             Precondition::IfVersion(current), CallOptions{});
        if (r.ok()) {
          wins++;
          winner_version = *r;
        } else if (r.status().code() == absl::StatusCode::kAborted) {
          aborted++;
        } else {
          other++;
        }
      });
    }
    for (auto& th : threads) th.join();
    ASSERT_EQ(wins.load(), 1) << "round " << round;
    ASSERT_EQ(aborted.load(), kThreads - 1) << "round " << round;
    ASSERT_EQ(other.load(), 0);
    ASSERT_GT(winner_version.load(), current);
    current = winner_version.load();
  }
  auto r = store_->Load("cas", "hot", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->version, current);
}

// cachecar's own Puts skip the BEFORE trigger (their version comes from the
// column default or the statement, under the row lock): racing Puts and
// Deletes of one key must still leave it at the highest version any of them
// returned, i.e. versions follow commit order. An insert that loses the race
// with a delete is retried (the tombstone check), not committed below it.
TEST_F(PostgresStoreTest, RacingPutsAndDeletesOfOneKeyEndAtTheHighestVersion) {
  constexpr int kThreads = 6;
  constexpr int kOps = 60;
  for (int round = 0; round < 5; ++round) {
    const std::string key = absl::StrCat("race", round);
    std::atomic<uint64_t> highest{0};
    std::atomic<int> failures{0};
    std::mutex mu;
    std::string first_failure;
    auto failed = [&](const absl::Status& s) {
      failures++;
      std::lock_guard<std::mutex> lock(mu);
      if (first_failure.empty()) first_failure = s.ToString();
    };
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t) {
      threads.emplace_back([&, t] {
        for (int i = 0; i < kOps; ++i) {
          uint64_t v = 0;
          if ((i + t) % 3 == 0) {
            auto d = store_->Delete("race", key, std::nullopt, CallOptions{});
            // Under this much contention a Delete may give up, saying to
            // retry (ABORTED, nothing changed): allowed.
            if (!d.ok() && d.status().code() != absl::StatusCode::kAborted) failed(d.status());
            if (!d.ok()) continue;
            v = d->version;
          } else {
            auto p = store_->Put("race", key, absl::StrCat(t, ":", i), Precondition::None(),
                                 CallOptions{});
            if (!p.ok()) {
              failed(p.status());
              continue;
            }
            v = *p;
          }
          uint64_t cur = highest.load();
          while (cur < v && !highest.compare_exchange_weak(cur, v)) {
          }
        }
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(failures.load(), 0) << first_failure;
    auto now = store_->Load("race", key, opts_);
    ASSERT_TRUE(now.ok()) << now.status();
    EXPECT_EQ(now->version, highest.load())
        << "round " << round << ": the key ended at a version below one already returned";
  }
}

TEST_F(PostgresStoreTest, IfAbsentRaceHasExactlyOneWinner) {
  for (int round = 0; round < 10; ++round) {
    const std::string key = absl::StrCat("fresh", round);
    std::atomic<int> wins{0}, aborted{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < 6; ++t) {
      threads.emplace_back([&] {
        auto r = store_->Put("absent", key, "v", Precondition::IfAbsent(), CallOptions{});
        (r.ok() ? wins : aborted)++;
      });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(wins.load(), 1);
    EXPECT_EQ(aborted.load(), 5);
  }
}

TEST_F(PostgresStoreTest, PreconditionFailuresNameExpectedAndFoundAndChangeNothing) {
  auto v = store_->Put("pre", "k", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v.ok());
  const std::string outbox_before = Psql("SELECT count(*) FROM cachecar_outbox");
  auto bad = store_->Put("pre", "k", "y", Precondition::IfVersion(*v + 100), opts_);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(bad.status().message(), HasSubstr(absl::StrCat("expected version ", *v + 100)));
  EXPECT_THAT(bad.status().message(), HasSubstr(absl::StrCat("found version ", *v)));
  auto not_absent = store_->Put("pre", "k", "y", Precondition::IfAbsent(), opts_);
  EXPECT_EQ(not_absent.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(not_absent.status().message(), HasSubstr("if_absent"));
  auto bad_delete = store_->Delete("pre", "k", *v + 1, opts_);
  EXPECT_EQ(bad_delete.status().code(), absl::StatusCode::kAborted);
  auto delete_if_absent = store_->Delete("pre", "k", 0, opts_);
  EXPECT_EQ(delete_if_absent.status().code(), absl::StatusCode::kAborted);
  EXPECT_EQ(Psql("SELECT count(*) FROM cachecar_outbox"), outbox_before)
      << "failed writes leave no outbox rows";
  auto r = store_->Load("pre", "k", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value, "x");
  auto ok_delete = store_->Delete("pre", "k", *v, opts_);
  ASSERT_TRUE(ok_delete.ok()) << ok_delete.status();
  EXPECT_TRUE(ok_delete->found);
}

// A read-modify-write loop on a deleted key: Get reports the delete's
// version (the tombstone's), and if_version with it writes (#15), once: of
// racing writers with that version exactly one wins.
TEST_F(PostgresStoreTest, IfVersionOfTheDeleteWritesADeletedKey) {
  auto v1 = store_->Put("casdel", "k", "x", Precondition::None(), opts_);
  ASSERT_TRUE(v1.ok()) << v1.status();
  auto del = store_->Delete("casdel", "k", std::nullopt, opts_);
  ASSERT_TRUE(del.ok() && del->found) << del.status();
  auto read = store_->Load("casdel", "k", opts_);
  ASSERT_TRUE(read.ok());
  ASSERT_FALSE(read->found);
  ASSERT_EQ(read->version, del->version);
  auto old = store_->Put("casdel", "k", "y", Precondition::IfVersion(*v1), opts_);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(old.status().message(), HasSubstr(absl::StrCat("found version ", del->version)));
  EXPECT_THAT(old.status().message(), HasSubstr("key deleted"));
  auto again = store_->Delete("casdel", "k", del->version, opts_);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_FALSE(again->found);
  EXPECT_EQ(again->version, del->version);

  std::atomic<int> wins{0}, aborted{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 6; ++t) {
    threads.emplace_back([&, t] {
      auto r = store_->Put("casdel", "k", absl::StrCat("w", t),
                           Precondition::IfVersion(del->version), CallOptions{});
      if (r.ok()) {
        EXPECT_GT(*r, del->version);
        wins++;
      } else {
        EXPECT_EQ(r.status().code(), absl::StatusCode::kAborted) << r.status();
        aborted++;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(wins.load(), 1);
  EXPECT_EQ(aborted.load(), 5);
  auto now = store_->Load("casdel", "k", opts_);
  ASSERT_TRUE(now.ok());
  EXPECT_TRUE(now->found);
  EXPECT_EQ(Psql("SELECT count(*) FROM cachecar_outbox WHERE key = 'k' AND namespace = 'casdel' "
                 "AND op = 'UPSERT'"),
            "2")
      << "one outbox row per committed write";
}

// WriteBatch (#15): one transaction, all or nothing, a version and an
// outbox row per key; a failed precondition leaves no row and no outbox
// entry; the tombstone rule of if_version holds inside a batch; batches over
// the same keys in opposite orders do not deadlock.
TEST_F(PostgresStoreTest, WriteBatchIsOneTransactionAllOrNothing) {
  auto a = store_->Put("wb", "a", "a0", Precondition::None(), opts_);
  auto b = store_->Put("wb", "b", "b0", Precondition::None(), opts_);
  ASSERT_TRUE(a.ok() && b.ok());
  auto gone = store_->Put("wb", "gone", "g0", Precondition::None(), opts_);
  auto del = store_->Delete("wb", "gone", std::nullopt, opts_);
  ASSERT_TRUE(gone.ok() && del.ok());
  const std::string outbox_before = Psql("SELECT count(*) FROM cachecar_outbox");

  auto failed = store_->WriteBatch("wb",
                                   {BatchWrite{"a", false, "a1", Precondition::None()},
                                    BatchWrite{"new", false, "n1", Precondition::IfAbsent()},
                                    BatchWrite{"b", true, "", Precondition::IfVersion(*b + 100)}},
                                   opts_);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted);
  EXPECT_THAT(failed.status().message(), HasSubstr("writes[2]"));
  EXPECT_THAT(failed.status().message(), HasSubstr(absl::StrCat("expected version ", *b + 100)));
  EXPECT_EQ(Psql("SELECT count(*) FROM cachecar_outbox"), outbox_before)
      << "a rolled-back batch leaves no outbox rows";
  EXPECT_EQ(store_->Load("wb", "a", opts_)->value, "a0");
  EXPECT_FALSE(store_->Load("wb", "new", opts_)->found);

  auto ok =
      store_->WriteBatch("wb",
                         {BatchWrite{"b", true, "", Precondition::IfVersion(*b)},
                          BatchWrite{"a", false, "a1", Precondition::IfVersion(*a)},
                          BatchWrite{"gone", false, "g1", Precondition::IfVersion(del->version)},
                          BatchWrite{"new", false, "n1", Precondition::IfAbsent()}},
                         opts_);
  ASSERT_TRUE(ok.ok()) << ok.status();
  ASSERT_EQ(ok->size(), 4u);
  EXPECT_TRUE((*ok)[0].found);
  for (const BatchWriteResult& r : *ok) EXPECT_GT(r.version, del->version);
  EXPECT_EQ(Psql("SELECT string_agg(key || ':' || op, ',' ORDER BY key) FROM cachecar_outbox "
                 "WHERE namespace = 'wb' AND version > " +
                 std::to_string(del->version)),
            "a:UPSERT,b:DELETE,gone:UPSERT,new:UPSERT")
      << "one outbox row per key";
  EXPECT_EQ(store_->Load("wb", "gone", opts_)->value, "g1");
  EXPECT_FALSE(store_->Load("wb", "b", opts_)->found);

  // Opposite orders, many rounds, at once: no deadlock errors surface.
  std::atomic<int> failures{0};
  auto writer = [&](bool reversed) {
    for (int i = 0; i < 30; ++i) {
      std::vector<BatchWrite> writes;
      for (int k = 0; k < 5; ++k) {
        writes.push_back(BatchWrite{absl::StrCat("dl", reversed ? 4 - k : k), false,
                                    absl::StrCat(i), Precondition::None()});
      }
      auto r = store_->WriteBatch("wb", writes, CallOptions{});
      if (!r.ok()) {
        ADD_FAILURE() << r.status();
        failures++;
      }
    }
  };
  std::thread t1(writer, false), t2(writer, true);
  t1.join();
  t2.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST_F(PostgresStoreTest, BatchLoadIsOneQuery) {
  std::vector<std::string> keys;
  for (int i = 0; i < 50; ++i) {
    keys.push_back(absl::StrCat("k", i));
    if (i % 3 != 0) {
      ASSERT_TRUE(
          store_->Put("batch", keys.back(), absl::StrCat("v", i), Precondition::None(), opts_)
              .ok());
    }
  }
  ASSERT_TRUE(store_->Delete("batch", "k1", std::nullopt, opts_).ok());
  keys.push_back("k2");  // asked twice
  Psql("SELECT pg_stat_statements_reset()");
  auto r = store_->LoadBatch("batch", keys, opts_);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(Psql("SELECT coalesce(sum(calls), 0) FROM pg_stat_statements WHERE query LIKE "
                 "'%cachecar_entries%'"),
            "1");
  ASSERT_EQ(r->size(), keys.size());
  for (int i = 0; i < 50; ++i) {
    const Record& rec = (*r)[i];
    if (i == 1) {
      EXPECT_FALSE(rec.found);
      EXPECT_GT(rec.version, 0u) << "deleted: absent at the delete's version";
    } else if (i % 3 == 0) {
      EXPECT_FALSE(rec.found) << i;
      EXPECT_EQ(rec.version, 0u);
    } else {
      EXPECT_TRUE(rec.found) << i;
      EXPECT_EQ(rec.value, absl::StrCat("v", i));
    }
  }
  EXPECT_EQ(r->back().value, "v2");
}

TEST_F(PostgresStoreTest, DirectSqlWritesGetVersionsAndOutboxRows) {
  auto v = store_->Put("direct", "k", "cachecar", Precondition::None(), opts_);
  ASSERT_TRUE(v.ok());
  Psql("UPDATE cachecar_entries SET value = 'psql' WHERE namespace = 'direct' AND key = 'k'");
  const std::string row = Psql(
      "SELECT e.version, o.op, convert_from(o.value, 'UTF8') FROM cachecar_entries e "
      "JOIN cachecar_outbox o ON o.namespace = e.namespace AND o.key = e.key AND "
      "o.version = e.version WHERE e.namespace = 'direct' AND e.key = 'k'");
  std::vector<std::string> parts = absl::StrSplit(row, '|');
  ASSERT_EQ(parts.size(), 3u) << row;
  EXPECT_GT(std::stoull(parts[0]), *v);
  EXPECT_EQ(parts[1], "UPSERT");
  EXPECT_EQ(parts[2], "psql");
  Psql("DELETE FROM cachecar_entries WHERE namespace = 'direct' AND key = 'k'");
  EXPECT_EQ(Psql("SELECT op FROM cachecar_outbox WHERE namespace = 'direct' ORDER BY id DESC "
                 "LIMIT 1"),
            "DELETE");
  auto r = store_->Load("direct", "k", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->found);
  EXPECT_GT(r->version, std::stoull(parts[0]));
}

TEST_F(PostgresStoreTest, OutboxCarriesSmallValuesOnly) {
  auto small = store_->Put("inline", "small", "tiny", Precondition::None(), opts_);
  auto big = store_->Put("inline", "big", std::string(100, 'x'), Precondition::None(), opts_);
  ASSERT_TRUE(small.ok() && big.ok());
  EXPECT_EQ(Psql(absl::StrCat("SELECT convert_from(value, 'UTF8') FROM cachecar_outbox WHERE "
                              "version = ",
                              *small)),
            "tiny");
  EXPECT_EQ(Psql(absl::StrCat("SELECT value IS NULL FROM cachecar_outbox WHERE version = ", *big)),
            "t");
}

TEST_F(PostgresStoreTest, InjectionLookingKeysAreData) {
  const std::string key = "'); DROP TABLE cachecar_entries; --";
  const std::string value = "\"; DELETE FROM cachecar_outbox; --";
  auto v = store_->Put("inject", key, value, Precondition::None(), opts_);
  ASSERT_TRUE(v.ok()) << v.status();
  auto r = store_->Load("inject", key, opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value, value);
  auto batch = store_->LoadBatch("inject", {key, "{\"a\",\"b\"}", "x\\y"}, opts_);
  ASSERT_TRUE(batch.ok()) << batch.status();
  EXPECT_TRUE((*batch)[0].found);
  EXPECT_FALSE((*batch)[1].found);
  auto d = store_->Delete("inject", key, *v, opts_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(Psql("SELECT to_regclass('cachecar_entries') IS NOT NULL"), "t");
  EXPECT_EQ(Psql("SELECT count(*) > 0 FROM cachecar_outbox"), "t");
}

TEST_F(PostgresStoreTest, KeysWithNulAreRejectedClearly) {
  auto r = store_->Put("nul", std::string("a\0b", 3), "v", Precondition::None(), opts_);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("NUL"));
}

TEST_F(PostgresStoreTest, ApplicationTableIsReadWrittenAndWatched) {
  // The row that predates cachecar got a version from the migration.
  auto before = store_->Load("users", "1", opts_);
  ASSERT_TRUE(before.ok()) << before.status();
  EXPECT_TRUE(before->found);
  EXPECT_EQ(before->value, "{\"name\": \"before cachecar\"}");
  EXPECT_GT(before->version, 0u);

  auto v = store_->Put("users", "7", "{\"name\":\"bo\"}", Precondition::None(), opts_);
  ASSERT_TRUE(v.ok()) << v.status();
  EXPECT_EQ(Psql("SELECT profile->>'name', cachecar_version FROM app_users WHERE id = 7"),
            absl::StrCat("bo|", *v));
  // The application writes its own table; cachecar sees a new version.
  Psql("UPDATE app_users SET profile = '{\"name\": \"app\"}' WHERE id = 7");
  auto r = store_->Load("users", "7", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->value, "{\"name\": \"app\"}");
  EXPECT_GT(r->version, *v);
  EXPECT_EQ(Psql(absl::StrCat("SELECT namespace, key, op FROM cachecar_outbox WHERE version = ",
                              r->version)),
            "users|7|UPSERT");

  auto bad_json = store_->Put("users", "8", "not json", Precondition::None(), opts_);
  EXPECT_EQ(bad_json.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_json.status().message(), HasSubstr("json"));
  auto bad_key = store_->Load("users", "eight", opts_);
  EXPECT_EQ(bad_key.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad_key.status().message(), HasSubstr("bigint"));

  auto d = store_->Delete("users", "7", std::nullopt, opts_);
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(Psql("SELECT count(*) FROM app_users WHERE id = 7"), "0");
  auto gone = store_->Load("users", "7", opts_);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->found);
  EXPECT_EQ(gone->version, d->version);
}

TEST_F(PostgresStoreTest, DeadlineCancelsAStatementStuckOnALock) {
  ASSERT_TRUE(store_->Put("lock", "k", "old", Precondition::None(), opts_).ok());
  pqxx::connection holder(PgHarness::Get().Dsn(kDb));
  pqxx::work tx(holder);
  tx.exec("SELECT 1 FROM cachecar_entries WHERE namespace = 'lock' AND key = 'k' FOR UPDATE");
  CallOptions soon;
  soon.deadline = absl::Now() + absl::Milliseconds(300);
  auto r = store_->Put("lock", "k", "new", Precondition::None(), soon);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDeadlineExceeded) << r.status();
  EXPECT_FALSE(IsOutcomeUnknown(r.status()));
  tx.commit();
  auto now = store_->Load("lock", "k", opts_);
  ASSERT_TRUE(now.ok()) << now.status();
  EXPECT_EQ(now->value, "old") << "a cancelled write did not commit";
}

TEST_F(PostgresStoreTest, TombstonesPastRetentionAreCleanedUp) {
  ASSERT_TRUE(store_->Put("tomb", "k", "v", Precondition::None(), opts_).ok());
  ASSERT_TRUE(store_->Delete("tomb", "k", std::nullopt, opts_).ok());
  Psql(
      "UPDATE cachecar_tombstones SET deleted_at = now() - interval '2 days' "
      "WHERE namespace = 'tomb'");
  auto n = store_->CleanupTombstones();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_GE(*n, 1u);
  auto r = store_->Load("tomb", "k", opts_);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->found);
  EXPECT_EQ(r->version, 0u);
}

// Replicated namespaces load their table with ScanKeys: rows and tombstones
// (so a deleted key is cached at its delete version), in key order, paged.
TEST_F(PostgresStoreTest, ScanKeysPagesRowsAndTombstonesInKeyOrder) {
  for (const char* k : {"a", "b", "c", "d", "e"}) {
    ASSERT_TRUE(store_->Put("scan", k, "v", Precondition::None(), opts_).ok());
  }
  ASSERT_TRUE(store_->Delete("scan", "b", std::nullopt, opts_).ok());
  ASSERT_TRUE(store_->Delete("scan", "e", std::nullopt, opts_).ok());
  ASSERT_TRUE(store_->Delete("scan", "c", std::nullopt, opts_).ok());
  ASSERT_TRUE(store_->Put("scan", "c", "back", Precondition::None(), opts_).ok());
  Psql("INSERT INTO cachecar_tombstones (namespace, key, version) VALUES ('scan2', 'a', 1)");

  auto all = store_->ScanKeys("scan", "", 100, opts_);
  ASSERT_TRUE(all.ok()) << all.status();
  EXPECT_THAT(*all, ::testing::ElementsAre("a", "b", "c", "d", "e"))
      << "deleted keys too, a re-inserted one once, other namespaces' tombstones not";
  auto first = store_->ScanKeys("scan", "", 2, opts_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_THAT(*first, ::testing::ElementsAre("a", "b"));
  auto second = store_->ScanKeys("scan", "b", 2, opts_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_THAT(*second, ::testing::ElementsAre("c", "d"));
  auto last = store_->ScanKeys("scan", "d", 2, opts_);
  ASSERT_TRUE(last.ok()) << last.status();
  EXPECT_THAT(*last, ::testing::ElementsAre("e"));

  // A mapped table: its rows' key text and its namespace's tombstones.
  for (const char* id : {"101", "102", "103"}) {
    ASSERT_TRUE(store_->Put("users", id, "{}", Precondition::None(), opts_).ok());
  }
  ASSERT_TRUE(store_->Delete("users", "102", std::nullopt, opts_).ok());
  auto users = store_->ScanKeys("users", "100", 3, opts_);
  ASSERT_TRUE(users.ok()) << users.status();
  EXPECT_THAT(*users, ::testing::ElementsAre("101", "102", "103"));
  auto gone = store_->Load("users", "102", opts_);
  ASSERT_TRUE(gone.ok());
  EXPECT_FALSE(gone->found);
  EXPECT_GT(gone->version, 0u) << "what a load of the scanned tombstone caches";
}

TEST(PostgresStorePruneTest, OldOutboxRowsArePrunedOnlyWhenAsked) {
  const PgHarness& pg = PgHarness::Get();
  pg.CreateDatabase("prune_test");
  PostgresOptions keep;
  keep.dsn = pg.Dsn("prune_test");
  auto kept = PostgresStore::Open(keep, /*migrate=*/true);
  ASSERT_TRUE(kept.ok()) << kept.status();
  ASSERT_TRUE((*kept)->Put("p", "old", "v", Precondition::None(), CallOptions{}).ok());
  ASSERT_TRUE((*kept)->Put("p", "new", "v", Precondition::None(), CallOptions{}).ok());
  pg.Psql("prune_test",
          "UPDATE cachecar_outbox SET created_at = now() - interval '1 hour' WHERE key = 'old'");
  ASSERT_TRUE((*kept)->CleanupTombstones().ok());
  EXPECT_EQ(pg.Psql("prune_test", "SELECT count(*) FROM cachecar_outbox"), "2");

  PostgresOptions prune = keep;
  prune.prune_outbox_after = absl::Minutes(10);
  auto pruning = PostgresStore::Open(prune, false);
  ASSERT_TRUE(pruning.ok()) << pruning.status();
  auto n = (*pruning)->CleanupTombstones();
  ASSERT_TRUE(n.ok()) << n.status();
  EXPECT_EQ(*n, 1u);
  EXPECT_EQ(pg.Psql("prune_test", "SELECT key FROM cachecar_outbox"), "new");
}

TEST(PostgresStoreBouncerTest, WorksBehindPgBouncerInTransactionMode) {
  const PgHarness& pg = PgHarness::Get();
  PostgresOptions options;
  options.dsn = pg.BouncerDsn();
  options.prepared_statements = false;
  options.pool_size = 4;
  auto opened = PostgresStore::Open(options, /*migrate=*/true);
  ASSERT_TRUE(opened.ok()) << opened.status();
  PostgresStore& store = **opened;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 40; ++i) {
        const std::string key = absl::StrCat("t", t, "k", i % 5);
        auto v = store.Put("bouncer", key, absl::StrCat(i), Precondition::None(), CallOptions{});
        auto r = store.Load("bouncer", key, CallOptions{});
        auto b = store.LoadBatch("bouncer", {key, "missing"}, CallOptions{});
        auto d = store.Delete("bouncer", key, std::nullopt, CallOptions{});
        if (!v.ok() || !r.ok() || !b.ok() || !d.ok() || !r->found || r->version < *v) {
          ADD_FAILURE() << v.status() << r.status() << b.status() << d.status();
          failures++;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0);
}

// PostgreSQL unreachable at start: Open still succeeds (a replica started
// before its database must keep running), and every call says what is down,
// without the password.
TEST(PostgresStoreStartTest, UnreachableDatabaseIsUnavailableWithoutThePassword) {
  PostgresOptions options;
  options.dsn = "host=127.0.0.1 port=1 dbname=x user=u password=do-not-print-me";
  options.first_connect_wait = absl::Seconds(5);
  auto opened = PostgresStore::Open(options, false);
  ASSERT_TRUE(opened.ok()) << opened.status();
  for (const absl::Status& s :
       {(*opened)->CheckHealth({}), (*opened)->Load("default", "k", {}).status(),
        (*opened)->Put("default", "k", "v", Precondition::None(), {}).status()}) {
    EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable) << s;
    EXPECT_THAT(s.message(), HasSubstr("PostgreSQL is not reachable"));
    EXPECT_THAT(s.message(), HasSubstr("cannot connect to PostgreSQL"));
    EXPECT_THAT(s.message(), HasSubstr("password=***"));
    EXPECT_THAT(s.message(), Not(HasSubstr("do-not-print-me")));
  }
}

// The schema missing at start: calls are FAILED_PRECONDITION saying to run
// `cachecar migrate`; once it has run, the same store works, no restart.
TEST(PostgresStoreStartTest, MissingSchemaSaysRunMigrateAndIsPickedUpOnceMigrated) {
  const PgHarness& pg = PgHarness::Get();
  pg.CreateDatabase("empty_test");
  PostgresOptions options;
  options.dsn = pg.Dsn("empty_test");
  auto opened = PostgresStore::Open(options, false);
  ASSERT_TRUE(opened.ok()) << opened.status();
  const absl::Status before =
      (*opened)->Put("default", "k", "v", Precondition::None(), {}).status();
  EXPECT_EQ(before.code(), absl::StatusCode::kFailedPrecondition) << before;
  EXPECT_THAT(before.message(), HasSubstr("cachecar migrate"));
  ASSERT_TRUE(PostgresStore::Migrate(options).ok());
  ASSERT_TRUE((*opened)->WaitUntilReady(absl::Seconds(30)).ok());
  absl::StatusOr<uint64_t> put = (*opened)->Put("default", "k", "v", Precondition::None(), {});
  EXPECT_TRUE(put.ok()) << put.status();
}

// Started while PostgreSQL is down, with --migrate: once the server is
// back, the schema is created and the store works, no restart.
TEST(PostgresStoreStartTest, StartedWhileDownMigratesAndWorksOnceItIsBack) {
  const PgHarness& pg = PgHarness::Get();
  pg.CreateDatabase("late_test");
  PostgresOptions options;
  options.dsn = pg.Dsn("late_test");
  pg.StopServer();
  auto opened = PostgresStore::Open(options, /*migrate=*/true);
  ASSERT_TRUE(opened.ok()) << opened.status();
  EXPECT_EQ((*opened)->Load("default", "k", {}).status().code(), absl::StatusCode::kUnavailable);
  pg.StartServer();
  ASSERT_TRUE((*opened)->WaitUntilReady(absl::Seconds(30)).ok());
  absl::StatusOr<uint64_t> put = (*opened)->Put("default", "k", "v", Precondition::None(), {});
  ASSERT_TRUE(put.ok()) << put.status();
  EXPECT_EQ(pg.Psql("late_test", "SELECT count(*) FROM cachecar_relay_lease"), "16");
}

TEST(PostgresStoreStartTest, ApplicationTableWithoutUniqueKeyIsRefused) {
  const PgHarness& pg = PgHarness::Get();
  pg.CreateDatabase("nokey_test");
  pg.Psql("nokey_test", "CREATE TABLE things (id text, body text)");
  PostgresOptions options;
  options.dsn = pg.Dsn("nokey_test");
  options.schema.mapped.push_back(postgres::TableMapping::Mapped("things", "things", "id", "body"));
  auto migrated = PostgresStore::Migrate(options);
  EXPECT_EQ(migrated.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(migrated.status().message(), HasSubstr("PRIMARY KEY or UNIQUE"));
  options.schema.mapped[0].value_column = "missing";
  pg.Psql("nokey_test", "ALTER TABLE things ADD PRIMARY KEY (id)");
  migrated = PostgresStore::Migrate(options);
  EXPECT_THAT(migrated.status().message(), HasSubstr("has no column missing"));
}

}  // namespace
}  // namespace cachecar::store
