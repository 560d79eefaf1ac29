// See cache_service.h.
#include "service/cache_service.h"

#include <atomic>
#include <string_view>
#include <memory>
#include <utility>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/mutex.h"
#include "store/outcome.h"

namespace cachecar::service {
namespace {

// A load overtaken by newer writes this many times answers with what it read.
constexpr int kMaxLoadAttempts = 3;

absl::Status Overloaded() {
  return absl::UnavailableError(
      "cachecar cannot take more store work now (worker queue full, or "
      "shutting down); retry with backoff, or raise `workers`/`worker_queue`");
}

ReadResult FromRecord(const store::Record& record) {
  return ReadResult{record.found, record.value, record.version,
                    ReadResult::Source::kStore};
}

// Answers a read unless its caller's deadline already passed.
absl::StatusOr<ReadResult> WithinDeadline(const absl::StatusOr<ReadResult>& result,
                                          absl::Time deadline) {
  if (absl::Now() > deadline) {
    return absl::DeadlineExceededError("deadline passed while the key was loading");
  }
  return result;
}

// Collects a BatchGet's answers; the last one to arrive calls `done`.
struct BatchState {
  explicit BatchState(size_t n, CacheService::BatchDone d)
      : results(n), done(std::move(d)) {}
  Mutex mu;
  std::vector<ReadResult> results ABSL_GUARDED_BY(mu);
  absl::Status error ABSL_GUARDED_BY(mu);
  std::atomic<size_t> pending{0};
  CacheService::BatchDone done;

  void Deliver(const std::vector<size_t>& indices,
               const absl::StatusOr<ReadResult>& result) {
    {
      MutexLock lock(&mu);
      if (!result.ok()) {
        if (error.ok()) error = result.status();
      } else {
        for (size_t i : indices) results[i] = *result;
      }
    }
    if (pending.fetch_sub(1, std::memory_order_acq_rel) == 1) Finish();
  }

  void Finish() {
    absl::StatusOr<std::vector<ReadResult>> out;
    {
      MutexLock lock(&mu);
      if (error.ok()) out = std::move(results);
      else out = error;
    }
    done(std::move(out));
  }
};

}  // namespace

Limits Limits::FromConfig(const config::Config& config) {
  return Limits{config.max_key_bytes, config.max_value_bytes, config.max_batch_keys};
}

std::optional<ReadResult> FromLookup(const cache::Lookup& lookup) {
  switch (lookup.kind) {
    case cache::Lookup::Kind::kHit:
      return ReadResult{true, lookup.value, lookup.version, ReadResult::Source::kCache};
    case cache::Lookup::Kind::kNegative:
      return ReadResult{false, {}, lookup.version, ReadResult::Source::kCache};
    case cache::Lookup::Kind::kMiss:
      break;
  }
  return std::nullopt;
}

CacheService::CacheService(Limits limits, NamespaceSet& namespaces,
                           store::Store& store, WorkerPool& pool)
    : limits_(limits), namespaces_(namespaces), store_(store), pool_(pool) {}

absl::Status CacheService::CheckKey(absl::string_view key) const {
  if (key.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key is empty: give a key of 1 to ", limits_.max_key_bytes, " bytes"));
  }
  if (key.size() > limits_.max_key_bytes) {
    return absl::InvalidArgumentError(absl::StrCat(
        "key is ", key.size(), " bytes, over max_key_bytes (",
        limits_.max_key_bytes, "): use a shorter key (hash long ones) or raise max_key_bytes"));
  }
  return absl::OkStatus();
}

void CacheService::Get(absl::string_view ns_name, std::string key,
                       Consistency consistency, absl::Time deadline, ReadDone done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  Namespace& ns = **found;

  if (consistency == Consistency::kStrong) {
    if (!pool_.TrySubmit([this, &ns, key = std::move(key), deadline, done] {
          done(LoadOne(ns, key, deadline));
        })) {
      done(Overloaded());
    }
    return;
  }

  if (std::optional<ReadResult> hit = FromLookup(ns.engine->Get(key))) {
    return done(std::move(*hit));
  }
  std::optional<ReadResult> answer;
  SingleFlight::Role role = flights_.JoinOrLead(
      ns.name, key, deadline,
      [done, deadline](const absl::StatusOr<ReadResult>& r) {
        done(WithinDeadline(r, deadline));
      },
      [&ns, &key] { return FromLookup(ns.engine->Peek(key)); }, &answer);
  switch (role) {
    case SingleFlight::Role::kAnswered:
      return done(std::move(*answer));
    case SingleFlight::Role::kJoined:
      return;
    case SingleFlight::Role::kLeader:
      return StartLoads(ns, {std::move(key)}, deadline);
  }
}

void CacheService::StartLoads(Namespace& ns, std::vector<std::string> keys,
                              absl::Time deadline) {
  auto task = [this, &ns, keys] {
    absl::Time load_deadline = absl::InfinitePast();
    for (const std::string& k : keys) {
      load_deadline = std::max(load_deadline, flights_.Deadline(ns.name, k));
    }
    if (keys.size() == 1) {
      flights_.Land(ns.name, keys[0], LoadOne(ns, keys[0], load_deadline));
      return;
    }
    absl::StatusOr<std::vector<ReadResult>> results = LoadMany(ns, keys, load_deadline);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (results.ok()) flights_.Land(ns.name, keys[i], (*results)[i]);
      else flights_.Land(ns.name, keys[i], results.status());
    }
  };
  if (!pool_.TrySubmit(std::move(task))) {
    for (const std::string& k : keys) flights_.Land(ns.name, k, Overloaded());
  }
}

std::optional<ReadResult> CacheService::Settle(Namespace& ns, const std::string& key,
                                               cache::FillTicket ticket,
                                               const store::Record& record) {
  std::optional<std::string_view> value;  // the engine speaks std::string_view
  if (record.found) value = record.value;
  cache::FillResult fill = ns.engine->CompleteFill(std::move(ticket), record.version, value);
  if (fill == cache::FillResult::kAccepted) return FromRecord(record);
  // Overtaken: something newer reached the key while we read. If the engine
  // holds it, that is the freshest answer; otherwise read again.
  std::optional<ReadResult> held = FromLookup(ns.engine->Peek(key));
  if (held.has_value() && held->version >= record.version) return held;
  return std::nullopt;
}

absl::StatusOr<ReadResult> CacheService::LoadOne(Namespace& ns, const std::string& key,
                                                 absl::Time deadline) {
  std::optional<store::Record> last;
  for (int attempt = 0; attempt < kMaxLoadAttempts; ++attempt) {
    cache::FillTicket ticket = ns.engine->BeginFill(key);
    ns.loads.fetch_add(1, std::memory_order_relaxed);
    absl::StatusOr<store::Record> record = store_.Load(ns.name, key, {deadline});
    if (!record.ok()) {
      ns.engine->AbandonFill(std::move(ticket));
      return record.status();
    }
    if (std::optional<ReadResult> r = Settle(ns, key, std::move(ticket), *record)) return *r;
    last = std::move(*record);
  }
  // Still overtaken: what we read was the committed state when we read it.
  return FromRecord(*last);
}

absl::StatusOr<std::vector<ReadResult>> CacheService::LoadMany(
    Namespace& ns, const std::vector<std::string>& keys, absl::Time deadline) {
  std::vector<ReadResult> out(keys.size());
  std::vector<size_t> pending(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) pending[i] = i;
  std::vector<store::Record> last(keys.size());
  for (int attempt = 0; attempt < kMaxLoadAttempts && !pending.empty(); ++attempt) {
    std::vector<std::string> batch;
    std::vector<cache::FillTicket> tickets;
    for (size_t i : pending) {
      batch.push_back(keys[i]);
      tickets.push_back(ns.engine->BeginFill(keys[i]));
    }
    ns.loads.fetch_add(1, std::memory_order_relaxed);
    absl::StatusOr<std::vector<store::Record>> records =
        store_.LoadBatch(ns.name, batch, {deadline});
    if (!records.ok()) {
      for (cache::FillTicket& t : tickets) ns.engine->AbandonFill(std::move(t));
      return records.status();
    }
    std::vector<size_t> overtaken;
    for (size_t j = 0; j < pending.size(); ++j) {
      const size_t i = pending[j];
      if (std::optional<ReadResult> r =
              Settle(ns, keys[i], std::move(tickets[j]), (*records)[j])) {
        out[i] = std::move(*r);
      } else {
        last[i] = std::move((*records)[j]);
        overtaken.push_back(i);
      }
    }
    pending = std::move(overtaken);
  }
  for (size_t i : pending) out[i] = FromRecord(last[i]);
  return out;
}

void CacheService::BatchGet(absl::string_view ns_name, std::vector<std::string> keys,
                            Consistency consistency, absl::Time deadline,
                            BatchDone done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (keys.empty()) {
    return done(absl::InvalidArgumentError("keys is empty: BatchGet needs at least one key"));
  }
  if (keys.size() > limits_.max_batch_keys) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        "BatchGet has ", keys.size(), " keys, over max_batch_keys (",
        limits_.max_batch_keys, "): split the batch or raise max_batch_keys")));
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = CheckKey(keys[i]); !s.ok()) {
      return done(absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: ", s.message())));
    }
  }
  Namespace& ns = **found;

  if (consistency == Consistency::kStrong) {
    if (!pool_.TrySubmit([this, &ns, keys = std::move(keys), deadline, done] {
          done(LoadMany(ns, keys, deadline));
        })) {
      done(Overloaded());
    }
    return;
  }

  auto state = std::make_shared<BatchState>(keys.size(), std::move(done));
  // Unique missing keys → the request positions they answer.
  absl::flat_hash_map<std::string, std::vector<size_t>> misses;
  {
    MutexLock lock(&state->mu);
    for (size_t i = 0; i < keys.size(); ++i) {
      if (std::optional<ReadResult> hit = FromLookup(ns.engine->Get(keys[i]))) {
        state->results[i] = std::move(*hit);
      } else {
        misses[keys[i]].push_back(i);
      }
    }
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
        ns.name, key, deadline, waiter,
        [&ns, &key] { return FromLookup(ns.engine->Peek(key)); }, &answer);
    if (role == SingleFlight::Role::kAnswered) waiter(std::move(*answer));
    if (role == SingleFlight::Role::kLeader) leads.push_back(key);
  }
  if (!leads.empty()) StartLoads(ns, std::move(leads), deadline);
}

void CacheService::Put(absl::string_view ns_name, std::string key, std::string value,
                       WriteOptions options, absl::Time deadline, PutDone done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  if (value.size() > limits_.max_value_bytes) {
    return done(absl::InvalidArgumentError(absl::StrCat(
        "value is ", value.size(), " bytes, over max_value_bytes (",
        limits_.max_value_bytes, "): store smaller values or raise max_value_bytes")));
  }
  Namespace& ns = **found;
  auto task = [this, &ns, key = std::move(key), value = std::move(value), options,
               deadline, done] {
    absl::StatusOr<uint64_t> version =
        store_.Put(ns.name, key, value, options.precondition, {deadline});
    if (version.ok()) {
      ns.engine->Apply(key, *version, cache::ChangeKind::kValue, value, options.ttl);
    } else if (store::IsOutcomeUnknown(version.status())) {
      ns.engine->Invalidate(key);
    }
    done(std::move(version));
  };
  if (!pool_.TrySubmit(std::move(task))) done(Overloaded());
}

void CacheService::Delete(absl::string_view ns_name, std::string key,
                          std::optional<uint64_t> if_version, absl::Time deadline,
                          DeleteDone done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  Namespace& ns = **found;
  auto task = [this, &ns, key = std::move(key), if_version, deadline, done] {
    absl::StatusOr<store::DeleteResult> result =
        store_.Delete(ns.name, key, if_version, {deadline});
    if (result.ok()) {
      if (result->version > 0) {
        ns.engine->Apply(key, result->version, cache::ChangeKind::kTombstone);
      }
      return done(DeleteOutcome{result->found, result->version});
    }
    if (store::IsOutcomeUnknown(result.status())) ns.engine->Invalidate(key);
    done(result.status());
  };
  if (!pool_.TrySubmit(std::move(task))) done(Overloaded());
}

absl::StatusOr<uint64_t> CacheService::Invalidate(absl::string_view ns_name,
                                                  const std::vector<std::string>& keys,
                                                  bool all) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return found.status();
  Namespace& ns = **found;
  if (all) return ns.engine->Flush();
  if (keys.empty()) {
    return absl::InvalidArgumentError(
        "nothing to invalidate: give keys, or set all to drop the whole namespace");
  }
  for (size_t i = 0; i < keys.size(); ++i) {
    if (absl::Status s = CheckKey(keys[i]); !s.ok()) {
      return absl::InvalidArgumentError(absl::StrCat("keys[", i, "]: ", s.message()));
    }
  }
  uint64_t dropped = 0;
  for (const std::string& key : keys) dropped += ns.engine->Invalidate(key) ? 1 : 0;
  return dropped;
}

absl::StatusOr<std::vector<NamespaceStatsView>> CacheService::Stats(
    absl::string_view ns_name) const {
  std::vector<Namespace*> selected;
  if (ns_name.empty()) {
    selected = namespaces_.All();
  } else {
    absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
    if (!found.ok()) return found.status();
    selected.push_back(*found);
  }
  std::vector<NamespaceStatsView> out;
  for (Namespace* ns : selected) {
    out.push_back(NamespaceStatsView{ns->name, ns->engine->Stats(), ns->engine->max_bytes(),
                                     ns->loads.load(std::memory_order_relaxed)});
  }
  return out;
}

}  // namespace cachecar::service
