// See warm_start.h.
#include "service/warm_start.h"

#include <algorithm>
#include <utility>

#include "absl/container/flat_hash_set.h"
#include "service/store_fill.h"
#include "spdlog/spdlog.h"

namespace cachecar::service {

WarmKeys SnapshotKeys(const NamespaceSet& namespaces) {
  WarmKeys out;
  for (const Namespace* ns : namespaces.All()) {
    WarmNamespace w;
    w.name = ns->name;
    ns->engine->ForEachKey([&w](std::string_view key) { w.keys.emplace_back(key); });
    if (!w.keys.empty()) out.namespaces.push_back(std::move(w));
  }
  return out;
}

void AddUnvisited(WarmKeys& snapshot, WarmKeys unvisited) {
  for (WarmNamespace& more : unvisited.namespaces) {
    auto same = std::find_if(snapshot.namespaces.begin(), snapshot.namespaces.end(),
                             [&more](const WarmNamespace& w) { return w.name == more.name; });
    if (same == snapshot.namespaces.end()) {
      snapshot.namespaces.push_back(std::move(more));
      continue;
    }
    absl::flat_hash_set<std::string> listed(same->keys.begin(), same->keys.end());
    for (std::string& key : more.keys) {
      if (listed.insert(key).second) same->keys.push_back(std::move(key));
    }
  }
}

WarmLoader::WarmLoader(NamespaceSet& namespaces, store::Store& store, WarmLoaderOptions options)
    : namespaces_(namespaces),
      store_(store),
      options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : cache::Clock::Real()) {}

WarmLoader::~WarmLoader() { Stop(); }

void WarmLoader::Start(WarmKeys keys) {
  thread_ = std::thread([this, keys = std::move(keys)]() mutable { Run(std::move(keys)); });
}

void WarmLoader::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

WarmLoaderStats WarmLoader::stats() const {
  WarmLoaderStats s;
  s.keys_total = total_.load(std::memory_order_relaxed);
  s.keys_loaded = loaded_.load(std::memory_order_relaxed);
  s.keys_skipped = skipped_.load(std::memory_order_relaxed);
  s.batches = batches_.load(std::memory_order_relaxed);
  s.store_errors = errors_.load(std::memory_order_relaxed);
  s.done = done_.load(std::memory_order_acquire);
  return s;
}

WarmKeys WarmLoader::Unvisited() const {
  MutexLock lock(&mu_);
  return unvisited_;
}

void WarmLoader::KeepUnvisited(Work& work, size_t ns_index, size_t key_index) {
  WarmKeys left;
  for (size_t n = ns_index; n < work.size(); ++n) {
    std::vector<std::string>& keys = work[n].second;
    const size_t from = n == ns_index ? std::min(key_index, keys.size()) : 0;
    if (from == keys.size()) continue;
    left.namespaces.push_back(
        {work[n].first->name, std::vector<std::string>(std::make_move_iterator(keys.begin() + from),
                                                       std::make_move_iterator(keys.end()))});
  }
  MutexLock lock(&mu_);
  unvisited_ = std::move(left);
}

bool WarmLoader::Pause(absl::Duration d) { return !stop_.WaitForNotificationWithTimeout(d); }

absl::StatusOr<size_t> WarmLoader::LoadBatch(Namespace& ns, const std::vector<std::string>& keys) {
  batches_.fetch_add(1, std::memory_order_relaxed);
  absl::StatusOr<std::vector<bool>> filled =
      FillFromStore(ns, store_, keys, absl::Now() + options_.call_timeout);
  if (!filled.ok()) return filled.status();
  const size_t n = static_cast<size_t>(std::count(filled->begin(), filled->end(), true));
  loaded_.fetch_add(n, std::memory_order_relaxed);
  skipped_.fetch_add(keys.size() - n, std::memory_order_relaxed);
  return n;
}

bool WarmLoader::WaitForTurn(absl::Time started, uint64_t sent) {
  if (options_.keys_per_second > 0) {
    const absl::Time due = started + absl::Seconds(sent / options_.keys_per_second);
    const absl::Duration wait = due - clock_.Now();
    if (wait > absl::ZeroDuration() && !Pause(wait)) return false;
  }
  // Live misses and writes first: wait while they queue for the store,
  // but not for long (a busy replica still warms: the warm keys are what
  // ends the misses).
  for (int i = 0; i < 10 && options_.live_busy && options_.live_busy(); ++i) {
    if (!Pause(absl::Milliseconds(2))) return false;
  }
  return !stop_.HasBeenNotified();
}

bool WarmLoader::LoadWithRetry(Namespace& ns, const std::vector<std::string>& keys) {
  absl::Duration backoff = absl::Milliseconds(100);
  const absl::Time give_up = clock_.Now() + options_.give_up_after;
  while (true) {
    absl::StatusOr<size_t> filled = LoadBatch(ns, keys);
    if (filled.ok()) return true;
    errors_.fetch_add(1, std::memory_order_relaxed);
    if (clock_.Now() >= give_up) {
      spdlog::warn("warm start: giving up: the store failed for {}: {}",
                   absl::FormatDuration(options_.give_up_after),
                   std::string(filled.status().message()));
      return false;
    }
    spdlog::debug("warm start: store read failed ({}); retrying in {}",
                  std::string(filled.status().message()), absl::FormatDuration(backoff));
    if (!Pause(backoff)) return false;
    backoff = std::min(backoff * 2, absl::Seconds(5));
  }
}

// One loop over namespaces and batches, with its waits, progress logs and
// the reasons to stop early; split further it would only pass its state
// around.
void WarmLoader::Run(WarmKeys keys) {
  Work work;
  for (WarmNamespace& w : keys.namespaces) {
    absl::StatusOr<Namespace*> ns = namespaces_.Find(w.name);
    if (!ns.ok() || w.name.empty()) {
      spdlog::warn("warm start: namespace {} is not declared any more: its {} keys are skipped",
                   w.name, w.keys.size());
      continue;
    }
    total_.fetch_add(w.keys.size(), std::memory_order_relaxed);
    work.emplace_back(*ns, std::move(w.keys));
  }
  while (options_.may_start && !options_.may_start()) {
    if (!Pause(absl::Milliseconds(20))) {
      KeepUnvisited(work, 0, 0);
      done_.store(true, std::memory_order_release);
      return;
    }
  }
  const absl::Time wall_start = absl::Now();
  const absl::Time started = clock_.Now();
  spdlog::info("warm start: reloading {} keys from the store (at most {} keys/s)", total_.load(),
               options_.keys_per_second);
  uint64_t sent = 0;
  bool ok = true;
  const size_t batch = std::max<size_t>(1, options_.batch_keys);
  for (size_t n = 0; ok && n < work.size(); ++n) {
    const std::vector<std::string>& list = work[n].second;
    for (size_t i = 0; i < list.size(); i += batch) {
      const size_t end = std::min(list.size(), i + batch);
      // A copy: the batch stays listed until it is loaded.
      const std::vector<std::string> part(list.begin() + i, list.begin() + end);
      ok = WaitForTurn(started, sent) && LoadWithRetry(*work[n].first, part);
      if (!ok) {
        KeepUnvisited(work, n, i);
        break;
      }
      sent += part.size();
    }
  }
  const WarmLoaderStats s = stats();
  spdlog::info(
      "warm start: {} after {}: {} of {} keys loaded, {} skipped (newer news won), {} "
      "store reads, {} failed",
      ok ? "done" : "stopped", absl::FormatDuration(absl::Now() - wall_start), s.keys_loaded,
      s.keys_total, s.keys_skipped, s.batches, s.store_errors);
  done_.store(true, std::memory_order_release);
}

}  // namespace cachecar::service
