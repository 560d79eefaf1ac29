// See cache_service.h. The read path: Get, BatchGet and the loads behind
// their misses (the write path is in cache_service_write.cc, min-version
// reads in cache_service_min_version.cc).
#include "service/cache_service.h"

#include <algorithm>
#include <atomic>
#include <memory>
#include <string_view>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "service/cache_service_internal.h"
#include "service/version_waits.h"
#include "service/watch_hub.h"

namespace cachecar::service {

using cache_service_internal::AnswerTooLarge;
using cache_service_internal::BatchState;
using cache_service_internal::FromRecord;
using cache_service_internal::KeysBytes;
using cache_service_internal::kMaxLoadAttempts;
using cache_service_internal::NotCached;
using cache_service_internal::Overloaded;
using cache_service_internal::WithinDeadline;

Limits Limits::FromConfig(const config::Config& config) {
  return Limits{config.max_key_bytes, config.max_value_bytes, config.max_batch_keys,
                config.max_message_bytes, config.min_version_wait};
}

std::optional<ReadResult> FromLookup(cache::Lookup lookup) {
  switch (lookup.kind) {
    case cache::Lookup::Kind::kHit:
      return ReadResult{true, std::move(lookup.value), lookup.version, ReadResult::Source::kCache};
    case cache::Lookup::Kind::kNegative:
      return ReadResult{false, {}, lookup.version, ReadResult::Source::kCache};
    case cache::Lookup::Kind::kMiss:
      break;
  }
  return std::nullopt;
}

CacheService::CacheService(Limits limits, NamespaceSet& namespaces, store::Store& store,
                           WorkerPool& pool, ServiceHooks hooks)
    : limits_(limits), namespaces_(namespaces), store_(store), pool_(pool), hooks_(hooks) {}

bool CacheService::AbsentForSure(Namespace& ns, std::string_view key) {
  if (ns.replicated == nullptr || !ns.replicated->Authoritative(*ns.engine, key)) return false;
  ns.replicated->CountAbsentAnswer();
  return true;
}

bool CacheService::CacheTrusted() {
  if (hooks_.replication == nullptr || hooks_.replication->CacheTrusted()) return true;
  bypassed_reads_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

void CacheService::Changed(const Namespace& ns, Change change, bool tell_replicas,
                           bool tell_watchers, absl::string_view value) {
  change.ns = ns.name;
  change.local = true;
  if (tell_replicas && hooks_.replication != nullptr) {
    hooks_.replication->Announce(ns, change, value);
  }
  if (hooks_.waits != nullptr && change.version > 0 && !change.key.empty()) {
    hooks_.waits->Notify(ns.name, change.key, change.version);
  }
  if (tell_watchers && hooks_.watch != nullptr) hooks_.watch->Publish(change);
}

absl::Status CacheService::CheckKey(absl::string_view key) const {
  if (key.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("key is empty: give a key of 1 to ", limits_.max_key_bytes, " bytes"));
  }
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("key is ", key.size(), " bytes, over max_key_bytes (", limits_.max_key_bytes,
                     "): use a shorter key (hash long ones) or raise max_key_bytes"));
  }
  return absl::OkStatus();
}

absl::Status CacheService::CheckKeys(const std::vector<std::string>& keys) const {
  if (keys.size() > limits_.max_batch_keys) {
    return absl::InvalidArgumentError(
        absl::StrCat("the request has ", keys.size(), " keys, over max_batch_keys (",
                     limits_.max_batch_keys, "): split it or raise max_batch_keys"));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = CheckKey(keys[i]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: ", s.message()));
    }
  }
  return absl::OkStatus();
}

void CacheService::Get(absl::string_view ns_name, const std::string& key, Consistency consistency,
                       absl::Time deadline, const ReadDone& done, uint64_t min_version) {
  // `done` runs after the shard lock is released: it may call back in.
  std::optional<ReadResult> hit;
  Get(
      ns_name, absl::string_view(key), consistency, deadline,
      [&hit](const CachedValue& v) {
        hit = ReadResult{v.found, std::string(v.value), v.version, ReadResult::Source::kCache};
      },
      done, min_version);
  if (hit.has_value()) done(std::move(*hit));
}

bool CacheService::AnswerFromCache(Namespace& ns, absl::string_view key, HitSink hit,
                                   uint64_t min_version) {
  bool answered = false;
  ns.engine->Visit(std::string_view(key.data(), key.size()), [&](const cache::LookupView& view) {
    if (view.version < min_version) return;
    answered = true;
    hit(CachedValue{view.kind == cache::Lookup::Kind::kHit, view.value, view.version});
  });
  return answered;
}

void CacheService::Get(absl::string_view ns_name, absl::string_view key, Consistency consistency,
                       absl::Time deadline, HitSink hit, const ReadDone& done,
                       uint64_t min_version) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  Namespace& ns = **found;

  if (min_version > 0) {
    return GetAtLeast(ns, key, min_version, consistency, deadline, hit, done);
  }
  if (consistency == Consistency::kCacheOnly) {
    // Never the store; and nothing the replica cannot vouch for (C4).
    const bool trusted = hooks_.replication == nullptr || hooks_.replication->CacheTrusted();
    if (!trusted || !AnswerFromCache(ns, key, hit)) done(NotCached());
    return;
  }
  if (consistency == Consistency::kStrong || !CacheTrusted()) {
    return LoadOnPool(ns, key, deadline, done);
  }
  // The hit: the entry goes straight to `hit`, under the shard lock.
  if (AnswerFromCache(ns, key, hit)) return;
  if (AbsentForSure(ns, std::string_view(key.data(), key.size()))) {
    return hit(CachedValue{false, {}, 0});
  }
  JoinOrLoad(ns, key, deadline, done);
}

void CacheService::GetAtLeast(Namespace& ns, absl::string_view key, uint64_t min_version,
                              Consistency consistency, absl::Time deadline, HitSink hit,
                              const ReadDone& done) {
  const bool trusted = hooks_.replication == nullptr || hooks_.replication->CacheTrusted();
  if (consistency != Consistency::kStrong && trusted) {
    if (AnswerFromCache(ns, key, hit, min_version)) {
      min_from_cache_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    return AwaitVersion(ns, std::string(key), min_version, consistency, deadline, done);
  }
  if (consistency == Consistency::kCacheOnly) return done(NotCached());
  if (!trusted) bypassed_reads_.fetch_add(1, std::memory_order_relaxed);
  return ReadAtLeast(ns, std::string(key), min_version, deadline, done);
}

void CacheService::LoadOnPool(Namespace& ns, absl::string_view key, absl::Time deadline,
                              const ReadDone& done) {
  if (!pool_.TrySubmit([this, &ns, key = std::string(key), deadline, done] {
        absl::StatusOr<std::vector<ReadResult>> r = LoadKeys(ns, {key}, deadline, false);
        if (!r.ok()) return done(r.status());
        done(std::move((*r)[0]));
      })) {
    done(Overloaded());
  }
}

void CacheService::JoinOrLoad(Namespace& ns, absl::string_view key, absl::Time deadline,
                              const ReadDone& done) {
  const std::string_view std_key(key.data(), key.size());
  std::optional<ReadResult> answer;
  SingleFlight::Role role = flights_.JoinOrLead(
      ns.name, key, deadline,
      [done, deadline](const absl::StatusOr<ReadResult>& r) { done(WithinDeadline(r, deadline)); },
      [&ns, std_key] { return FromLookup(ns.engine->Peek(std_key)); }, &answer);
  switch (role) {
    case SingleFlight::Role::kAnswered:
      return done(std::move(*answer));
    case SingleFlight::Role::kJoined:
      return;
    case SingleFlight::Role::kLeader:
      return StartLoads(ns, {std::string(key)});
  }
}

void CacheService::StartLoads(Namespace& ns, const std::vector<std::string>& keys) {
  // The load's deadline is read from the flights when it starts (joiners may
  // have extended it while the task waited in the queue), and the answers
  // reach the callers through the flights: nothing to pass, nothing to return.
  auto task = [this, &ns, keys] { LoadKeys(ns, keys, absl::InfinitePast(), true).IgnoreError(); };
  if (!pool_.TrySubmit(std::move(task))) {
    for (const std::string& k : keys) flights_.Land(ns.name, k, Overloaded());
  }
}

std::optional<ReadResult> CacheService::Settle(Namespace& ns, const std::string& key,
                                               cache::FillTicket ticket,
                                               const store::Record& record) {
  std::optional<std::string_view> value;
  if (record.found) value = std::string_view(record.value.data(), record.value.size());
  cache::FillResult fill = ns.engine->CompleteFill(std::move(ticket), record.version, value);
  if (fill == cache::FillResult::kAccepted) return FromRecord(record);
  // Overtaken: something newer reached the key while we read. If the engine
  // holds it, that is the freshest answer; otherwise read again.
  std::optional<ReadResult> held = FromLookup(ns.engine->Peek(key));
  if (held.has_value() && held->version >= record.version) return held;
  return std::nullopt;
}

absl::Time CacheService::FlightDeadline(const Namespace& ns,
                                        const std::vector<std::string>& keys) const {
  absl::Time deadline = absl::InfinitePast();
  for (const std::string& k : keys) deadline = std::max(deadline, flights_.Deadline(ns.name, k));
  return deadline;
}

absl::StatusOr<std::vector<store::Record>> CacheService::Read(Namespace& ns,
                                                              const std::vector<std::string>& keys,
                                                              absl::Time deadline) {
  ns.loads.fetch_add(1, std::memory_order_relaxed);
  if (keys.size() != 1) return store_.LoadBatch(ns.name, keys, {deadline});
  absl::StatusOr<store::Record> record = store_.Load(ns.name, keys[0], {deadline});
  if (!record.ok()) return record.status();
  std::vector<store::Record> out;
  out.push_back(std::move(*record));
  return out;
}

absl::StatusOr<std::vector<ReadResult>> CacheService::LoadKeys(Namespace& ns,
                                                               const std::vector<std::string>& keys,
                                                               absl::Time deadline,
                                                               bool land_flights) {
  std::vector<ReadResult> out(keys.size());
  std::vector<std::string> batch = keys;  // the keys still to answer
  std::vector<size_t> positions(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) positions[i] = i;
  auto fail = [&](const absl::Status& status) -> absl::Status {
    if (land_flights) {
      for (const std::string& k : batch) flights_.Land(ns.name, k, status);
    }
    return status;
  };

  for (int attempt = 0; !batch.empty(); ++attempt) {
    if (attempt == kMaxLoadAttempts) {
      // Never answer with a value we know was overtaken (C1, C2).
      return fail(absl::UnavailableError(
          absl::StrCat("the key changed ", kMaxLoadAttempts,
                       " times while it was being read from the store; retry")));
    }
    if (land_flights) deadline = FlightDeadline(ns, batch);
    std::vector<cache::FillTicket> tickets;
    tickets.reserve(batch.size());
    for (const std::string& k : batch) tickets.push_back(ns.engine->BeginFill(k));
    absl::StatusOr<std::vector<store::Record>> records = Read(ns, batch, deadline);
    if (!records.ok()) {
      for (cache::FillTicket& t : tickets) ns.engine->AbandonFill(std::move(t));
      // A caller that joined later may have time left: read again for it.
      if (land_flights && records.status().code() == absl::StatusCode::kDeadlineExceeded &&
          FlightDeadline(ns, batch) > absl::Now()) {
        --attempt;
        continue;
      }
      return fail(records.status());
    }
    std::vector<std::string> overtaken_keys;
    std::vector<size_t> overtaken_positions;
    for (size_t j = 0; j < batch.size(); ++j) {
      std::optional<ReadResult> answer;
      auto settle = [&]() -> std::optional<ReadResult> {
        answer = Settle(ns, batch[j], std::move(tickets[j]), (*records)[j]);
        return answer;
      };
      const bool settled =
          land_flights ? flights_.LandIf(ns.name, batch[j], settle) : settle().has_value();
      if (settled) {
        out[positions[j]] = std::move(*answer);
      } else {
        overtaken_keys.push_back(std::move(batch[j]));
        overtaken_positions.push_back(positions[j]);
      }
    }
    batch = std::move(overtaken_keys);
    positions = std::move(overtaken_positions);
  }
  return out;
}

absl::Status CacheService::CheckBatchGet(const std::vector<std::string>& keys,
                                         const std::vector<uint64_t>& min_versions) const {
  if (keys.empty()) {
    return absl::InvalidArgumentError("keys is empty: BatchGet needs at least one key");
  }
  if (absl::Status s = CheckKeys(keys); !s.ok()) return s;
  if (KeysBytes(keys) > limits_.max_response_bytes) {
    return AnswerTooLarge(limits_.max_response_bytes);  // the keys alone
  }
  if (!min_versions.empty() && min_versions.size() != keys.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("min_versions has ", min_versions.size(), " entries for ", keys.size(),
                     " keys: give one per key (0 for none), or none at all"));
  }
  return absl::OkStatus();
}

void CacheService::BatchGet(absl::string_view ns_name, std::vector<std::string> keys,
                            Consistency consistency, absl::Time deadline, BatchDone done,
                            std::vector<uint64_t> min_versions) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckBatchGet(keys, min_versions); !s.ok()) return done(s);
  if (std::any_of(min_versions.begin(), min_versions.end(), [](uint64_t v) { return v > 0; })) {
    return BatchGetAtLeast(ns_name, std::move(keys), consistency, deadline, std::move(done),
                           std::move(min_versions));
  }
  Namespace& ns = **found;

  if (consistency == Consistency::kCacheOnly) return BatchGetCacheOnly(ns, keys, done);
  if (consistency == Consistency::kStrong || !CacheTrusted()) {
    if (!pool_.TrySubmit([this, &ns, keys = std::move(keys), deadline, done] {
          done(LoadStrong(ns, keys, deadline));
        })) {
      done(Overloaded());
    }
    return;
  }
  BatchGetCached(ns, keys, deadline, std::move(done));
}

void CacheService::BatchGetCacheOnly(Namespace& ns, const std::vector<std::string>& keys,
                                     const BatchDone& done) {
  const bool trusted = hooks_.replication == nullptr || hooks_.replication->CacheTrusted();
  std::vector<ReadResult> results(keys.size());
  uint64_t bytes = 0;
  for (size_t i = 0; i < keys.size(); ++i) {
    std::optional<ReadResult> hit;
    if (trusted) hit = FromLookup(ns.engine->Get(keys[i]));
    results[i] = hit.has_value() ? std::move(*hit) : NotCached();
    bytes += results[i].value.size();
    if (bytes > limits_.max_response_bytes) {
      return done(AnswerTooLarge(limits_.max_response_bytes));
    }
  }
  done(std::move(results));
}

void CacheService::BatchGetCached(Namespace& ns, const std::vector<std::string>& keys,
                                  absl::Time deadline, BatchDone done) {
  auto state = std::make_shared<BatchState>(keys.size(), KeysBytes(keys),
                                            limits_.max_response_bytes, std::move(done));
  // Unique missing keys → the request positions they answer.
  absl::flat_hash_map<std::string, std::vector<size_t>> misses;
  {
    MutexLock lock(&state->mu);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (std::optional<ReadResult> hit = FromLookup(ns.engine->Get(keys[i]))) {
        if (!state->Fits(hit->value.size())) break;
        state->results[i] = std::move(*hit);
      } else if (AbsentForSure(ns, keys[i])) {
        state->results[i] = ReadResult{false, {}, 0, ReadResult::Source::kCache};
      } else {
        misses[keys[i]].push_back(i);
      }
    }
    if (!state->error.ok()) misses.clear();
  }
  if (misses.empty()) return state->Finish();

  state->pending.store(misses.size(), std::memory_order_release);
  std::vector<std::string> leads;
  for (const auto& miss : misses) {
    const std::string& key = miss.first;
    const std::vector<size_t>& indices = miss.second;
    std::optional<ReadResult> answer;
    auto waiter = [state, indices, deadline](const absl::StatusOr<ReadResult>& r) {
      state->Deliver(indices, WithinDeadline(r, deadline));
    };
    SingleFlight::Role role = flights_.JoinOrLead(
        ns.name, key, deadline, waiter, [&ns, &key] { return FromLookup(ns.engine->Peek(key)); },
        &answer);
    if (role == SingleFlight::Role::kAnswered) waiter(std::move(*answer));
    if (role == SingleFlight::Role::kLeader) leads.push_back(key);
  }
  if (!leads.empty()) StartLoads(ns, leads);
}

absl::StatusOr<std::vector<ReadResult>> CacheService::LoadStrong(
    Namespace& ns, const std::vector<std::string>& keys, absl::Time deadline) {
  // Each distinct key is read once; its answer is copied to every position.
  std::vector<std::string> unique;
  absl::flat_hash_map<std::string, size_t> index_of;
  std::vector<size_t> slot(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    auto [it, added] = index_of.try_emplace(keys[i], unique.size());
    if (added) unique.push_back(keys[i]);
    slot[i] = it->second;
  }
  absl::StatusOr<std::vector<ReadResult>> loaded = LoadKeys(ns, unique, deadline, false);
  if (!loaded.ok()) return loaded.status();
  uint64_t bytes = KeysBytes(keys);
  for (size_t i = 0; i < keys.size(); ++i) bytes += (*loaded)[slot[i]].value.size();
  if (bytes > limits_.max_response_bytes) return AnswerTooLarge(limits_.max_response_bytes);
  std::vector<ReadResult> out;
  out.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) out.push_back((*loaded)[slot[i]]);
  return out;
}

}  // namespace cachecar::service
