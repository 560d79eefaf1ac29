// See postgres_outbox.h.
#include "store/postgres/postgres_outbox.h"

#include <thread>

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

const char kClaimQuery[] =
    "SELECT id, \"namespace\", \"key\", version, op, value, "
    "extract(epoch FROM created_at)::float8 FROM cachecar_outbox "
    "WHERE created_at < now() - make_interval(secs => $1::double precision) "
    "ORDER BY id LIMIT $2::int FOR UPDATE SKIP LOCKED";
const char kDeleteClaimedQuery[] = "DELETE FROM cachecar_outbox WHERE id = ANY($1::bigint[])";
const char kRetireQuery[] = "DELETE FROM cachecar_outbox WHERE version = ANY($1::bigint[])";

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

// Notifications are consumed by await_notification only when a receiver is
// registered for the channel; this one just counts them.
class Wakeup final : public pqxx::notification_receiver {
 public:
  explicit Wakeup(pqxx::connection& c) : pqxx::notification_receiver(c, kOutboxChannel) {}
  void operator()(const std::string&, int) override {}
};

}  // namespace

PostgresOutbox::PostgresOutbox(ConnectionPool& pool, std::string dsn, std::string password,
                               absl::Duration query_timeout)
    : pool_(pool),
      dsn_(std::move(dsn)),
      password_(std::move(password)),
      query_timeout_(query_timeout) {}

PostgresOutbox::~PostgresOutbox() {
  receiver_.reset();  // before its connection
}

absl::StatusOr<size_t> PostgresOutbox::Relay(absl::Duration min_age, size_t limit,
                                             const Publish& publish) {
  // The publish waits for the broker inside the transaction; the pool's
  // watchdog must not cancel it meanwhile, so the lease gets a generous
  // deadline and each statement its own timeout.
  absl::StatusOr<ConnectionPool::Lease> lease =
      pool_.Acquire(absl::Now() + query_timeout_ + absl::Seconds(30));
  if (!lease.ok()) return lease.status();
  try {
    pqxx::work tx(lease->conn());
    tx.exec0(
        absl::StrCat("SET LOCAL statement_timeout = ", absl::ToInt64Milliseconds(query_timeout_)));
    const pqxx::result rows =
        tx.exec_params(kClaimQuery, absl::ToDoubleSeconds(min_age), static_cast<int>(limit));
    if (rows.empty()) return size_t{0};
    std::vector<OutboxEntry> entries;
    std::vector<int64_t> ids;
    entries.reserve(rows.size());
    for (const pqxx::row& row : rows) {
      ids.push_back(row[0].as<int64_t>());
      OutboxEntry e;
      e.ns = row[1].as<std::string>();
      e.key = row[2].as<std::string>();
      e.version = static_cast<uint64_t>(row[3].as<int64_t>());
      e.op = ParseOp(row[4].as<std::string>());
      if (!row[5].is_null()) e.value = pqxx::binarystring(row[5]).str();
      e.created = absl::FromUnixMicros(static_cast<int64_t>(row[6].as<double>() * 1e6));
      entries.push_back(std::move(e));
    }
    if (absl::Status s = publish(entries); !s.ok()) return s;  // rolls back: rows stay
    tx.exec_params0(kDeleteClaimedQuery, BigintArray(ids));
    tx.commit();
    return entries.size();
  } catch (...) {
    Failure f = ClassifyCurrentException(CallKind::kWrite, lease->cancelled(), password_);
    lease->Discard();  // a transaction may be open; start clean next time
    return f.status;
  }
}

absl::Status PostgresOutbox::Retire(const std::vector<uint64_t>& versions) {
  if (versions.empty()) return absl::OkStatus();
  absl::StatusOr<ConnectionPool::Lease> lease = pool_.Acquire(absl::Now() + query_timeout_);
  if (!lease.ok()) return lease.status();
  try {
    pqxx::nontransaction tx(lease->conn());
    tx.exec_params0(kRetireQuery, BigintArray(versions));
    return absl::OkStatus();
  } catch (...) {
    Failure f = ClassifyCurrentException(CallKind::kWrite, lease->cancelled(), password_);
    if (f.connection_lost || lease->cancelled()) lease->Discard();
    return f.status;
  }
}

void PostgresOutbox::WaitForNew(absl::Duration timeout) {
  const absl::Time until = absl::Now() + timeout;
  try {
    if (listener_ == nullptr) {
      listener_ = std::make_unique<pqxx::connection>(dsn_);
      receiver_ = std::make_unique<Wakeup>(*listener_);  // LISTENs while it lives
    }
    const int64_t us = std::max<int64_t>(0, absl::ToInt64Microseconds(until - absl::Now()));
    listener_->await_notification(static_cast<long>(us / 1000000), static_cast<long>(us % 1000000));
    // Drain what else arrived, so one wakeup covers a burst.
    listener_->get_notifs();
    if (listener_->is_open()) return;
    receiver_.reset();
    listener_.reset();
  } catch (const std::exception& e) {
    spdlog::debug("outbox: LISTEN connection: {}", FirstLine(e.what()));
    receiver_.reset();
    listener_.reset();
  }
  // Could not listen: behave like a poll with this period.
  const absl::Duration left = until - absl::Now();
  if (left > absl::ZeroDuration()) {
    std::this_thread::sleep_for(absl::ToChronoMicroseconds(left));
  }
}

}  // namespace cachecar::store::postgres
