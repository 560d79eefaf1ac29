// The cache engine for one namespace: a sharded, byte-bounded map from key to
// a versioned value (or a negative entry: "absent at version v"), with the
// version rules of the consistency contract (docs/DESIGN.md C1, C3):
//   - Apply() only moves a key forward: an older-or-equal version is a no-op.
//   - A load takes a FillTicket (BeginFill) before it reads the store; the
//     engine accepts the loaded value (CompleteFill) only if nothing newer
//     than it, and no unversioned invalidation, reached the key meanwhile.
//   - Flush() drops everything cached and cancels every load begun before
//     it. A load begun after it read the store after it, so it is accepted
//     whatever version it read. A versioned flush also raises a floor: an
//     Apply at or below it is pre-flush news and inserts nothing.
// Eviction is S3-FIFO (small FIFO + main FIFO + ghost keys) or plain LRU
// (the baseline the benchmarks compare against), bounded by bytes: key +
// value + a per-entry overhead that counts the entry, index and queue nodes.
//
// Thread-safety: all methods are safe to call concurrently. Each shard has
// its own mutex; no method does I/O or calls back into the caller.
#ifndef CACHECAR_CACHE_ENGINE_H_
#define CACHECAR_CACHE_ENGINE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/time/time.h"
#include "cache/clock.h"

namespace cachecar::cache {

enum class EvictionPolicy { kS3Fifo, kLru };

class Storage;
struct NamespaceRegion;

struct EngineOptions {
  // Upper bound on accounted bytes (key + value + per-entry overhead) over
  // all shards. Each shard gets max_bytes / shards.
  size_t max_bytes = 64 << 20;
  // Number of independently locked shards (rounded up to a power of two).
  size_t shards = 16;
  EvictionPolicy policy = EvictionPolicy::kS3Fifo;
  // Time-to-live for entries whose Apply/CompleteFill passes no ttl;
  // zero means entries do not expire (so does a zero, negative or infinite
  // per-call ttl).
  absl::Duration default_ttl = absl::ZeroDuration();
  // Time-to-live for negative entries ("absent at version v": a delete, or
  // a load that found nothing) whose Apply/CompleteFill passes no ttl;
  // unset means default_ttl, zero means they do not expire.
  std::optional<absl::Duration> negative_ttl;
  // Time source; nullptr means the real clock. Tests inject a ManualClock.
  const Clock* clock = nullptr;
  // Where the entries live: this namespace's region of a Storage (the
  // published cache file, cache/storage.h), which must have the shards
  // above and outlive the engine. nullptr: private memory of its own.
  NamespaceRegion* region = nullptr;
};

// What the engine knows about a key.
struct Lookup {
  enum class Kind { kMiss, kHit, kNegative };
  Kind kind = Kind::kMiss;
  std::string value;     // set for kHit
  uint64_t version = 0;  // set for kHit and kNegative
};

// What a visiting lookup (Engine::Visit) sees: the entry itself, valid only
// inside the visit.
struct LookupView {
  Lookup::Kind kind = Lookup::Kind::kHit;  // kHit or kNegative
  std::string_view value;                  // kHit: the cached bytes
  uint64_t version = 0;
};

// One cached entry as Engine::Sample reports it.
struct SampledEntry {
  std::string key;
  uint64_t version = 0;
  bool negative = false;  // "absent at version"
};

// What an Apply carries.
enum class ChangeKind {
  kValue,       // the key now holds `value` at `version`
  kTombstone,   // the key was deleted at `version` (cached as a negative entry)
  kInvalidate,  // something changed at `version`; drop what we hold
};

enum class ApplyResult {
  kApplied,  // the engine moved forward (replaced, inserted or dropped)
  kStale,    // version <= what the engine already knew; nothing changed
};

// Opaque handle for a load in progress. Move-only; cheap. Pass it back to
// exactly one of CompleteFill or AbandonFill.
class FillTicket {
 public:
  FillTicket() = default;
  FillTicket(FillTicket&&) = default;
  FillTicket& operator=(FillTicket&&) = default;
  FillTicket(const FillTicket&) = delete;
  FillTicket& operator=(const FillTicket&) = delete;
  uint64_t id() const { return id_; }
  const std::string& key() const { return key_; }

 private:
  friend class Engine;
  FillTicket(uint64_t id, std::string key) : id_(id), key_(std::move(key)) {}
  uint64_t id_ = 0;
  std::string key_;
};

enum class FillResult {
  kAccepted,    // inserted (or the same version was already there)
  kSuperseded,  // a newer version, an invalidation or a flush reached the key
};

struct EngineStats {
  uint64_t entries = 0;         // live entries, negative ones included
  uint64_t bytes = 0;           // accounted bytes, always <= max_bytes
  uint64_t hits = 0;            // Get() found a value or a negative entry
  uint64_t misses = 0;          // Get() found nothing usable
  uint64_t evictions = 0;       // entries dropped to make room (not TTL, not invalidation)
  uint64_t expirations = 0;     // entries dropped because their TTL passed
  uint64_t fills_rejected = 0;  // CompleteFill returned anything but kAccepted
  uint64_t open_fills = 0;      // tickets not yet completed, abandoned or cancelled
  uint64_t storage_bytes = 0;   // arena blocks in use + index slots, in the storage
};

class Engine {
 public:
  explicit Engine(EngineOptions options);
  ~Engine();
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Looks a key up; counts a hit or a miss. Expired entries, and entries
  // cached before a Flush that has not reached their shard yet, are misses.
  Lookup Get(std::string_view key);

  // Get without the copy: on a hit or a negative entry, calls `visit` with
  // the entry while its shard is locked (copy the value out; do nothing slow
  // and never call the engine from it), and returns that kind; on a miss,
  // returns kMiss without calling it. Counts and touches as Get does.
  Lookup::Kind Visit(std::string_view key, absl::FunctionRef<void(const LookupView&)> visit);

  // Like Get, but neither counts a hit or miss nor marks the entry as used:
  // for a caller re-checking a key it already looked up once.
  Lookup Peek(std::string_view key);

  // Applies a change that the store committed at `version` (a local write, or
  // an event from the sync topic). Moves forward only: if the engine holds
  // the key at a version >= `version`, returns kStale. Versions of entries
  // the engine dropped (eviction, TTL, Invalidate, Flush) are remembered per
  // hash slot, so a key it does not hold also needs `version` above its
  // slot's remembered version, else kStale: a late event never brings back a
  // value older than one served.
  // Open fill tickets for the key learn of `version` so a load that read
  // something older is rejected. `ttl` overrides the default. A value larger
  // than a shard's budget is not cached (kApplied; its version is remembered).
  // At or below the namespace floor, the change is pre-flush news: nothing is
  // inserted, but it still reaches open tickets, and an entry older than it
  // (a load that began after the flush yet read the store before this
  // change committed) is dropped (kApplied); otherwise kStale.
  ApplyResult Apply(std::string_view key, uint64_t version, ChangeKind kind,
                    std::string_view value = {}, std::optional<absl::Duration> ttl = std::nullopt);

  // Drops the key without a version (the caller does not know one: a local
  // Invalidate RPC, or a write whose outcome is unknown). Cancels every open
  // fill ticket for the key. Returns true if an entry was dropped.
  bool Invalidate(std::string_view key);

  // Takes a ticket before loading `key` from the store.
  FillTicket BeginFill(std::string_view key);

  // Offers what the load read: the value at `version`, or nullopt for
  // "absent" (then `version` is the tombstone version, 0 if never written).
  // Accepted only if no Apply with a version > `version`, no Invalidate and
  // no Flush reached the key since BeginFill, and the engine does not
  // already hold a newer version. The floor does not apply: a load that
  // began after a Flush read the store after it, so whatever version it read
  // (rows keep their versions across a flush) is current. Always releases
  // the ticket.
  // An accepted value too large for a shard is not cached.
  FillResult CompleteFill(FillTicket ticket, uint64_t version,
                          std::optional<std::string_view> value,
                          std::optional<absl::Duration> ttl = std::nullopt);

  // Releases a ticket whose load failed; nothing is inserted.
  void AbandonFill(FillTicket ticket);

  // Drops every entry cached, and cancels every ticket taken, before the
  // call (what concurrent calls make once it has begun may stay: it is what
  // a finished flush would hold). With a version, also raises the floor to
  // it: an Apply at or below it inserts nothing. Returns the number of
  // entries dropped.
  //
  // A flush is a namespace-wide epoch: Flush bumps it before it sweeps the
  // shards, every entry and ticket records the epoch it was made in, and one
  // from an older epoch is dead (Get misses, CompleteFill is kSuperseded)
  // even in a shard the sweep has not reached yet.
  size_t Flush(std::optional<uint64_t> floor_version = std::nullopt);

  // A local reader served the entry whose key hashes to `hash` `times`
  // times (a hit report, docs/LOCAL_READS.md): the eviction policy counts
  // it as read, as Get would (at most 3 times). No key compare: a report
  // can at worst mark another key with the same 64-bit hash. False if no
  // live entry has that hash.
  bool TouchHashed(uint64_t hash, uint32_t times);

  // Walks the cached entries, shard by shard in index order, from `*cursor`
  // (0: the start) and moves `*cursor` on: returns up to `max` live entries
  // (not expired, not from before a Flush), looking at a bounded number of
  // index slots per call (so it may return fewer, even none, before the
  // end); `*cursor` is 0 again once the walk passed the last shard. Neither
  // counts nor touches. One shard lock at a time, held while the keys are
  // copied out. For the staleness auditor (service/auditor.h).
  std::vector<SampledEntry> Sample(uint64_t* cursor, size_t max);

  // Calls `visit` with the key of every live entry (values and negative
  // entries; not expired, not dead), shard by shard. Each shard's keys are
  // copied under its lock and visited after it is released, so `visit` may
  // be slow; keys changed meanwhile may or may not be seen. For the warm
  // start file (service/warm_start.h).
  void ForEachKey(absl::FunctionRef<void(std::string_view key)> visit) const;

  // Checks the storage's invariants (arena blocks, index, byte accounting,
  // sequence locks even); for tests.
  bool CheckStorage(std::string* why) const;

  uint64_t floor() const;
  uint64_t epoch() const;  // number of Flush calls begun
  EngineStats Stats() const;
  size_t max_bytes() const;

  // Bytes charged for an entry beyond key and value (documented, tested):
  // entry header, allocator slack, index slot and ghost slot; see
  // kEntryOverhead in cache/entry.h for the derivation.
  static size_t EntryOverhead();

 private:
  friend class EngineTestPeer;  // engine_test.cc: a Flush stopped mid-way
  class Shard;
  // The two halves of Flush: raise the floor, then bump the epoch (an entry
  // or ticket that sees the new epoch also sees the new floor); then sweep.
  void BeginFlush(std::optional<uint64_t> floor_version);
  size_t SweepShards();
  Shard& ShardFor(std::string_view key);
  Shard& ShardFor(uint64_t hash);
  int64_t ExpiryFor(std::optional<absl::Duration> ttl, bool negative) const;

  const EngineOptions options_;
  const Clock& clock_;
  std::unique_ptr<Storage> private_storage_;  // when options_.region is null
  // In the storage's namespace header, where local readers see them.
  std::atomic<uint64_t>* floor_ = nullptr;
  std::atomic<uint64_t>* epoch_ = nullptr;
  std::atomic<uint64_t> next_fill_id_{1};
  std::vector<std::unique_ptr<Shard>> shards_;
};

}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_ENGINE_H_
