// See warm_start_wiring.h.
#include "cmd/cachecar/warm_start_wiring.h"

#include "absl/time/clock.h"
#include "common/fault_point.h"
#include "spdlog/spdlog.h"

namespace cachecar {

std::unique_ptr<WarmStartWiring> WarmStartWiring::Start(
    const config::Config& config, service::NamespaceSet& namespaces, store::Store& store,
    metrics::Metrics& metrics, std::function<bool()> may_start, std::function<bool()> live_busy) {
  if (config.warm_start_file.empty()) return nullptr;
  service::WarmLoaderOptions options;
  options.batch_keys = std::min<size_t>(500, config.max_batch_keys);
  options.keys_per_second = config.warm_start_rate;
  options.may_start = std::move(may_start);
  if (FaultArmed(kFaultWarmStartEarly)) options.may_start = nullptr;  // see fault_point.h
  options.live_busy = std::move(live_busy);
  options.call_timeout = config.postgres_query_timeout;
  auto loader = std::make_unique<service::WarmLoader>(namespaces, store, options);
  service::WarmLoader* l = loader.get();
  metrics.SetWarmStartSource([l] {
    const service::WarmLoaderStats s = l->stats();
    return metrics::Metrics::WarmStartSample{s.keys_total, s.keys_loaded, s.keys_skipped,
                                             s.store_errors, s.done};
  });
  service::WarmFileLimits limits;
  limits.max_key_bytes = config.max_key_bytes;
  absl::StatusOr<service::WarmKeys> keys =
      service::ReadWarmStartFile(config.warm_start_file, limits);
  if (keys.ok()) {
    spdlog::info("warm start: {} keys of {} namespaces in {}", keys->key_count(),
                 keys->namespaces.size(), config.warm_start_file);
    loader->Start(*std::move(keys));
  } else {
    if (keys.status().code() == absl::StatusCode::kNotFound) {
      spdlog::info("warm start: no file at {} yet (first start): starting cold",
                   config.warm_start_file);
    } else {
      spdlog::warn("warm start: {}: {}; starting cold (the file is replaced at the next stop)",
                   config.warm_start_file, std::string(keys.status().message()));
    }
    loader->Start(service::WarmKeys{});
  }
  return std::unique_ptr<WarmStartWiring>(
      new WarmStartWiring(config.warm_start_file, namespaces, std::move(loader)));
}

void WarmStartWiring::SaveAndStop() {
  loader_->Stop();
  const absl::Time start = absl::Now();
  service::WarmKeys keys = service::SnapshotKeys(namespaces_);
  service::AddUnvisited(keys, loader_->Unvisited());  // stopped mid-reload: keep the rest
  if (absl::Status s = service::WriteWarmStartFile(path_, keys); !s.ok()) {
    spdlog::error("warm start: cannot save the cache's keys: {}; the next start is cold",
                  std::string(s.message()));
    return;
  }
  spdlog::info("warm start: saved {} keys to {} in {}", keys.key_count(), path_,
               absl::FormatDuration(absl::Now() - start));
}

}  // namespace cachecar
