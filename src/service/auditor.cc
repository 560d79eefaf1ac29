// See auditor.h.
#include "service/auditor.h"

#include <algorithm>
#include <string>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/fault_point.h"
#include "spdlog/spdlog.h"

namespace cachecar::service {
namespace {

// The worst-lag gauge covers the current window and the one before.
constexpr absl::Duration kLagWindow = absl::Minutes(5);
// Store reads a round makes at most before it gives the thread back (an
// index with few entries in many slots can need several Sample calls).
constexpr int kMaxSampleCalls = 16;

std::string Printable(const std::string& key) {
  constexpr size_t kMax = 128;
  std::string out = absl::CHexEscape(key.size() > kMax ? key.substr(0, kMax) : key);
  if (key.size() > kMax) absl::StrAppend(&out, "...(", key.size(), " bytes)");
  return out;
}

}  // namespace

absl::Duration Pacer::After(size_t n) {
  const absl::Time now = clock_.Now();
  if (rate_ == 0) return absl::InfiniteDuration();
  if (due_ == absl::InfinitePast()) due_ = now;  // the first round began about now
  due_ += absl::Seconds(1) * static_cast<double>(n) / rate_;
  if (due_ < now) due_ = now;  // behind: go on at once, but no burst to catch up
  return due_ - now;
}

Auditor::Auditor(AuditorOptions options, NamespaceSet& namespaces, store::Store& store,
                 const Replication* replication, const cache::Clock* clock)
    : options_(options),
      batch_(options.batch > 0 ? options.batch
                               : std::clamp<size_t>(options.rate, size_t{1}, size_t{100})),
      namespaces_(namespaces),
      store_(store),
      replication_(replication),
      clock_(clock != nullptr ? *clock : cache::Clock::Real()) {}

Auditor::~Auditor() { Stop(); }

void Auditor::Start() {
  if (options_.rate == 0 || thread_.joinable()) return;
  thread_ = std::thread([this] { Loop(); });
}

void Auditor::Stop() {
  if (!thread_.joinable()) return;
  if (!stop_.HasBeenNotified()) stop_.Notify();
  thread_.join();
}

void Auditor::Loop() {
  Pacer pacer(options_.rate, clock_);
  std::string last_error;
  while (!stop_.HasBeenNotified()) {
    absl::StatusOr<size_t> checked = AuditOnce();
    absl::Duration wait = options_.idle;
    if (!checked.ok()) {
      // Said once per distinct error, not once per round.
      if (std::string why(checked.status().message()); why != last_error) {
        spdlog::warn("audit: cannot read versions from the store: {}; retrying every {}", why,
                     absl::FormatDuration(options_.idle));
        last_error = std::move(why);
      }
    } else {
      last_error.clear();
      if (*checked > 0) wait = pacer.After(*checked);
    }
    stop_.WaitForNotificationWithTimeout(wait);
  }
}

absl::StatusOr<size_t> Auditor::AuditOnce() {
  if (replication_ != nullptr && !replication_->CacheTrusted()) {
    skipped_.fetch_add(1, std::memory_order_relaxed);
    return 0;
  }
  const std::vector<Namespace*> all = namespaces_.All();
  if (all.empty()) return 0;
  cursors_.resize(all.size(), 0);
  size_t checked = 0;
  for (int call = 0; call < kMaxSampleCalls && checked < batch_; ++call) {
    const size_t i = next_namespace_ % all.size();
    Namespace& ns = *all[i];
    std::vector<cache::SampledEntry> sample = ns.engine->Sample(&cursors_[i], batch_ - checked);
    if (sample.empty()) {
      if (cursors_[i] == 0) ++next_namespace_;  // walked the whole namespace
      continue;
    }
    ++next_namespace_;  // the namespaces take turns, a batch each
    std::vector<std::string> keys;
    keys.reserve(sample.size());
    for (const cache::SampledEntry& e : sample) keys.push_back(e.key);
    store::CallOptions call_options;
    call_options.deadline = absl::Now() + options_.store_timeout;
    absl::StatusOr<store::VersionSnapshot> snapshot =
        store_.ReadVersions(ns.name, keys, call_options);
    if (snapshot.ok() && snapshot->records.size() != keys.size()) {
      snapshot = absl::InternalError(absl::StrCat("the store answered ", snapshot->records.size(),
                                                  " versions for ", keys.size(), " keys"));
    }
    if (!snapshot.ok()) {
      errors_.fetch_add(1, std::memory_order_relaxed);
      return snapshot.status();
    }
    Judge(ns, sample, *snapshot);
    checked += sample.size();
    if (cursors_[i] == 0) break;  // a walk's end ends the round (no key twice in one)
  }
  return checked;
}

void Auditor::Judge(Namespace& ns, const std::vector<cache::SampledEntry>& sample,
                    const store::VersionSnapshot& snapshot) {
  checked_.fetch_add(sample.size(), std::memory_order_relaxed);
  for (size_t i = 0; i < sample.size(); ++i) {
    const cache::SampledEntry& cached = sample[i];
    const store::VersionRecord& stored = snapshot.records[i];
    // The store has no trace of a key the cache holds a value of: it was
    // deleted and its tombstone cleaned up since (postgres_tombstone_retention).
    const bool vanished = !stored.found && stored.version == 0 && !cached.negative;
    if (stored.version <= cached.version && !vanished) continue;
    // The sample was taken before the store read: the engine may have
    // applied the newer version meanwhile. What it holds now (after the
    // read, so after `as_of`) is what is judged.
    const cache::Lookup now = ns.engine->Peek(cached.key);
    if (now.kind == cache::Lookup::Kind::kMiss) continue;
    if (!vanished && now.version >= stored.version) continue;
    if (vanished && (now.kind != cache::Lookup::Kind::kHit || now.version != cached.version)) {
      continue;
    }
    std::optional<absl::Duration> lag;
    if (!vanished && stored.written != absl::InfinitePast()) {
      lag = std::max(absl::ZeroDuration(), snapshot.as_of - stored.written);
      NoteLag(*lag);
    }
    if (!vanished && (!lag.has_value() || *lag <= options_.max_staleness)) {
      behind_.fetch_add(1, std::memory_order_relaxed);  // in flight
      continue;
    }
    divergent_.fetch_add(1, std::memory_order_relaxed);
    // The repair: the engine's own invalidation, which moves forward only
    // and inserts nothing (a read after it loads through a fill ticket).
    if (FaultArmed(kFaultAuditNoRepair)) {
      // planted bug: counted, not repaired
    } else if (vanished) {
      ns.engine->Invalidate(cached.key);
    } else {
      ns.engine->Apply(cached.key, stored.version, cache::ChangeKind::kInvalidate);
    }
    spdlog::warn(
        "audit: divergent entry dropped: namespace {} key '{}': cached version {}{}, store "
        "version {}{} ({})",
        ns.name, Printable(cached.key), now.version,
        now.kind == cache::Lookup::Kind::kNegative ? " (absent)" : "", stored.version,
        stored.found ? "" : " (absent)",
        vanished ? "the store no longer has the key at all"
                 : absl::StrCat("written ", absl::FormatDuration(*lag), " ago, over max_staleness ",
                                absl::FormatDuration(options_.max_staleness))
                       .c_str());
  }
}

void Auditor::NoteLag(absl::Duration lag) {
  const absl::Time now = clock_.Now();
  MutexLock lock(&mu_);
  if (window_start_ == absl::InfinitePast() || now - window_start_ >= kLagWindow) {
    worst_before_ = now - window_start_ >= 2 * kLagWindow ? absl::ZeroDuration() : worst_now_;
    worst_now_ = absl::ZeroDuration();
    window_start_ = now;
  }
  worst_now_ = std::max(worst_now_, lag);
}

AuditStats Auditor::stats() const {
  AuditStats s;
  s.checked = checked_.load(std::memory_order_relaxed);
  s.divergent = divergent_.load(std::memory_order_relaxed);
  s.behind = behind_.load(std::memory_order_relaxed);
  s.errors = errors_.load(std::memory_order_relaxed);
  s.skipped = skipped_.load(std::memory_order_relaxed);
  const absl::Time now = clock_.Now();
  MutexLock lock(&mu_);
  absl::Duration worst = absl::ZeroDuration();
  if (window_start_ != absl::InfinitePast()) {
    if (now - window_start_ < kLagWindow)
      worst = std::max(worst_now_, worst_before_);
    else if (now - window_start_ < 2 * kLagWindow)
      worst = worst_now_;
  }
  s.worst_lag_seconds = absl::ToDoubleSeconds(worst);
  return s;
}

}  // namespace cachecar::service
