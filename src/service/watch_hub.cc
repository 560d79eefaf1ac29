// See watch_hub.h.
#include "service/watch_hub.h"

#include <algorithm>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace cachecar::service {

// --- Watcher ------------------------------------------------------------------

namespace {

size_t CostOf(const Change& change) {
  return change.key.size() + change.ns.size() + kChangeOverheadBytes;
}

}  // namespace

bool WatchHub::Watcher::Next(Change* out) {
  MutexLock lock(&mu_);
  if (queue_.empty()) return false;
  *out = std::move(queue_.front());
  queue_.pop_front();
  queued_bytes_ -= CostOf(*out);
  return true;
}

std::vector<Change> WatchHub::Watcher::TakeAll() {
  MutexLock lock(&mu_);
  std::vector<Change> out(std::make_move_iterator(queue_.begin()),
                          std::make_move_iterator(queue_.end()));
  queue_.clear();
  queued_bytes_ = 0;
  return out;
}

absl::Status WatchHub::Watcher::status() const {
  MutexLock lock(&mu_);
  return status_;
}

bool WatchHub::Watcher::Wants(const Change& change) const {
  return change.op == ChangeOp::kFlush || absl::StartsWith(change.key, key_prefix_);
}

WatchHub::Watcher::Offered WatchHub::Watcher::Offer(const Change& change,
                                                    const WatchHubOptions& options,
                                                    const absl::Status& overflow) {
  MutexLock lock(&mu_);
  if (!status_.ok() || unsubscribed_) return Offered::kIgnored;
  const size_t cost = CostOf(change);
  if (queue_.size() >= options.max_queued_per_watcher ||
      queued_bytes_ + cost > options.max_queued_bytes_per_watcher) {
    status_ = overflow;
    queue_.clear();
    queued_bytes_ = 0;
    return Offered::kOverflowed;
  }
  queue_.push_back(change);
  queued_bytes_ += cost;
  return queue_.size() == 1 ? Offered::kQueuedWake
                            : Offered::kQueued;  // the consumer was woken already
}

bool WatchHub::Watcher::Close(absl::Status status) {
  MutexLock lock(&mu_);
  if (!status_.ok()) return false;
  status_ = std::move(status);
  queue_.clear();
  queued_bytes_ = 0;
  return !unsubscribed_;
}

void WatchHub::Watcher::RunWake() {
  {
    MutexLock lock(&mu_);
    if (unsubscribed_) return;
  }
  if (wake_) wake_();
}

void WatchHub::Watcher::Detach() {
  MutexLock lock(&mu_);
  unsubscribed_ = true;
  if (status_.ok()) {
    status_ = absl::CancelledError("the watch was cancelled");
    queue_.clear();
    queued_bytes_ = 0;
  }
}

// --- WatchHub -----------------------------------------------------------------

absl::Status WatchHub::ShuttingDown() {
  return absl::UnavailableError("cachecar is shutting down; call Watch again on a running replica");
}

WatchHub::WatchHub(const NamespaceSet& namespaces, WatchHubOptions options)
    : namespaces_(namespaces),
      options_(options),
      overflow_(absl::ResourceExhaustedError(absl::StrCat(
          "watch stream fell more than ", options.max_queued_per_watcher, " changes or ",
          options.max_queued_bytes_per_watcher,
          " bytes behind (watch_queue_bytes); read faster, or call Watch again and re-read the "
          "keys you care about"))) {}

WatchHub::~WatchHub() { CloseAll(); }

void WatchHub::Publish(const Change& change) {
  if (watchers_.load(std::memory_order_acquire) == 0) return;
  const absl::string_view ns = change.ns.empty() ? absl::string_view("default") : change.ns;
  std::vector<std::shared_ptr<Watcher>> to_wake;
  {
    MutexLock lock(&mu_);
    auto it = by_ns_.find(ns);
    if (it == by_ns_.end()) return;
    std::vector<const Watcher*> overflowed;
    for (const std::shared_ptr<Watcher>& w : it->second) {
      if (!w->Wants(change)) continue;
      switch (w->Offer(change, options_, overflow_)) {
        case Watcher::Offered::kIgnored:
        case Watcher::Offered::kQueued:
          break;
        case Watcher::Offered::kOverflowed:
          overflowed.push_back(w.get());
          [[fallthrough]];
        case Watcher::Offered::kQueuedWake:
          to_wake.push_back(w);
          break;
      }
    }
    // A closed watcher leaves the hub at once (Unsubscribe then finds it gone).
    for (const Watcher* w : overflowed) RemoveLocked(w);
  }
  for (const std::shared_ptr<Watcher>& w : to_wake) w->RunWake();
}

absl::StatusOr<std::shared_ptr<WatchHub::Watcher>> WatchHub::Subscribe(absl::string_view ns,
                                                                       std::string key_prefix,
                                                                       std::function<void()> wake) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns);
  if (!found.ok()) return found.status();
  if (key_prefix.size() > options_.max_key_prefix_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key_prefix is ", key_prefix.size(), " bytes, over max_key_bytes (",
        options_.max_key_prefix_bytes, "): no key could match it; use a shorter prefix"));
  }
  auto watcher =
      std::shared_ptr<Watcher>(new Watcher((*found)->name, std::move(key_prefix), std::move(wake)));
  MutexLock lock(&mu_);
  if (!closed_.ok()) return closed_;
  if (watchers_.load(std::memory_order_acquire) >= options_.max_watchers) {
    return absl::ResourceExhaustedError(
        absl::StrCat("cachecar already serves ", options_.max_watchers,
                     " Watch streams (max_watchers): close one, or raise max_watchers"));
  }
  by_ns_[watcher->ns()].push_back(watcher);
  watchers_.fetch_add(1, std::memory_order_acq_rel);
  return watcher;
}

void WatchHub::RemoveLocked(const Watcher* watcher) {
  auto it = by_ns_.find(watcher->ns());
  if (it == by_ns_.end()) return;
  WatcherList& list = it->second;
  auto pos = std::find_if(list.begin(), list.end(),
                          [watcher](const auto& w) { return w.get() == watcher; });
  if (pos == list.end()) return;
  list.erase(pos);
  if (list.empty()) by_ns_.erase(it);
  watchers_.fetch_sub(1, std::memory_order_acq_rel);
}

void WatchHub::Unsubscribe(const std::shared_ptr<Watcher>& watcher) {
  if (watcher == nullptr) return;
  {
    MutexLock lock(&mu_);
    RemoveLocked(watcher.get());
  }
  watcher->Detach();
}

void WatchHub::CloseAll(const absl::Status& status) {
  std::vector<std::shared_ptr<Watcher>> to_wake;
  {
    MutexLock lock(&mu_);
    if (closed_.ok()) closed_ = status;
    for (auto& [_, list] : by_ns_) {
      for (const std::shared_ptr<Watcher>& w : list) {
        if (w->Close(status)) to_wake.push_back(w);
      }
    }
    by_ns_.clear();
    watchers_.store(0, std::memory_order_release);
  }
  for (const std::shared_ptr<Watcher>& w : to_wake) w->RunWake();
}

}  // namespace cachecar::service
