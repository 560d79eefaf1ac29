// Chooses the replacement policy a shard uses.
#include "cache/eviction_policy.h"

#include "cache/lru_policy.h"
#include "cache/s3fifo_policy.h"

namespace cachecar::cache::internal {

std::unique_ptr<ReplacementPolicy> MakePolicy(EvictionPolicy policy, size_t capacity_bytes,
                                              const Arena& arena) {
  if (policy == EvictionPolicy::kLru) return std::make_unique<LruPolicy>(arena);
  return std::make_unique<S3FifoPolicy>(capacity_bytes, arena);
}

}  // namespace cachecar::cache::internal
