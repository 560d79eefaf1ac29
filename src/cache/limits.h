// The cache's size limits that other layers check against before they build
// an engine (config validation: max_bytes / shards), derived from the one
// constant that sets them, Arena::kMaxBytes (cache/arena.h).
//
// Thread-safety: constants.
#ifndef CACHECAR_CACHE_LIMITS_H_
#define CACHECAR_CACHE_LIMITS_H_

#include <cstdint>

#include "cache/arena.h"

namespace cachecar::cache {

// The most budget one engine shard takes. Its arena holds at most
// Arena::kMaxBytes, and the arena is the budget plus an eighth (storage.cc
// ArenaBytes); three quarters of the most (12 GiB) leaves room for that and
// keeps every namespace's plan within it.
inline constexpr uint64_t kMaxBytesPerShard = internal::Arena::kMaxBytes / 4 * 3;
static_assert(kMaxBytesPerShard + kMaxBytesPerShard / 8 <= internal::Arena::kMaxBytes);

}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_LIMITS_H_
