// See replicated.h.
#include "service/replicated.h"

#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "service/store_fill.h"
#include "spdlog/spdlog.h"

namespace cachecar::service {

ReplicatedLoader::ReplicatedLoader(NamespaceSet& namespaces, store::Store& store,
                                   ReplicatedLoaderOptions options)
    : namespaces_(namespaces), store_(store), options_(std::move(options)) {}

ReplicatedLoader::~ReplicatedLoader() { Stop(); }

bool ReplicatedLoader::AnyReplicated(const NamespaceSet& namespaces) {
  for (const Namespace* ns : namespaces.All()) {
    if (ns->replicated) return true;
  }
  return false;
}

void ReplicatedLoader::Start() {
  thread_ = std::thread([this] {
    absl::Duration backoff = options_.poll;
    do {
      if (options_.may_start && !options_.may_start()) continue;
      absl::Status s = RunOnce();
      if (s.ok()) {
        backoff = options_.poll;
        continue;
      }
      spdlog::warn("replicated namespaces: {}; retrying in {}", std::string(s.message()),
                   absl::FormatDuration(backoff));
      backoff = std::min(backoff * 2, absl::Seconds(5));
    } while (!stop_.WaitForNotificationWithTimeout(backoff));
  });
}

void ReplicatedLoader::Stop() {
  if (!stop_.HasBeenNotified()) stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

bool ReplicatedLoader::InitialLoadDone() const {
  for (const Namespace* ns : namespaces_.All()) {
    if (ns->replicated && ns->replicated->loads() == 0) return false;
  }
  return true;
}

absl::Status ReplicatedLoader::RunOnce() {
  for (Namespace* ns : namespaces_.All()) {
    if (!ns->replicated) continue;
    if (ns->replicated->loaded_epoch() != ns->engine->epoch()) {
      if (absl::Status s = LoadAll(*ns); !s.ok()) return s;
    }
    if (absl::Status s = ReloadUnknown(*ns); !s.ok()) return s;
  }
  return absl::OkStatus();
}

absl::Status ReplicatedLoader::LoadAll(Namespace& ns) {
  const absl::Time start = absl::Now();
  const uint64_t epoch = ns.engine->epoch();
  const cache::EngineStats before = ns.engine->Stats();
  std::string after;
  uint64_t keys = 0;
  while (!stop_.HasBeenNotified()) {
    const absl::Time deadline = absl::Now() + options_.call_timeout;
    absl::StatusOr<std::vector<std::string>> page =
        store_.ScanKeys(ns.name, after, options_.page_keys, {deadline});
    if (!page.ok()) {
      return absl::Status(page.status().code(),
                          absl::StrCat("namespace ", ns.name, ": scan: ", page.status().message()));
    }
    if (page->empty()) break;
    absl::StatusOr<std::vector<bool>> filled = FillFromStore(ns, store_, *page, deadline);
    if (!filled.ok()) {
      return absl::Status(
          filled.status().code(),
          absl::StrCat("namespace ", ns.name, ": load: ", filled.status().message()));
    }
    keys += page->size();
    keys_loaded_.fetch_add(page->size(), std::memory_order_relaxed);
    after = page->back();
    if (page->size() < options_.page_keys) break;
  }
  if (stop_.HasBeenNotified()) return absl::OkStatus();
  if (ns.engine->epoch() != epoch) {
    spdlog::info("namespace {}: flushed while it was being loaded; loading it again", ns.name);
    return absl::OkStatus();
  }
  ns.replicated->MarkLoaded(epoch, before.evictions, before.expirations);
  const cache::EngineStats now = ns.engine->Stats();
  if (now.evictions != before.evictions) {
    spdlog::error(
        "namespace {} (replicated): its {} rows do not fit its {} bytes ({} evicted): absent keys "
        "are read from the store; raise max_bytes or its max_bytes_share (see README, "
        "\"Replicated namespaces\")",
        ns.name, keys, ns.engine->max_bytes(), now.evictions - before.evictions);
  } else {
    spdlog::info("namespace {} (replicated): {} rows loaded in {} ({} of {} bytes)", ns.name, keys,
                 absl::FormatDuration(absl::Trunc(absl::Now() - start, absl::Milliseconds(1))),
                 now.bytes, ns.engine->max_bytes());
  }
  return absl::OkStatus();
}

absl::Status ReplicatedLoader::ReloadUnknown(Namespace& ns) {
  std::vector<std::pair<std::string, uint64_t>> unknown =
      ns.replicated->Unknown(options_.page_keys);
  if (unknown.empty()) return absl::OkStatus();
  std::vector<std::string> keys;
  keys.reserve(unknown.size());
  for (const auto& [key, marks] : unknown) keys.push_back(key);
  absl::StatusOr<std::vector<bool>> filled =
      FillFromStore(ns, store_, keys, absl::Now() + options_.call_timeout);
  if (!filled.ok()) {
    return absl::Status(
        filled.status().code(),
        absl::StrCat("namespace ", ns.name, ": reload: ", filled.status().message()));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    // Not filled: something newer won; known if the engine holds it.
    if ((*filled)[i] || ns.engine->Peek(keys[i]).kind != cache::Lookup::Kind::kMiss) {
      ns.replicated->Known(keys[i], unknown[i].second);
    }
  }
  return absl::OkStatus();
}

}  // namespace cachecar::service
