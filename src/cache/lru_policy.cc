// LRU: one list, hits move to the front, the back is evicted.
#include "cache/lru_policy.h"

namespace cachecar::cache::internal {

void LruPolicy::Replace(Entry* old, Entry* fresh) {
  list_.Replace(old, fresh);
  list_.MoveToFront(fresh);
}

Entry* LruPolicy::Evict() {
  Entry* victim = list_.back();
  if (victim != nullptr) list_.Remove(victim);
  return victim;
}

}  // namespace cachecar::cache::internal
