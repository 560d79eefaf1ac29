// Fills keys into a namespace's cache from the store the way a miss does
// (docs/DESIGN.md C3): a fill ticket per key, then one multi-key store
// read, then CompleteFill, so anything newer that reached a key while the
// rows travelled (an event, a write, an invalidation, a flush) wins. Used by
// the warm start and by replicated namespaces' loads; the read path has its
// own loop (it also answers callers).
//
// Thread-safety: safe from any thread; blocks on the store.
#ifndef CACHECAR_SERVICE_STORE_FILL_H_
#define CACHECAR_SERVICE_STORE_FILL_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "service/namespaces.h"
#include "store/store.h"

namespace cachecar::service {

// Per key, whether its value (or absence) was cached; the store's error
// fills nothing. Counts one load on the namespace.
absl::StatusOr<std::vector<bool>> FillFromStore(Namespace& ns, store::Store& store,
                                                const std::vector<std::string>& keys,
                                                absl::Time deadline);

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_STORE_FILL_H_
