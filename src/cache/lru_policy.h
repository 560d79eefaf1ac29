// Internal to cache/: least-recently-used ordering, the baseline the
// benchmarks compare S3-FIFO against. Thread-safety: none (shard-locked).
#ifndef CACHECAR_CACHE_LRU_POLICY_H_
#define CACHECAR_CACHE_LRU_POLICY_H_

#include "cache/eviction_policy.h"

namespace cachecar::cache::internal {

class LruPolicy final : public ReplacementPolicy {
 public:
  explicit LruPolicy(const Arena& arena) : list_(arena) {}
  void Insert(Entry* e) override { list_.PushFront(e); }
  void Touch(Entry* e) override { list_.MoveToFront(e); }
  void Replace(Entry* old, Entry* fresh) override;
  void Remove(Entry* e) override { list_.Remove(e); }
  Entry* Evict() override;
  void Clear() override { list_.Reset(); }

 private:
  EntryList list_;  // front = most recently used
};

}  // namespace cachecar::cache::internal

#endif  // CACHECAR_CACHE_LRU_POLICY_H_
