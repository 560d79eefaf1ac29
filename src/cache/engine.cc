// The engine: shards, each an index + replacement policy + fill tickets under
// one absl::Mutex. See engine.h for the rules; the notes here say why.
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
#include "cache/engine.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/container/inlined_vector.h"
#include "absl/synchronization/mutex.h"
#include "cache/arena.h"
#include "cache/entry.h"
#include "cache/eviction_policy.h"
#include "cache/shard_lock.h"
#include "cache/slot_index.h"
#include "cache/storage.h"

namespace cachecar::cache {
namespace {

using internal::Entry;

using internal::SlotIndex;

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

size_t RoundUpToPowerOfTwo(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

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
  ApplyResult Apply(std::string_view key, uint64_t hash, ChangeKind kind, const Write& w)
      ABSL_LOCKS_EXCLUDED(mu_);
  bool Invalidate(std::string_view key, uint64_t hash) ABSL_LOCKS_EXCLUDED(mu_);
  void BeginFill(std::string_view key, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  FillResult CompleteFill(std::string_view key, uint64_t hash, uint64_t id, const Write& w)
      ABSL_LOCKS_EXCLUDED(mu_);
  void AbandonFill(std::string_view key, uint64_t id) ABSL_LOCKS_EXCLUDED(mu_);
  size_t Flush() ABSL_LOCKS_EXCLUDED(mu_);
  bool TouchHashed(uint64_t hash, uint32_t times) ABSL_LOCKS_EXCLUDED(mu_);
  // The keys of the live entries, copied.
  std::vector<std::string> Keys() const ABSL_LOCKS_EXCLUDED(mu_);
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
  Entry* EntryAt(uint32_t ref) const {
    return reinterpret_cast<Entry*>(arena_base_ + uint64_t{ref} * 8);
  }
  // The key's index position, or SlotIndex::kNone.
  uint32_t FindPos(std::string_view key, uint64_t hash) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return index_.Find(hash, [&](uint32_t ref) {
      const Entry* e = EntryAt(ref);
      return e->hash == hash && e->key() == key;
    });
  }
  FillResult JudgeFill(std::string_view key, uint64_t hash, uint64_t id, const Write& w)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Inserts or replaces the key's entry (at `pos`, or kNone), stamped with
  // `epoch`, then evicts down to capacity.
  void Upsert(uint32_t pos, std::string_view key, uint64_t hash, const Write& w, uint64_t epoch)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes an indexed entry for a reason other than eviction.
  void DropAt(uint32_t pos) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Evicts the policy's victim; false when there is none.
  bool EvictOne() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Accounts for and frees an entry already out of the index and policy.
  void Release(Entry* e) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Remembers that the engine no longer knows `version` for this hash.
  void Forget(uint64_t hash, uint64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t& ForgottenSlot(uint64_t hash) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return forgotten_[(hash >> 20) & (kForgottenSlots - 1)];
  }
  // Tells the key's open tickets that `version` reached it.
  void NoteVersion(std::string_view key, uint64_t version) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Removes a ticket; returns it, or nullopt if it was cancelled.
  std::optional<OpenFill> TakeFill(std::string_view key, uint64_t id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The engine's flush epoch. Acquire: Flush raises the floor before it
  // bumps the epoch, so whoever sees an epoch also sees its floor.
  uint64_t Epoch() const { return epoch_.load(std::memory_order_acquire); }
  // Flush bumps the epoch before it reaches this shard; until then, entries
  // of an older epoch are still here but must not be served.
  static bool Dead(const Entry& e, uint64_t epoch) {
    return e.epoch != static_cast<uint32_t>(epoch);
  }
  bool Expired(const Entry& e) const {
    return e.expires_ns != 0 && absl::ToUnixNanos(clock_.Now()) >= e.expires_ns;
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
  SlotIndex index_ ABSL_GUARDED_BY(mu_);
  const std::unique_ptr<internal::ReplacementPolicy> policy_ ABSL_PT_GUARDED_BY(mu_);

  FillsByKey fills_ ABSL_GUARDED_BY(mu_);
  std::array<uint64_t, kForgottenSlots> forgotten_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t open_fills_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t evictions_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t expirations_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t fills_rejected_ ABSL_GUARDED_BY(mu_) = 0;
};

Lookup Engine::Shard::Get(std::string_view key, uint64_t hash, bool counted) {
  Lookup result;
  result.kind = Find(key, hash, counted, [&result](const LookupView& view) {
    result.version = view.version;
    if (view.kind == Lookup::Kind::kHit) result.value.assign(view.value.data(), view.value.size());
  });
  return result;
}

Lookup::Kind Engine::Shard::Find(std::string_view key, uint64_t hash, bool counted,
                                 absl::FunctionRef<void(const LookupView&)> found) {
  internal::ShardLock lock(&mu_);
  ChangeGuard guard(*this);
  const uint32_t pos = FindPos(key, hash);
  if (pos == SlotIndex::kNone) {
    if (counted) ++misses_;
    return Lookup::Kind::kMiss;
  }
  Entry* e = EntryAt(index_.RefAt(pos));
  const bool dead = Dead(*e, Epoch());
  if (dead || Expired(*e)) {
    if (!dead) ++expirations_;
    if (counted) ++misses_;
    DropAt(pos);
    return Lookup::Kind::kMiss;
  }
  if (counted) {
    policy_->Touch(e);
    ++hits_;
  }
  LookupView view;
  view.version = e->version;
  if (e->negative()) {
    view.kind = Lookup::Kind::kNegative;
  } else {
    view.value = e->value();
  }
  found(view);
  return view.kind;
}

ApplyResult Engine::Shard::Apply(std::string_view key, uint64_t hash, ChangeKind kind,
                                 const Write& w) {
  internal::ShardLock lock(&mu_);
  ChangeGuard guard(*this);
  NoteVersion(key, w.version);
  const uint64_t epoch = Epoch();
  const uint32_t pos = FindPos(key, hash);
  const Entry* held = pos != SlotIndex::kNone ? EntryAt(index_.RefAt(pos)) : nullptr;
  if (w.version <= floor_.load(std::memory_order_relaxed)) {
    // Pre-flush news (see the top of this file): never inserted, but an
    // older entry goes.
    if (held == nullptr || held->version >= w.version) return ApplyResult::kStale;
    DropAt(pos);
    Forget(hash, w.version);
    return ApplyResult::kApplied;
  }
  const uint64_t known = held != nullptr ? held->version : ForgottenSlot(hash);
  if (w.version <= known) return ApplyResult::kStale;
  if (kind == ChangeKind::kInvalidate) {
    if (held != nullptr) DropAt(pos);
    Forget(hash, w.version);
    return ApplyResult::kApplied;
  }
  Upsert(pos, key, hash, w, epoch);
  return ApplyResult::kApplied;
}

bool Engine::Shard::Invalidate(std::string_view key, uint64_t hash) {
  internal::ShardLock lock(&mu_);
  ChangeGuard guard(*this);
  if (auto f = fills_.find(key); f != fills_.end()) {
    open_fills_ -= f->second.size();
    fills_.erase(f);
  }
  const uint32_t pos = FindPos(key, hash);
  if (pos == SlotIndex::kNone) return false;
  DropAt(pos);
  return true;
}

void Engine::Shard::BeginFill(std::string_view key, uint64_t id) {
  internal::ShardLock lock(&mu_);
  auto it = fills_.find(key);
  if (it == fills_.end()) it = fills_.try_emplace(std::string(key)).first;
  it->second.push_back(OpenFill{id, 0, Epoch()});
  ++open_fills_;
}

FillResult Engine::Shard::CompleteFill(std::string_view key, uint64_t hash, uint64_t id,
                                       const Write& w) {
  internal::ShardLock lock(&mu_);
  ChangeGuard guard(*this);
  const FillResult result = JudgeFill(key, hash, id, w);
  if (result != FillResult::kAccepted) ++fills_rejected_;
  return result;
}

FillResult Engine::Shard::JudgeFill(std::string_view key, uint64_t hash, uint64_t id,
                                    const Write& w) {
  const std::optional<OpenFill> fill = TakeFill(key, id);
  const uint64_t epoch = Epoch();
  // A ticket from before a Flush is dead even if the sweep has not reached
  // this shard to cancel it.
  if (!fill.has_value() || fill->epoch != epoch || w.version < fill->max_seen) {
    return FillResult::kSuperseded;
  }
  uint32_t pos = FindPos(key, hash);
  if (pos != SlotIndex::kNone && Dead(*EntryAt(index_.RefAt(pos)), epoch)) {
    // Cached before the Flush: as good as swept, whatever its version.
    DropAt(pos);
    pos = SlotIndex::kNone;
  }
  if (pos != SlotIndex::kNone) {
    const Entry& held = *EntryAt(index_.RefAt(pos));
    if (held.version > w.version) return FillResult::kSuperseded;
    if (held.version == w.version && !Expired(held)) {
      return FillResult::kAccepted;  // already there
    }
  }
  // Concurrent loads of the key now know this version: one that read
  // something older must not replace it after it is evicted.
  NoteVersion(key, w.version);
  Upsert(pos, key, hash, w, epoch);
  return FillResult::kAccepted;
}

void Engine::Shard::AbandonFill(std::string_view key, uint64_t id) {
  internal::ShardLock lock(&mu_);
  TakeFill(key, id);
}

size_t Engine::Shard::Flush() {
  internal::ShardLock lock(&mu_);
  ChangeGuard guard(*this);
  // Entries and tickets made since the epoch moved on (an Apply above the
  // floor, a load begun after the bump) are what a finished flush would
  // hold: they stay. Everything else goes.
  const uint64_t epoch = Epoch();
  size_t dropped = 0;
  std::vector<uint32_t> dead;
  bool any_live = false;
  for (uint32_t pos = 0; pos < index_.slots(); ++pos) {
    if (const uint32_t ref = index_.RefAt(pos); ref != 0) {
      if (Dead(*EntryAt(ref), epoch)) {
        dead.push_back(ref);
      } else {
        any_live = true;
      }
    }
  }
  if (any_live) {
    for (uint32_t ref : dead) {
      Entry* e = EntryAt(ref);
      DropAt(index_.Find(e->hash, [ref](uint32_t r) { return r == ref; }));
    }
    dropped = dead.size();
  } else if (!dead.empty() || arena_.used_bytes() > 0) {
    MarkChanging();
    for (uint32_t ref : dead) Forget(EntryAt(ref)->hash, EntryAt(ref)->version);
    dropped = dead.size();
    index_.Clear();
    policy_->Clear();
    arena_.Reset();
    bytes_ = 0;
  }
  for (auto it = fills_.begin(); it != fills_.end();) {
    auto& open = it->second;
    const auto live = std::remove_if(open.begin(), open.end(),
                                     [epoch](const OpenFill& f) { return f.epoch != epoch; });
    open_fills_ -= static_cast<uint64_t>(open.end() - live);
    open.erase(live, open.end());
    if (open.empty()) {
      fills_.erase(it++);
    } else {
      ++it;
    }
  }
  return dropped;
}

bool Engine::Shard::TouchHashed(uint64_t hash, uint32_t times) {
  internal::ShardLock lock(&mu_);
  const uint32_t pos = index_.Find(hash, [&](uint32_t ref) { return EntryAt(ref)->hash == hash; });
  if (pos == SlotIndex::kNone) return false;
  Entry* e = EntryAt(index_.RefAt(pos));
  if (Dead(*e, Epoch()) || Expired(*e)) return false;
  for (uint32_t i = 0; i < times; ++i) policy_->Touch(e);
  return true;
}

std::vector<std::string> Engine::Shard::Keys() const {
  internal::ShardLock lock(&mu_);
  std::vector<std::string> out;
  out.reserve(index_.size());
  const uint64_t epoch = Epoch();
  for (uint32_t pos = 0; pos < index_.slots(); ++pos) {
    const uint32_t ref = index_.RefAt(pos);
    if (ref == 0) continue;
    const Entry* e = EntryAt(ref);
    if (Dead(*e, epoch) || Expired(*e)) continue;
    out.emplace_back(e->key());
  }
  return out;
}

void Engine::Shard::AddStats(EngineStats& stats) const {
  internal::ShardLock lock(&mu_);
  stats.entries += index_.size();
  stats.bytes += bytes_;
  stats.hits += hits_;
  stats.misses += misses_;
  stats.evictions += evictions_;
  stats.expirations += expirations_;
  stats.fills_rejected += fills_rejected_;
  stats.open_fills += open_fills_;
  stats.storage_bytes += arena_.used_bytes() + sizeof(uint64_t) * index_.slots();
}

bool Engine::Shard::CheckStorage(std::string* why) const {
  internal::ShardLock lock(&mu_);
  if (!arena_.Check(why)) return false;
  size_t entries = 0;
  size_t charged = 0;
  bool ok = true;
  for (uint32_t pos = 0; pos < index_.slots(); ++pos) {
    const uint32_t ref = index_.RefAt(pos);
    if (ref == 0) continue;
    const Entry* e = EntryAt(ref);
    ++entries;
    charged += e->charge();
    if (FindPos(e->key(), e->hash) != pos || e->hash != internal::HashKey(e->key())) ok = false;
  }
  if (!ok) {
    *why = "an indexed entry cannot be found by its key";
    return false;
  }
  if (charged != bytes_) {
    *why = "the entries' charges do not add up to the shard's bytes";
    return false;
  }
  if (entries != index_.size()) {
    *why = "the index's count is wrong";
    return false;
  }
  if (seq_.load(std::memory_order_relaxed) % 2 != 0) {
    *why = "the sequence lock was left odd";
    return false;
  }
  return true;
}

void Engine::Shard::Upsert(uint32_t pos, std::string_view key, uint64_t hash, const Write& w,
                           uint64_t epoch) {
  MarkChanging();
  Entry* held = pos != SlotIndex::kNone ? EntryAt(index_.RefAt(pos)) : nullptr;
  constexpr size_t kMaxField = std::numeric_limits<uint32_t>::max();
  const size_t charge = key.size() + w.value.size() + internal::kEntryOverhead;
  if (charge > capacity_ || key.size() > kMaxField || w.value.size() > kMaxField) {
    // Too big to cache; what we held is older, so it goes too.
    if (held != nullptr) DropAt(pos);
    Forget(hash, w.version);
    return;
  }
  if (held != nullptr && held->value_size == w.value.size()) {
    held->Assign(w.version, w.negative, w.value, w.expires_ns, static_cast<uint32_t>(epoch));
    policy_->Touch(held);
    return;
  }
  // A block for the new entry. The byte bound leaves the arena room for it
  // (an entry's block is smaller than its charge), but free space may be in
  // pieces: then evict until a piece is large enough (in an empty arena
  // every entry within the charge bound fits). The held entry may be the
  // victim itself; then the new one is inserted rather than replacing it.
  Entry* fresh;
  while ((fresh = Entry::Create(arena_, key, hash, w.version, w.negative, w.value, w.expires_ns,
                                static_cast<uint32_t>(epoch))) == nullptr) {
    if (!EvictOne()) {  // nothing left: cannot happen, but never loop
      if (const uint32_t at = FindPos(key, hash); at != SlotIndex::kNone) DropAt(at);
      Forget(hash, w.version);
      return;
    }
  }
  if (held != nullptr) {
    // Evictions move index slots and may have taken the held entry.
    pos = FindPos(key, hash);
    held = pos != SlotIndex::kNone ? EntryAt(index_.RefAt(pos)) : nullptr;
  }
  if (held != nullptr) {
    policy_->Replace(held, fresh);
    policy_->Touch(fresh);
    index_.SetRef(pos, arena_.RefOf(fresh));
    bytes_ -= held->charge();
    Entry::Destroy(arena_, held);
  } else {
    policy_->Insert(fresh);
    index_.Insert(hash, arena_.RefOf(fresh));
  }
  bytes_ += charge;
  while (bytes_ > capacity_) EvictOne();
}

void Engine::Shard::DropAt(uint32_t pos) {
  MarkChanging();
  Entry* e = EntryAt(index_.RefAt(pos));
  policy_->Remove(e);
  index_.EraseAt(pos);
  Release(e);
}

bool Engine::Shard::EvictOne() {
  Entry* victim = policy_->Evict();
  if (victim == nullptr) return false;
  MarkChanging();
  index_.EraseAt(index_.Find(victim->hash, [&](uint32_t ref) { return EntryAt(ref) == victim; }));
  if (Expired(*victim)) {
    ++expirations_;
  } else {
    ++evictions_;
  }
  Release(victim);
  return true;
}

void Engine::Shard::Release(Entry* e) {
  bytes_ -= e->charge();
  Forget(e->hash, e->version);
  Entry::Destroy(arena_, e);
}

void Engine::Shard::Forget(uint64_t hash, uint64_t version) {
  uint64_t& slot = ForgottenSlot(hash);
  slot = std::max(slot, version);
}

void Engine::Shard::NoteVersion(std::string_view key, uint64_t version) {
  if (fills_.empty()) return;
  auto it = fills_.find(key);
  if (it == fills_.end()) return;
  for (OpenFill& fill : it->second) {
    fill.max_seen = std::max(fill.max_seen, version);
  }
}

std::optional<OpenFill> Engine::Shard::TakeFill(std::string_view key, uint64_t id) {
  auto it = fills_.find(key);
  if (it == fills_.end()) return std::nullopt;
  auto& open = it->second;
  auto fill =
      std::find_if(open.begin(), open.end(), [id](const OpenFill& f) { return f.id == id; });
  if (fill == open.end()) return std::nullopt;
  const OpenFill taken = *fill;
  open.erase(fill);
  --open_fills_;
  if (open.empty()) fills_.erase(it);
  return taken;
}

// ---------------------------------------------------------------------------

Engine::Engine(EngineOptions options)
    : options_(std::move(options)),
      clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {
  const size_t shards = RoundUpToPowerOfTwo(std::max<size_t>(options_.shards, 1));
  const size_t capacity = options_.max_bytes / shards;
  NamespaceRegion* region = options_.region;
  if (region == nullptr) {
    absl::StatusOr<std::unique_ptr<Storage>> storage =
        Storage::CreatePrivate({NamespacePlan{"", options_.max_bytes, shards}});
    if (!storage.ok()) {
      std::fprintf(stderr, "cachecar: cache engine: %s\n",
                   std::string(storage.status().message()).c_str());
      std::abort();
    }
    private_storage_ = *std::move(storage);
    region = private_storage_->region(0);
  }
  if (region->shards.size() != shards) {
    std::fprintf(stderr, "cachecar: cache engine: storage has %zu shards, want %zu\n",
                 region->shards.size(), shards);
    std::abort();
  }
  floor_ = &region->header->floor;
  epoch_ = &region->header->epoch;
  shards_.reserve(shards);
  for (size_t i = 0; i < shards; ++i) {
    shards_.push_back(std::make_unique<Shard>(options_.policy, capacity, clock_, *floor_, *epoch_,
                                              region->shards[i]));
  }
}

Engine::~Engine() = default;

Engine::Shard& Engine::ShardFor(uint64_t hash) {
  // The hash's top bits pick the shard; the index uses the low bits.
  const auto index = static_cast<size_t>((static_cast<__uint128_t>(hash) * shards_.size()) >> 64);
  return *shards_[index];
}

Engine::Shard& Engine::ShardFor(std::string_view key) { return ShardFor(internal::HashKey(key)); }

int64_t Engine::ExpiryFor(std::optional<absl::Duration> ttl, bool negative) const {
  const absl::Duration d = ttl.value_or(
      negative ? options_.negative_ttl.value_or(options_.default_ttl) : options_.default_ttl);
  if (d <= absl::ZeroDuration() || d == absl::InfiniteDuration()) return 0;
  return std::max<int64_t>(absl::ToUnixNanos(clock_.Now() + d), 1);
}

Lookup Engine::Get(std::string_view key) {
  const uint64_t hash = internal::HashKey(key);
  return ShardFor(hash).Get(key, hash, /*counted=*/true);
}

Lookup::Kind Engine::Visit(std::string_view key, absl::FunctionRef<void(const LookupView&)> visit) {
  const uint64_t hash = internal::HashKey(key);
  return ShardFor(hash).Find(key, hash, /*counted=*/true, visit);
}

Lookup Engine::Peek(std::string_view key) {
  const uint64_t hash = internal::HashKey(key);
  return ShardFor(hash).Get(key, hash, /*counted=*/false);
}

ApplyResult Engine::Apply(std::string_view key, uint64_t version, ChangeKind kind,
                          std::string_view value, std::optional<absl::Duration> ttl) {
  const uint64_t hash = internal::HashKey(key);
  const bool negative = kind != ChangeKind::kValue;
  const Write w{version, negative, negative ? std::string_view() : value,
                kind == ChangeKind::kInvalidate ? 0 : ExpiryFor(ttl, negative)};
  return ShardFor(hash).Apply(key, hash, kind, w);
}

bool Engine::Invalidate(std::string_view key) {
  const uint64_t hash = internal::HashKey(key);
  return ShardFor(hash).Invalidate(key, hash);
}

FillTicket Engine::BeginFill(std::string_view key) {
  const uint64_t id = next_fill_id_.fetch_add(1, std::memory_order_relaxed);
  ShardFor(key).BeginFill(key, id);
  return FillTicket(id, std::string(key));
}

FillResult Engine::CompleteFill(FillTicket ticket, uint64_t version,
                                std::optional<std::string_view> value,
                                std::optional<absl::Duration> ttl) {
  const std::string_view key = ticket.key();
  const uint64_t hash = internal::HashKey(key);
  const Write w{version, !value.has_value(), value.value_or(std::string_view()),
                ExpiryFor(ttl, !value.has_value())};
  return ShardFor(hash).CompleteFill(key, hash, ticket.id(), w);
}

void Engine::AbandonFill(FillTicket ticket) {
  ShardFor(ticket.key()).AbandonFill(ticket.key(), ticket.id());
}

size_t Engine::Flush(std::optional<uint64_t> floor_version) {
  BeginFlush(floor_version);
  return SweepShards();
}

void Engine::BeginFlush(std::optional<uint64_t> floor_version) {
  if (floor_version.has_value()) {
    // Raise the floor before the epoch: an Apply that sees the new epoch
    // (and so makes an entry that outlives this flush) sees the new floor.
    uint64_t cur = floor_->load(std::memory_order_relaxed);
    while (cur < *floor_version &&
           !floor_->compare_exchange_weak(cur, *floor_version, std::memory_order_acq_rel)) {
    }
  }
  // Bump before sweeping: from here on, what was cached or began loading
  // before is dead in every shard, swept or not.
  epoch_->fetch_add(1, std::memory_order_acq_rel);
}

size_t Engine::SweepShards() {
  size_t dropped = 0;
  for (auto& shard : shards_) dropped += shard->Flush();
  return dropped;
}

uint64_t Engine::floor() const { return floor_->load(std::memory_order_acquire); }

uint64_t Engine::epoch() const { return epoch_->load(std::memory_order_acquire); }

bool Engine::TouchHashed(uint64_t hash, uint32_t times) {
  return ShardFor(hash).TouchHashed(hash, std::min<uint32_t>(times, 3));
}

bool Engine::CheckStorage(std::string* why) const {
  for (const auto& shard : shards_) {
    if (!shard->CheckStorage(why)) return false;
  }
  return true;
}

void Engine::ForEachKey(absl::FunctionRef<void(std::string_view key)> visit) const {
  for (const auto& shard : shards_) {
    for (const std::string& key : shard->Keys()) visit(key);
  }
}

EngineStats Engine::Stats() const {
  EngineStats stats;
  for (const auto& shard : shards_) shard->AddStats(stats);
  return stats;
}

size_t Engine::max_bytes() const { return options_.max_bytes; }

size_t Engine::EntryOverhead() { return internal::kEntryOverhead; }

}  // namespace cachecar::cache
