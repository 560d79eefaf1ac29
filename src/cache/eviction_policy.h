// Internal to cache/: the interface a shard uses to order its entries for
// eviction, and the factory for the two implementations (S3-FIFO, LRU).
//
// Thread-safety: none. Each shard owns one policy and calls it only under
// the shard's mutex. A policy links entries but never frees them.
#ifndef CACHECAR_CACHE_EVICTION_POLICY_H_
#define CACHECAR_CACHE_EVICTION_POLICY_H_

#include <cstddef>
#include <memory>

#include "cache/engine.h"
#include "cache/entry.h"

namespace cachecar::cache::internal {

class ReplacementPolicy {
 public:
  virtual ~ReplacementPolicy() = default;
  // A new key enters the cache.
  virtual void Insert(Entry* e) = 0;
  // The entry was read or overwritten in place.
  virtual void Touch(Entry* e) = 0;
  // `fresh` (same key, new value) takes `old`'s place and history.
  virtual void Replace(Entry* old, Entry* fresh) = 0;
  // The entry leaves for a reason other than eviction (invalidation, TTL).
  virtual void Remove(Entry* e) = 0;
  // Picks a victim, unlinks it and returns it; nullptr when empty.
  virtual Entry* Evict() = 0;
  // Forgets all entries (the shard frees them) and any history.
  virtual void Clear() = 0;
};

// `capacity_bytes` is the shard's byte budget (S3-FIFO sizes its small queue
// from it); `arena` holds the entries the policy links.
std::unique_ptr<ReplacementPolicy> MakePolicy(EvictionPolicy policy, size_t capacity_bytes,
                                              const Arena& arena);

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_EVICTION_POLICY_H_
