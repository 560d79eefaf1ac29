// See engine_shard.h.
#include "cache/engine_shard.h"

#include <algorithm>
#include <limits>
#include <utility>

#include "cache/shard_lock.h"

namespace cachecar::cache {

using internal::Entry;
using internal::OpenFill;
using internal::SlotIndex;
using internal::Write;

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

std::optional<uint32_t> Engine::Shard::Sample(uint32_t pos, uint32_t max_slots, size_t max,
                                              std::vector<SampledEntry>& out) {
  internal::ShardLock lock(&mu_);
  const uint64_t epoch = Epoch();
  const uint32_t end = static_cast<uint32_t>(
      std::min<uint64_t>(index_.slots(), static_cast<uint64_t>(pos) + max_slots));
  for (; pos < end && out.size() < max; ++pos) {
    const uint32_t ref = index_.RefAt(pos);
    if (ref == 0) continue;
    const Entry* e = EntryAt(ref);
    if (Dead(*e, epoch) || Expired(*e)) continue;
    out.push_back(SampledEntry{std::string(e->key()), e->version, e->negative()});
  }
  if (pos >= index_.slots()) return std::nullopt;
  return pos;
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

}  // namespace cachecar::cache
