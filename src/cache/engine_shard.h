// Engine::Shard: one shard of the cache engine (cache/engine.h), an index +
// replacement policy + fill tickets under one absl::Mutex, and the helper
// types it shares with engine.cc. Internal to src/cache/; its methods are in
// engine_shard.cc. The notes below say why it works the way it does.
//
// Version knowledge the engine drops (eviction, TTL, Invalidate, Flush) is
// not lost: each shard keeps a small sketch, "the highest version forgotten
// for keys hashing to this slot". An Apply for a key the engine does not
// hold must be newer than its slot, so a late event can never re-insert a
// version older than one a reader may already have seen (docs/DESIGN.md C1).
// Fills do not consult the sketch: a load starts after BeginFill, so it reads
// at least every version applied before; later ones reach its ticket.
//
// Flush and versions. A flush does not change the store: rows keep their
// versions, all below a versioned flush's own. So fills are not judged by
// the floor but by the flush epoch: a ticket taken in the current epoch
// belongs to a load that reads the store after the last Flush began, and
// what it reads is current whatever its version. Entries and tickets of an
// older epoch are dead. Flush bumps the epoch before it sweeps, so an entry
// in a shard not swept yet is already a miss. Events keep the version floor:
// one at or below it took its version before the flush did, and its payload
// is not trusted after the flush. It still says "the key changed at v",
// though: store versions are taken before commit, so v can commit after the
// flush was applied, and a load of the new epoch may have read the row from
// before v. So the event drops an older entry instead of being ignored
// (else that entry would stay: C2, C5).
//
// Storage. A shard's entries live in its arena and its index is an
// open-addressing table, both inside the engine's Storage mapping (the
// published cache file with local reads, else private memory), in the format
// local readers read (docs/LOCAL_READS.md). Every change a reader could see
// (index slots, entry bytes, memory reuse) happens inside the shard's
// sequence-lock window: MarkChanging() makes `seq` odd before the first such
// change of a locked section, and the section's ChangeGuard makes it even
// again before the lock is released. Eviction bookkeeping (list links,
// access counters) is invisible to readers and needs no window, so a gRPC
// hit does not disturb local readers.
//
// Thread-safety: every public method takes the shard's mutex; none does I/O.
#ifndef CACHECAR_CACHE_ENGINE_SHARD_H_
#define CACHECAR_CACHE_ENGINE_SHARD_H_

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"
#include "cache/arena.h"
#include "cache/clock.h"
#include "cache/engine.h"
#include "cache/entry.h"
#include "cache/eviction_policy.h"
#include "cache/slot_index.h"
#include "cache/storage.h"

namespace cachecar::cache {
namespace internal {

// What to store for a key.
struct Write {
  uint64_t version;
  bool negative;
  std::string_view value;
  int64_t expires_ns;  // 0 = never
};

// An open fill ticket: the newest version that reached its key since it
// was taken, and the flush epoch it was taken in.
struct OpenFill {
  uint64_t id;
  uint64_t max_seen;
  uint64_t epoch;
};
// Transparent std::string hashing (Debian's abseil has its own string_view,
// so its default string hasher does not take std::string_view).
struct StringHash {
  using is_transparent = void;
  size_t operator()(std::string_view s) const { return internal::HashKey(s); }
};
struct StringEq {
  using is_transparent = void;
  bool operator()(std::string_view a, std::string_view b) const { return a == b; }
};
using FillsByKey =
    absl::flat_hash_map<std::string, absl::InlinedVector<OpenFill, 1>, StringHash, StringEq>;

constexpr size_t kForgottenSlots = 1024;  // 8 KiB per shard

}  // namespace internal

class alignas(64) Engine::Shard {
 public:
  Shard(EvictionPolicy policy, size_t capacity, const Clock& clock,
        const std::atomic<uint64_t>& floor, const std::atomic<uint64_t>& epoch,
        const ShardRegion& region)
      : capacity_(capacity),
        clock_(clock),
        floor_(floor),
        epoch_(epoch),
        seq_(region.header->seq),
        arena_base_(region.arena),
        arena_(region.arena, region.arena_bytes),
        index_(region.slots, region.max_slots, &region.header->index_mask),
        policy_(internal::MakePolicy(policy, capacity, arena_)) {
    forgotten_.fill(0);
  }

  // `counted`: a lookup on behalf of a caller (hit/miss counted, recency
  // touched), not a re-check by the service (Engine::Peek).
  Lookup Get(std::string_view key, uint64_t hash, bool counted) ABSL_LOCKS_EXCLUDED(mu_);
  // Finds the entry a lookup may answer with (counting as `counted` says)
  // and calls `found` with it under the lock; kMiss if there is none.
  Lookup::Kind Find(std::string_view key, uint64_t hash, bool counted,
                    absl::FunctionRef<void(const LookupView&)> found) ABSL_LOCKS_EXCLUDED(mu_);
  ApplyResult Apply(std::string_view key, uint64_t hash, ChangeKind kind, const internal::Write& w)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Invalidate(std::string_view key, uint64_t hash) ABSL_LOCKS_EXCLUDED(mu_);
  void BeginFill(std::string_view key, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  FillResult CompleteFill(std::string_view key, uint64_t hash, uint64_t id,
                          const internal::Write& w) ABSL_LOCKS_EXCLUDED(mu_);
  void AbandonFill(std::string_view key, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  size_t Flush() ABSL_LOCKS_EXCLUDED(mu_);
  bool TouchHashed(uint64_t hash, uint32_t times) ABSL_LOCKS_EXCLUDED(mu_);
  // The keys of the live entries, copied.
  std::vector<std::string> Keys() const ABSL_LOCKS_EXCLUDED(mu_);
  // Engine::Sample within this shard: from index position `pos`, at most
  // `max_slots` positions; returns the position to go on from, or nullopt
  // past the shard's last one.
  std::optional<uint32_t> Sample(uint32_t pos, uint32_t max_slots, size_t max,
                                 std::vector<SampledEntry>& out) ABSL_LOCKS_EXCLUDED(mu_);
  void AddStats(EngineStats& stats) const ABSL_LOCKS_EXCLUDED(mu_);
  bool CheckStorage(std::string* why) const ABSL_LOCKS_EXCLUDED(mu_);

 private:
  // Closes the sequence-lock window a locked section opened (if it did).
  // Declared after the section's ShardLock, so it runs before the unlock.
  class ChangeGuard {
   public:
    explicit ChangeGuard(Shard& shard) : shard_(shard) {}
    ~ChangeGuard() ABSL_NO_THREAD_SAFETY_ANALYSIS { shard_.EndChange(); }

   private:
    Shard& shard_;
  };
  // Opens the window before the first change readers could see.
  void MarkChanging() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (changing_) return;
    changing_ = true;
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    std::atomic_thread_fence(std::memory_order_release);
  }
  void EndChange() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (!changing_) return;
    changing_ = false;
    seq_.store(seq_.load(std::memory_order_relaxed) + 1, std::memory_order_release);
  }

  // Address arithmetic only (what it points to is guarded by mu_).
  internal::Entry* EntryAt(uint32_t ref) const {
    return reinterpret_cast<internal::Entry*>(arena_base_ + uint64_t{ref} * 8);
  }
  // The key's index position, or SlotIndex::kNone.
  uint32_t FindPos(std::string_view key, uint64_t hash) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return index_.Find(hash, [&](uint32_t ref) {
      const internal::Entry* e = EntryAt(ref);
      return e->hash == hash && e->key() == key;
    });
  }
  FillResult JudgeFill(std::string_view key, uint64_t hash, uint64_t id, const internal::Write& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts or replaces the key's entry (at `pos`, or kNone), stamped with
  // `epoch`, then evicts down to capacity.
  void Upsert(uint32_t pos, std::string_view key, uint64_t hash, const internal::Write& w,
              uint64_t epoch) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes an indexed entry for a reason other than eviction.
  void DropAt(uint32_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts the policy's victim; false when there is none.
  bool EvictOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Accounts for and frees an entry already out of the index and policy.
  void Release(internal::Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remembers that the engine no longer knows `version` for this hash.
  void Forget(uint64_t hash, uint64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t& ForgottenSlot(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return forgotten_[(hash >> 20) & (internal::kForgottenSlots - 1)];
  }
  // Tells the key's open tickets that `version` reached it.
  void NoteVersion(std::string_view key, uint64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a ticket; returns it, or nullopt if it was cancelled.
  std::optional<internal::OpenFill> TakeFill(std::string_view key, uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The engine's flush epoch. Acquire: Flush raises the floor before it
  // bumps the epoch, so whoever sees an epoch also sees its floor.
  uint64_t Epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Flush bumps the epoch before it reaches this shard; until then, entries
  // of an older epoch are still here but must not be served.
  static bool Dead(const internal::Entry& e, uint64_t epoch) {
    return e.epoch != static_cast<uint32_t>(epoch);
  }
  bool Expired(const internal::Entry& e) const {
    return e.expires_ns != 0 && clock_.Now() >= absl::FromUnixNanos(e.expires_ns);
  }

  // What every Get touches, on one cache line (the shard is 64-byte
  // aligned): when two cores take turns on a shard, a Get moves one line.
  mutable absl::Mutex mu_;
  uint64_t hits_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t misses_ ABSL_GUARDED_BY(mu_) = 0;
  bool changing_ ABSL_GUARDED_BY(mu_) = false;

  // Constant after construction.
  const size_t capacity_;
  const Clock& clock_;
  const std::atomic<uint64_t>& floor_;  // the engine's; read under mu_
  const std::atomic<uint64_t>& epoch_;  // the engine's; read under mu_
  std::atomic<uint64_t>& seq_;          // the shard's sequence lock, in the storage
  char* const arena_base_;              // the arena's region

  internal::Arena arena_ ABSL_GUARDED_BY(mu_);
  internal::SlotIndex index_ ABSL_GUARDED_BY(mu_);
  const std::unique_ptr<internal::ReplacementPolicy> policy_ ABSL_PT_GUARDED_BY(mu_);

  internal::FillsByKey fills_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, internal::kForgottenSlots> forgotten_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t open_fills_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t expirations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fills_rejected_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_ENGINE_SHARD_H_
