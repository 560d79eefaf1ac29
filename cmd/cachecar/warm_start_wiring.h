// Wires the warm start (service/warm_start.h) into the process: at start,
// reads `warm_start_file` (none, corrupt, truncated or foreign: logged and
// ignored) and reloads its keys in the background; at stop, writes the keys
// the cache holds then. Metrics: cachecar_warm_start_*.
//
// Thread-safety: Start and SaveAndStop from the main thread; the metrics
// source from the scrape thread.
#ifndef CACHECAR_CMD_CACHECAR_WARM_START_WIRING_H_
#define CACHECAR_CMD_CACHECAR_WARM_START_WIRING_H_

#include <functional>
#include <memory>
#include <string>

#include "config/config.h"
#include "metrics/metrics.h"
#include "service/namespaces.h"
#include "service/warm_start.h"
#include "store/store.h"

namespace cachecar {

class WarmStartWiring {
 public:
  // Null when warm_start_file is empty. `may_start`: the reload begins once
  // it says so (the sync consumer positioned); `live_busy`: live store work
  // is queued. `namespaces`, `store` and `metrics` must outlive this.
  static std::unique_ptr<WarmStartWiring> Start(const config::Config& config,
                                                service::NamespaceSet& namespaces,
                                                store::Store& store, metrics::Metrics& metrics,
                                                std::function<bool()> may_start,
                                                std::function<bool()> live_busy);
  // Stops the reload and writes the keys the cache holds now. Call once
  // nothing changes the cache any more.
  void SaveAndStop();

 private:
  WarmStartWiring(std::string path, service::NamespaceSet& namespaces,
                  std::unique_ptr<service::WarmLoader> loader)
      : path_(std::move(path)), namespaces_(namespaces), loader_(std::move(loader)) {}
  const std::string path_;
  service::NamespaceSet& namespaces_;
  std::unique_ptr<service::WarmLoader> loader_;
};

}  // namespace cachecar

#endif  // CACHECAR_CMD_CACHECAR_WARM_START_WIRING_H_
