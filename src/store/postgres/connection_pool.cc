// See connection_pool.h.
#include "store/postgres/connection_pool.h"

#include <poll.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "common/redact.h"
#include "spdlog/spdlog.h"
#include "store/postgres/pg_errors.h"

namespace cachecar::store::postgres {
namespace {

constexpr absl::Duration kWatchdogTick = absl::Milliseconds(20);

}  // namespace

std::chrono::system_clock::time_point ConnectionPool::ToChrono(absl::Time t) const {
  // Far-future deadlines become "in an hour": waits loop anyway. The CondVar
  // waits on the real clock, for as long as clock_ has left until `t`.
  return absl::ToChronoTime(absl::Now() + std::min(t - clock_.Now(), absl::Hours(1)));
}

ConnectionPool::ConnectionPool(PoolOptions options, const Clock& clock)
    : options_(std::move(options)), clock_(clock), backoff_(options_.min_backoff) {
  {
    MutexLock lock(&mu_);
    slots_.resize(std::max<size_t>(1, options_.size));
  }
  watchdog_ = std::thread([this] { WatchdogLoop(); });
}

ConnectionPool::~ConnectionPool() {
  {
    MutexLock lock(&mu_);
    stopping_ = true;
    watchdog_wake_.SignalAll();
  }
  watchdog_.join();
}

size_t ConnectionPool::open_connections() const {
  MutexLock lock(&mu_);
  size_t n = 0;
  for (const Slot& slot : slots_) n += slot.conn != nullptr ? 1 : 0;
  return n;
}

bool ConnectionPool::HasPendingInput(pqxx::connection& conn) {
  const int fd = conn.sock();
  if (fd < 0) return true;
  pollfd p{fd, POLLIN, 0};
  return ::poll(&p, 1, 0) != 0;  // data, EOF, error: not a clean idle connection
}

absl::StatusOr<std::unique_ptr<pqxx::connection>> ConnectionPool::Connect() {
  try {
    auto conn = std::make_unique<pqxx::connection>(options_.dsn);
    if (options_.on_connect) options_.on_connect(*conn);
    return conn;
  } catch (const std::exception& e) {
    return absl::UnavailableError(ScrubSecret(
        absl::StrCat("cannot connect to PostgreSQL: ", FirstLine(e.what())), options_.password));
  }
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Acquire(absl::Time deadline) {
  size_t slot = 0;
  pqxx::connection* conn = nullptr;
  std::unique_ptr<pqxx::connection> stale;
  {
    MutexLock lock(&mu_);
    for (;;) {
      // A free slot with an open connection first, else any free slot.
      size_t best = slots_.size();
      for (size_t i = 0; i < slots_.size(); ++i) {
        if (slots_[i].leased) continue;
        if (slots_[i].conn != nullptr) {
          best = i;
          break;
        }
        if (best == slots_.size()) best = i;
      }
      if (best < slots_.size()) {
        slot = best;
        break;
      }
      if (clock_.Now() >= deadline) {
        return absl::DeadlineExceededError(
            absl::StrCat("all ", slots_.size(),
                         " PostgreSQL connections stayed busy until the call's deadline; raise "
                         "postgres_pool_size or the deadline"));
      }
      released_.WaitUntil(&mu_, ToChrono(deadline));
    }
    Slot& s = slots_[slot];
    if (s.conn == nullptr && clock_.Now() < next_connect_) {
      return absl::UnavailableError(absl::StrCat(
          last_error_, " (retrying in ",
          absl::FormatDuration(absl::Ceil(next_connect_ - clock_.Now(), absl::Milliseconds(1))),
          ")"));
    }
    s.leased = true;
    s.cancelled = false;
    s.deadline = deadline;
    if (s.conn != nullptr && HasPendingInput(*s.conn)) stale = std::move(s.conn);
    conn = s.conn.get();
  }
  if (stale != nullptr) {
    spdlog::info("postgres: replacing a pooled connection the server closed");
    stale.reset();
  }
  if (conn != nullptr) return Lease(this, slot, conn, /*fresh=*/false);

  return Connected(slot, Connect());
}

absl::StatusOr<ConnectionPool::Lease> ConnectionPool::Connected(
    size_t slot, absl::StatusOr<std::unique_ptr<pqxx::connection>> opened) {
  MutexLock lock(&mu_);
  Slot& s = slots_[slot];
  if (!opened.ok()) {
    s.leased = false;
    released_.Signal();
    const bool was_up = last_error_.empty();
    last_error_ = std::string(opened.status().message());
    next_connect_ = clock_.Now() + backoff_;
    backoff_ = std::min(backoff_ * 2, options_.max_backoff);
    if (was_up) spdlog::warn("postgres: {}", last_error_);
    return opened.status();
  }
  if (!last_error_.empty()) spdlog::info("postgres: connected again");
  last_error_.clear();
  backoff_ = options_.min_backoff;
  next_connect_ = absl::InfinitePast();
  s.conn = *std::move(opened);
  return Lease(this, slot, s.conn.get(), /*fresh=*/true);
}

void ConnectionPool::Release(size_t slot, bool discard) {
  std::unique_ptr<pqxx::connection> closing;
  {
    MutexLock lock(&mu_);
    Slot& s = slots_[slot];
    while (s.cancelling) cancel_done_.Wait(&mu_);
    if (discard || s.cancelled) closing = std::move(s.conn);
    s.leased = false;
    s.cancelled = false;
    s.deadline = absl::InfiniteFuture();
    released_.Signal();
  }
}

void ConnectionPool::WatchdogLoop() {
  for (;;) {
    std::vector<std::pair<size_t, pqxx::connection*>> to_cancel;
    {
      MutexLock lock(&mu_);
      if (stopping_) return;
      const absl::Time now = clock_.Now();
      absl::Time next = now + kWatchdogTick;
      for (size_t i = 0; i < slots_.size(); ++i) {
        Slot& s = slots_[i];
        if (!s.leased || s.conn == nullptr || s.cancelled) continue;
        if (s.deadline <= now) {
          s.cancelled = true;
          s.cancelling = true;
          to_cancel.emplace_back(i, s.conn.get());
        }
      }
      if (to_cancel.empty()) {
        watchdog_wake_.WaitUntil(&mu_, ToChrono(next));
        continue;
      }
    }
    // Outside the lock: PQcancel opens a connection of its own.
    for (auto& [slot, conn] : to_cancel) {
      try {
        conn->cancel_query();
      } catch (const std::exception& e) {
        spdlog::debug("postgres: cancel failed: {}", FirstLine(e.what()));
      }
    }
    MutexLock lock(&mu_);
    for (auto& entry : to_cancel) slots_[entry.first].cancelling = false;
    cancel_done_.SignalAll();
  }
}

ConnectionPool::Lease::Lease(Lease&& other) noexcept
    : pool_(std::exchange(other.pool_, nullptr)),
      slot_(other.slot_),
      conn_(other.conn_),
      fresh_(other.fresh_),
      discard_(other.discard_) {}

ConnectionPool::Lease::~Lease() {
  if (pool_ != nullptr) pool_->Release(slot_, discard_);
}

bool ConnectionPool::Lease::cancelled() const {
  MutexLock lock(&pool_->mu_);
  return pool_->slots_[slot_].cancelled;
}

}  // namespace cachecar::store::postgres
