// ConnectionPool: a fixed number of libpqxx connections, each used by one
// thread at a time. Internal to the PostgreSQL adapter (libpqxx types do not
// leave src/store/postgres).
//
// - A connection is opened when a lease needs one. After a failure to
//   connect, the pool waits (100 ms, doubling to max_backoff) before trying
//   again; meanwhile Acquire fails fast with UNAVAILABLE naming the last
//   error, so callers never queue behind a database that is down.
// - A pooled connection whose socket has something to read while idle (the
//   server closed it, e.g. pg_terminate_backend or a restart) is replaced
//   before use, so a statement is never sent on a connection known dead.
// - Every lease has a deadline. A watchdog thread cancels the statement of a
//   lease past its deadline (PQcancel) and the connection is then closed
//   rather than reused, so a late cancel can never hit the next statement.
//
// Time (deadlines, backoff, the watchdog) is read from the injected Clock;
// callers' deadlines are on that clock. Waits convert what is left of them
// into real time.
//
// Thread-safety: Acquire may be called from any thread; a Lease is used by
// the thread that holds it.
#ifndef CACHECAR_STORE_POSTGRES_CONNECTION_POOL_H_
#define CACHECAR_STORE_POSTGRES_CONNECTION_POOL_H_

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "common/clock.h"
#include "common/mutex.h"
#include "pqxx/connection"

namespace cachecar::store::postgres {

struct PoolOptions {
  std::string dsn;       // as libpq takes it (see WithConnectionDefaults)
  std::string password;  // scrubbed from every error text
  size_t size = 8;
  absl::Duration min_backoff = absl::Milliseconds(100);
  absl::Duration max_backoff = absl::Seconds(5);
  // Runs on every new connection (prepares statements); may throw.
  std::function<void(pqxx::connection&)> on_connect;
};

class ConnectionPool {
 public:
  class Lease;

  // `clock` must outlive the pool.
  explicit ConnectionPool(PoolOptions options, const Clock& clock = Clock::Real());
  ~ConnectionPool();
  ConnectionPool(const ConnectionPool&) = delete;
  ConnectionPool& operator=(const ConnectionPool&) = delete;

  // A connection for one call, until `deadline`. UNAVAILABLE when the
  // database cannot be reached (now, or recently: see backoff);
  // DEADLINE_EXCEEDED when every connection stayed busy until the deadline.
  absl::StatusOr<Lease> Acquire(absl::Time deadline);

  // How many connections are open now (for logs and tests).
  size_t open_connections() const;

  class Lease {
   public:
    Lease(Lease&& other) noexcept;
    Lease& operator=(Lease&&) = delete;
    ~Lease();

    pqxx::connection& conn() { return *conn_; }
    // The connection was opened for this lease (not taken from the pool).
    bool fresh() const { return fresh_; }
    // The connection must not be reused (it broke, or its state is unknown).
    void Discard() { discard_ = true; }
    // The watchdog cancelled this lease's statement (deadline passed).
    bool cancelled() const;

   private:
    friend class ConnectionPool;
    Lease(ConnectionPool* pool, size_t slot, pqxx::connection* conn, bool fresh)
        : pool_(pool), slot_(slot), conn_(conn), fresh_(fresh) {}
    ConnectionPool* pool_;
    size_t slot_;
    pqxx::connection* conn_;
    bool fresh_;
    bool discard_ = false;
  };

 private:
  struct Slot {
    std::unique_ptr<pqxx::connection> conn;
    bool leased = false;
    absl::Time deadline = absl::InfiniteFuture();  // while leased
    bool cancelled = false;                        // by the watchdog
    bool cancelling = false;                       // the watchdog is sending the cancel now
  };

  // Opens a connection (outside the lock). Returns the error text on failure.
  absl::StatusOr<std::unique_ptr<pqxx::connection>> Connect();
  // Acquire's end for a slot that had no connection: what Connect made of
  // it, the lease, or the error (and the backoff before the next try).
  absl::StatusOr<Lease> Connected(size_t slot,
                                  absl::StatusOr<std::unique_ptr<pqxx::connection>> opened);
  void Release(size_t slot, bool discard);
  void WatchdogLoop();
  static bool HasPendingInput(pqxx::connection& conn);
  // A wait until `t` on clock_, as a real-time point (at most an hour on:
  // waits loop anyway).
  std::chrono::system_clock::time_point ToChrono(absl::Time t) const;

  const PoolOptions options_;
  const Clock& clock_;
  mutable Mutex mu_;
  CondVar released_;  // a slot was released
  CondVar watchdog_wake_;
  CondVar cancel_done_;  // the watchdog finished sending cancels
  std::vector<Slot> slots_ ABSL_GUARDED_BY(mu_);
  absl::Time next_connect_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  std::string last_error_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::thread watchdog_;
};

}  // namespace cachecar::store::postgres

#endif  // CACHECAR_STORE_POSTGRES_CONNECTION_POOL_H_
