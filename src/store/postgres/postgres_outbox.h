// PostgresOutbox: the Outbox of the PostgreSQL store (cachecar_outbox).
// Relay claims rows with SELECT ... FOR UPDATE SKIP LOCKED inside one
// transaction, so replicas relaying at once never publish the same row twice
// at the same time, and deletes them in that transaction only after the
// publish callback says the broker has them. WaitForNew LISTENs on the
// channel the triggers NOTIFY, on a connection of its own.
// Internal to the PostgreSQL adapter, like connection_pool.h.
#ifndef CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_
#define CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_

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
  // `pool` must outlive this. `dsn` (with defaults) is for the LISTEN
  // connection; `password` is scrubbed from errors.
  PostgresOutbox(ConnectionPool& pool, std::string dsn, std::string password,
                 absl::Duration query_timeout);
  ~PostgresOutbox() override;

  absl::StatusOr<size_t> Relay(absl::Duration min_age, size_t limit,
                               const Publish& publish) override;
  absl::Status Retire(const std::vector<uint64_t>& versions) override;
  void WaitForNew(absl::Duration timeout) override;

 private:
  ConnectionPool& pool_;
  const std::string dsn_;
  const std::string password_;
  const absl::Duration query_timeout_;
  // The LISTEN connection and its receiver (WaitForNew's caller only).
  std::unique_ptr<pqxx::connection> listener_;
  std::unique_ptr<pqxx::notification_receiver> receiver_;
};

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_POSTGRES_OUTBOX_H_
