// The engine: the namespace-wide parts (options, flush epoch and floor,
// shard choice, expiry); each shard is an Engine::Shard (engine_shard.h,
// whose notes say why the version and flush rules hold). See engine.h for
// the rules.
#include "cache/engine.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <utility>

#include "cache/engine_shard.h"
#include "cache/entry.h"
#include "cache/storage.h"

namespace cachecar::cache {
namespace {

size_t RoundUpToPowerOfTwo(size_t n) {
  size_t p = 1;
  while (p < n) p <<= 1;
  return p;
}

}  // namespace

using internal::Write;

Engine::Engine(EngineOptions options)
    : options_(options), clock_(options_.clock != nullptr ? *options_.clock : Clock::Real()) {
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

std::vector<SampledEntry> Engine::Sample(uint64_t* cursor, size_t max) {
  constexpr uint32_t kSlotsPerCall = 4096;  // bounds one lock hold
  std::vector<SampledEntry> out;
  uint64_t shard = *cursor >> 32;
  uint32_t pos = static_cast<uint32_t>(*cursor);
  uint32_t budget = kSlotsPerCall;
  while (out.size() < max && budget > 0 && shard < shards_.size()) {
    const std::optional<uint32_t> next = shards_[shard]->Sample(pos, budget, max, out);
    if (!next.has_value()) {
      budget -= std::min(budget, kSlotsPerCall / 4);  // a shard's end costs a share too
      ++shard;
      pos = 0;
      continue;
    }
    budget -= std::min(budget, *next - pos);
    pos = *next;
  }
  *cursor = shard >= shards_.size() ? 0 : (shard << 32) | pos;
  return out;
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
