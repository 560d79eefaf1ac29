// PostgresOutbox: the Outbox of the PostgreSQL store (cachecar_outbox and
// cachecar_relay_lease).
//   - Snapshot reads the store's clock, then (in a later statement, so a
//     later snapshot) every entry: a write committed before that clock
//     reading is visible to the snapshot.
//   - Relay claims entries by id with SELECT ... FOR UPDATE SKIP LOCKED
//     inside one transaction, so relays running at once never publish the
//     same row at the same time, and deletes them in that transaction only
//     after the publish callback says the broker has them.
//   - Leases are rows of cachecar_relay_lease whose expiry is set and
//     compared on the server's clock (no session state: this works through
//     PgBouncer in transaction mode, and a holder that is paused or cut off
//     loses its lease when it expires).
//   - WaitForNew LISTENs on the channel the triggers NOTIFY, on a connection
//     of its own, and checks once that a NOTIFY sent through the pool
//     arrives (it does not through PgBouncer in transaction mode); if it
//     does not, WaitForNew polls every `poll_without_listen` instead.
// Internal to the PostgreSQL adapter, like connection_pool.h.
#ifndef CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_
#define CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "pqxx/connection"
#include "pqxx/notification"
#include "store/store.h"

namespace cachecar::store::postgres {

class ConnectionPool;

class PostgresOutbox final : public Outbox {
 public:
  // The pool, or why there is none yet (the store is still connecting).
  using PoolSource = std::function<absl::StatusOr<ConnectionPool*>()>;

  // `dsn` (with defaults) is for the LISTEN connection; `password` is
  // scrubbed from errors.
  PostgresOutbox(PoolSource pool, std::string dsn, std::string password,
                 absl::Duration query_timeout,
                 absl::Duration poll_without_listen = absl::Milliseconds(25));
  ~PostgresOutbox() override;

  absl::StatusOr<OutboxSnapshot> Snapshot(size_t limit) override;
  absl::StatusOr<std::vector<int64_t>> Relay(const std::vector<int64_t>& ids,
                                             const Publish& publish) override;
  absl::StatusOr<std::vector<int64_t>> Present(const std::vector<int64_t>& ids) override;
  absl::Status Retire(const std::vector<uint64_t>& versions) override;
  void WaitForNew(absl::Duration timeout) override;
  absl::StatusOr<bool> HoldLease(const std::string& holder, int slots, absl::Duration ttl) override;
  absl::StatusOr<bool> LeaseAvailable(int slots) override;
  absl::Status ReleaseLease(const std::string& holder) override;

 private:
  class Wakeup;
  // Runs `fn(connection)` on a pooled connection with the query timeout.
  template <typename Fn>
  auto OnPool(Fn fn) -> decltype(fn(std::declval<pqxx::connection&>()));
  // (Re)opens the LISTEN connection and checks that it hears a NOTIFY.
  bool Listen();

  const PoolSource pool_;
  const std::string dsn_;
  const std::string password_;
  const absl::Duration query_timeout_;
  const absl::Duration poll_without_listen_;
  // The LISTEN connection and its receiver (WaitForNew's caller only).
  std::unique_ptr<pqxx::connection> listener_;
  std::unique_ptr<Wakeup> receiver_;
  bool listen_works_ = true;
  absl::Time retry_listen_at_ = absl::InfinitePast();
  uint64_t selftests_ = 0;
};

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_
