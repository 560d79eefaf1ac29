// Builds the configured Store (memory or postgres) and runs `cachecar
// migrate`. Wiring only: config values in, a Store out.
#ifndef CACHECAR_CMD_CACHECAR_STORE_FACTORY_H_
#define CACHECAR_CMD_CACHECAR_STORE_FACTORY_H_

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "config/config.h"
#include "store/store.h"

namespace cachecar {

// Opens the store named by config.store (with --migrate, migrates first).
absl::StatusOr<std::unique_ptr<store::Store>> OpenStore(const config::Config& config);

// `cachecar migrate`: one summary line per table.
absl::StatusOr<std::vector<std::string>> MigrateStore(const config::Config& config);

}  // namespace cachecar

#endif  // CACHECAR_CMD_CACHECAR_STORE_FACTORY_H_
