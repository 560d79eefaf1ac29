// See postgres_outbox.h.
#include "store/postgres/postgres_outbox.h"

#include <unistd.h>

#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "pqxx/binarystring"
#include "pqxx/connection"
#include "pqxx/nontransaction"
#include "pqxx/notification"
#include "pqxx/result"
#include "pqxx/row"
#include "pqxx/transaction"
#include "spdlog/spdlog.h"
#include "store/postgres/connection_pool.h"
#include "store/postgres/pg_errors.h"
#include "store/postgres/schema.h"

namespace cachecar::store::postgres {
namespace {

const char kClockQuery[] = "SELECT (extract(epoch FROM clock_timestamp()) * 1000000)::int8";
const char kEntryColumns[] =
    "id, \"namespace\", \"key\", version, op, value, "
    "(extract(epoch FROM created_at) * 1000000)::int8, announced";
const char kDeleteClaimedQuery[] = "DELETE FROM cachecar_outbox WHERE id = ANY($1::bigint[])";
const char kPresentQuery[] = "SELECT id FROM cachecar_outbox WHERE id = ANY($1::bigint[])";
const char kRetireQuery[] = "DELETE FROM cachecar_outbox WHERE version = ANY($1::bigint[])";
// Renews the lease `holder` holds, or else takes the first free one.
// $1 holder, $2 slots, $3 ttl in seconds.
const char kHoldLeaseQuery[] =
    "WITH mine AS (UPDATE cachecar_relay_lease SET expires_at = clock_timestamp() + "
    "make_interval(secs => $3::double precision) WHERE holder = $1 AND slot < $2::int "
    "AND expires_at >= clock_timestamp() RETURNING slot), "
    "free AS (SELECT slot FROM cachecar_relay_lease WHERE slot < $2::int "
    "AND expires_at < clock_timestamp() AND NOT EXISTS (SELECT 1 FROM mine) "
    "ORDER BY slot LIMIT 1 FOR UPDATE SKIP LOCKED), "
    "taken AS (UPDATE cachecar_relay_lease l SET holder = $1, expires_at = clock_timestamp() + "
    "make_interval(secs => $3::double precision) FROM free WHERE l.slot = free.slot "
    "RETURNING l.slot) "
    "SELECT slot FROM mine UNION ALL SELECT slot FROM taken";
const char kLeaseAvailableQuery[] =
    "SELECT count(*) FROM cachecar_relay_lease WHERE slot < $1::int "
    "AND expires_at < clock_timestamp()";
const char kReleaseLeaseQuery[] =
    "UPDATE cachecar_relay_lease SET expires_at = '-infinity' WHERE holder = $1";
constexpr absl::Duration kListenSelfTestWait = absl::Seconds(2);
constexpr absl::Duration kListenRetryAfter = absl::Minutes(1);

OutboxEntry::Op ParseOp(const std::string& op) {
  if (op == "DELETE") return OutboxEntry::Op::kDelete;
  if (op == "INVALIDATE") return OutboxEntry::Op::kInvalidate;
  if (op == "FLUSH") return OutboxEntry::Op::kFlush;
  return OutboxEntry::Op::kUpsert;
}

template <typename Int>
std::string BigintArray(const std::vector<Int>& ids) {
  return absl::StrCat("{", absl::StrJoin(ids, ","), "}");
}

// A row of kEntryColumns.
OutboxEntry ParseEntry(const pqxx::row& row) {
  OutboxEntry e;
  e.id = row[0].as<int64_t>();
  e.ns = row[1].as<std::string>();
  e.key = row[2].as<std::string>();
  e.version = static_cast<uint64_t>(row[3].as<int64_t>());
  e.op = ParseOp(row[4].as<std::string>());
  if (!row[5].is_null()) e.value = pqxx::binarystring(row[5]).str();
  e.created = absl::FromUnixMicros(row[6].as<int64_t>());
  e.announced = row[7].as<bool>();
  return e;
}

}  // namespace

// Notifications are consumed by await_notification only when a receiver is
// registered for the channel; this one remembers the self-tests it heard.
class PostgresOutbox::Wakeup final : public pqxx::notification_receiver {
 public:
  explicit Wakeup(pqxx::connection& c) : pqxx::notification_receiver(c, kOutboxChannel) {}
  void operator()(const std::string& payload, int) override {
    if (absl::StartsWith(payload, "selftest:")) last_selftest = payload;
  }
  std::string last_selftest;
};

PostgresOutbox::PostgresOutbox(PoolSource pool, std::string dsn, std::string password,
                               absl::Duration query_timeout, absl::Duration poll_without_listen)
    : pool_(std::move(pool)),
      dsn_(std::move(dsn)),
      password_(std::move(password)),
      query_timeout_(query_timeout),
      poll_without_listen_(poll_without_listen) {}

PostgresOutbox::~PostgresOutbox() {
  receiver_.reset();  // before its connection
}

template <typename Fn>
auto PostgresOutbox::OnPool(Fn fn) -> decltype(fn(std::declval<pqxx::connection&>())) {
  absl::StatusOr<ConnectionPool*> pool = pool_();
  if (!pool.ok()) return pool.status();
  absl::StatusOr<ConnectionPool::Lease> lease = (*pool)->Acquire(absl::Now() + query_timeout_);
  if (!lease.ok()) return lease.status();
  try {
    return fn(lease->conn());
  } catch (...) {
    Failure f = ClassifyCurrentException(CallKind::kWrite, lease->cancelled(), password_);
    if (f.connection_lost || lease->cancelled()) lease->Discard();
    return f.status;
  }
}

absl::StatusOr<OutboxSnapshot> PostgresOutbox::Snapshot(size_t limit) {
  return OnPool([&](pqxx::connection& c) -> absl::StatusOr<OutboxSnapshot> {
    pqxx::nontransaction tx(c);
    OutboxSnapshot snapshot;
    // Two statements: the second one's snapshot is taken after the clock
    // was read, so it sees every write that committed before `as_of`.
    snapshot.as_of = absl::FromUnixMicros(tx.exec(kClockQuery)[0][0].as<int64_t>());
    const pqxx::result rows =
        tx.exec_params(absl::StrCat("SELECT ", kEntryColumns, " FROM ", kOutboxTable,
                                    " ORDER BY id LIMIT $1::int"),
                       static_cast<int>(limit + 1));
    for (const pqxx::row& row : rows) {
      if (snapshot.entries.size() == limit) {
        snapshot.complete = false;
        break;
      }
      snapshot.entries.push_back(ParseEntry(row));
    }
    return snapshot;
  });
}

absl::StatusOr<std::vector<int64_t>> PostgresOutbox::Relay(const std::vector<int64_t>& ids,
                                                           const Publish& publish) {
  if (ids.empty()) return std::vector<int64_t>{};
  absl::StatusOr<ConnectionPool*> pool = pool_();
  if (!pool.ok()) return pool.status();
  // The publish waits for the broker inside the transaction; the pool's
  // watchdog must not cancel it meanwhile, so the lease gets a generous
  // deadline and each statement its own timeout.
  absl::StatusOr<ConnectionPool::Lease> lease =
      (*pool)->Acquire(absl::Now() + query_timeout_ + absl::Seconds(30));
  if (!lease.ok()) return lease.status();
  try {
    pqxx::work tx(lease->conn());
    tx.exec0(
        absl::StrCat("SET LOCAL statement_timeout = ", absl::ToInt64Milliseconds(query_timeout_)));
    const pqxx::result rows = tx.exec_params(
        absl::StrCat("SELECT ", kEntryColumns, " FROM ", kOutboxTable,
                     " WHERE id = ANY($1::bigint[]) ORDER BY id FOR UPDATE SKIP LOCKED"),
        BigintArray(ids));
    std::vector<int64_t> claimed;
    if (rows.empty()) return claimed;
    std::vector<OutboxEntry> entries;
    entries.reserve(rows.size());
    for (const pqxx::row& row : rows) {
      entries.push_back(ParseEntry(row));
      claimed.push_back(entries.back().id);
    }
    if (absl::Status s = publish(entries); !s.ok()) return s;  // rolls back: rows stay
    tx.exec_params0(kDeleteClaimedQuery, BigintArray(claimed));
    tx.commit();
    return claimed;
  } catch (...) {
    Failure f = ClassifyCurrentException(CallKind::kWrite, lease->cancelled(), password_);
    lease->Discard();  // a transaction may be open; start clean next time
    return f.status;
  }
}

absl::StatusOr<std::vector<int64_t>> PostgresOutbox::Present(const std::vector<int64_t>& ids) {
  if (ids.empty()) return std::vector<int64_t>{};
  return OnPool([&](pqxx::connection& c) -> absl::StatusOr<std::vector<int64_t>> {
    pqxx::nontransaction tx(c);
    std::vector<int64_t> out;
    for (const pqxx::row& row : tx.exec_params(kPresentQuery, BigintArray(ids))) {
      out.push_back(row[0].as<int64_t>());
    }
    return out;
  });
}

absl::Status PostgresOutbox::Retire(const std::vector<uint64_t>& versions) {
  if (versions.empty()) return absl::OkStatus();
  return OnPool([&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction tx(c);
    tx.exec_params0(kRetireQuery, BigintArray(versions));
    return absl::OkStatus();
  });
}

absl::StatusOr<bool> PostgresOutbox::HoldLease(const std::string& holder, int slots,
                                               absl::Duration ttl) {
  return OnPool([&](pqxx::connection& c) -> absl::StatusOr<bool> {
    pqxx::nontransaction tx(c);
    return !tx.exec_params(kHoldLeaseQuery, holder, slots, absl::ToDoubleSeconds(ttl)).empty();
  });
}

absl::StatusOr<bool> PostgresOutbox::LeaseAvailable(int slots) {
  return OnPool([&](pqxx::connection& c) -> absl::StatusOr<bool> {
    pqxx::nontransaction tx(c);
    return tx.exec_params(kLeaseAvailableQuery, slots)[0][0].as<int64_t>() > 0;
  });
}

absl::Status PostgresOutbox::ReleaseLease(const std::string& holder) {
  return OnPool([&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction tx(c);
    tx.exec_params0(kReleaseLeaseQuery, holder);
    return absl::OkStatus();
  });
}

bool PostgresOutbox::Listen() {
  receiver_.reset();
  listener_.reset();
  try {
    listener_ = std::make_unique<pqxx::connection>(dsn_);
    receiver_ = std::make_unique<Wakeup>(*listener_);  // LISTENs while it lives
  } catch (const std::exception& e) {
    spdlog::debug("outbox: LISTEN connection: {}", FirstLine(e.what()));
    receiver_.reset();
    listener_.reset();
    return false;
  }
  // A NOTIFY sent through the pool must reach this connection. Through
  // PgBouncer in transaction mode it does not: LISTEN holds a server
  // session only for its own transaction.
  const std::string payload = absl::StrCat("selftest:", ::getpid(), ":", ++selftests_);
  absl::Status sent = OnPool([&](pqxx::connection& c) -> absl::Status {
    pqxx::nontransaction tx(c);
    tx.exec_params("SELECT pg_notify($1, $2)", std::string(kOutboxChannel), payload);
    return absl::OkStatus();
  });
  if (!sent.ok()) {
    spdlog::debug("outbox: LISTEN self-test: {}", std::string(sent.message()));
    return false;  // the store is away: try again next time
  }
  const absl::Time until = absl::Now() + kListenSelfTestWait;
  try {
    while (receiver_->last_selftest != payload && absl::Now() < until) {
      const int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(until - absl::Now()));
      listener_->await_notification(static_cast<long>(us / 1000000),
                                    static_cast<long>(us % 1000000));
    }
  } catch (const std::exception& e) {
    spdlog::debug("outbox: LISTEN connection: {}", FirstLine(e.what()));
  }
  if (receiver_->last_selftest == payload) {
    if (!listen_works_) spdlog::info("outbox: LISTEN works again; relays wake on NOTIFY");
    listen_works_ = true;
    return true;
  }
  if (listen_works_) {
    spdlog::warn(
        "outbox: a NOTIFY sent through the pool did not reach the LISTEN connection within {} "
        "(PgBouncer in transaction mode does not carry LISTEN); relays poll the outbox every {} "
        "instead, and check again in {}",
        absl::FormatDuration(kListenSelfTestWait), absl::FormatDuration(poll_without_listen_),
        absl::FormatDuration(kListenRetryAfter));
  }
  listen_works_ = false;
  retry_listen_at_ = absl::Now() + kListenRetryAfter;
  receiver_.reset();
  listener_.reset();
  return false;
}

void PostgresOutbox::WaitForNew(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  if (listener_ == nullptr && (listen_works_ || absl::Now() >= retry_listen_at_)) Listen();
  if (listener_ != nullptr) {
    try {
      const int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(until - absl::Now()));
      listener_->await_notification(static_cast<long>(us / 1000000),
                                    static_cast<long>(us % 1000000));
      // Drain what else arrived, so one wakeup covers a burst.
      listener_->get_notifs();
      if (listener_->is_open()) return;
    } catch (const std::exception& e) {
      spdlog::debug("outbox: LISTEN connection: {}", FirstLine(e.what()));
    }
    receiver_.reset();
    listener_.reset();
  }
  // Not listening: behave like a poll, every poll_without_listen when
  // LISTEN cannot work here, else with this timeout (the store is away).
  const absl::Duration left =
      std::min(until - absl::Now(), listen_works_ ? timeout : poll_without_listen_);
  if (left > absl::ZeroDuration()) {
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(left));
  }
}

}  // namespace cachecar::store::postgres
