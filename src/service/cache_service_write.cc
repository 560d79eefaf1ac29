// See cache_service.h: the write path (Put, Delete, WriteBatch), local
// invalidation and the namespaces' stats.
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/strings/str_cat.h"
#include "common/fault_point.h"
#include "service/cache_service.h"
#include "service/cache_service_internal.h"
#include "store/outcome.h"

namespace cachecar::service {

using cache_service_internal::Overloaded;

bool CacheService::Drop(Namespace& ns, const std::string& key) {
  const bool dropped = ns.engine->Invalidate(key);
  if (ns.replicated) ns.replicated->MarkUnknown(key);
  return dropped;
}

void CacheService::Put(absl::string_view ns_name, std::string key, std::string value,
                       WriteOptions options, absl::Time deadline, const PutDone& done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  if (value.size() > limits_.max_value_bytes) {
    return done(absl::InvalidArgumentError(
        absl::StrCat("value is ", value.size(), " bytes, over max_value_bytes (",
                     limits_.max_value_bytes, "): store smaller values or raise max_value_bytes")));
  }
  Namespace& ns = **found;
  auto task = [this, &ns, key = std::move(key), value = std::move(value), options, deadline, done] {
    absl::StatusOr<uint64_t> version =
        store_.Put(ns.name, key, value, options.precondition, {deadline});
    if (version.ok()) {
      FaultPoint(kFaultAfterCommit);
      const cache::ApplyResult applied =
          ns.engine->Apply(key, *version, cache::ChangeKind::kValue, value, options.ttl);
      // A racing newer write may already have reached the engine (and its
      // watchers); the other replicas hear of this one regardless.
      Change change{"", key, *version, ChangeOp::kUpsert};
      change.ttl = options.ttl;
      Changed(ns, std::move(change), /*tell_replicas=*/true,
              /*tell_watchers=*/applied == cache::ApplyResult::kApplied, value);
    } else if (store::IsOutcomeUnknown(version.status())) {
      Drop(ns, key);
    }
    done(std::move(version));
  };
  if (!pool_.TrySubmit(std::move(task))) done(Overloaded());
}

void CacheService::Delete(absl::string_view ns_name, std::string key,
                          std::optional<uint64_t> if_version, absl::Time deadline,
                          const DeleteDone& done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckKey(key); !s.ok()) return done(s);
  Namespace& ns = **found;
  auto task = [this, &ns, key = std::move(key), if_version, deadline, done] {
    absl::StatusOr<store::DeleteResult> result =
        store_.Delete(ns.name, key, if_version, {deadline});
    if (result.ok()) {
      if (result->found) FaultPoint(kFaultAfterCommit);
      bool applied = false;
      if (result->version > 0) {
        applied = ns.engine->Apply(key, result->version, cache::ChangeKind::kTombstone) ==
                  cache::ApplyResult::kApplied;
      }
      if (result->found) {
        Changed(ns, Change{"", key, result->version, ChangeOp::kDelete}, /*tell_replicas=*/true,
                /*tell_watchers=*/applied);
      }
      return done(DeleteOutcome{result->found, result->version});
    }
    if (store::IsOutcomeUnknown(result.status())) Drop(ns, key);
    done(result.status());
  };
  if (!pool_.TrySubmit(std::move(task))) done(Overloaded());
}

absl::Status CacheService::CheckWrites(const std::vector<BatchWriteOp>& writes) const {
  if (writes.empty()) {
    return absl::InvalidArgumentError("writes is empty: WriteBatch needs at least one write");
  }
  if (writes.size() > limits_.max_batch_keys) {
    return absl::InvalidArgumentError(
        absl::StrCat("the batch has ", writes.size(), " writes, over max_batch_keys (",
                     limits_.max_batch_keys, "): split it or raise max_batch_keys"));
  }
  absl::flat_hash_map<absl::string_view, size_t> seen;
  for (size_t i = 0; i < writes.size(); ++i) {
    const BatchWriteOp& w = writes[i];
    auto bad = [i](absl::string_view why) {
      return absl::InvalidArgumentError(absl::StrCat("writes[", i, "]: ", why));
    };
    if (absl::Status s = CheckKey(w.key); !s.ok()) return bad(s.message());
    if (auto [it, added] = seen.try_emplace(w.key, i); !added) {
      return bad(absl::StrCat("key '", w.key, "' is also written by writes[", it->second,
                              "]: a batch writes each key once"));
    }
    if (w.is_delete) {
      if (!w.value.empty()) return bad("a delete carries no value");
      if (w.options.ttl.has_value()) return bad("a delete carries no ttl_ms");
      if (w.options.precondition.kind == store::Precondition::Kind::kIfAbsent) {
        return bad("if_absent is for puts; a delete takes if_version");
      }
    } else if (w.value.size() > limits_.max_value_bytes) {
      return bad(absl::StrCat("value is ", w.value.size(), " bytes, over max_value_bytes (",
                              limits_.max_value_bytes,
                              "): store smaller values or raise max_value_bytes"));
    }
  }
  return absl::OkStatus();
}

void CacheService::WriteBatch(absl::string_view ns_name, std::vector<BatchWriteOp> writes,
                              absl::Time deadline, const WriteBatchDone& done) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  if (absl::Status s = CheckWrites(writes); !s.ok()) return done(s);
  Namespace& ns = **found;
  auto task = [this, &ns, writes = std::move(writes), deadline, done] {
    std::vector<store::BatchWrite> batch;
    batch.reserve(writes.size());
    for (const BatchWriteOp& w : writes) {
      batch.push_back(store::BatchWrite{w.key, w.is_delete, w.value, w.options.precondition});
    }
    absl::StatusOr<std::vector<store::BatchWriteResult>> results =
        store_.WriteBatch(ns.name, batch, {deadline});
    if (!results.ok()) {
      if (store::IsOutcomeUnknown(results.status())) {
        for (const BatchWriteOp& w : writes) Drop(ns, w.key);
      }
      return done(results.status());
    }
    FaultPoint(kFaultAfterCommit);
    done(ApplyCommitted(ns, writes, *results));
  };
  if (!pool_.TrySubmit(std::move(task))) done(Overloaded());
}

std::vector<DeleteOutcome> CacheService::ApplyCommitted(
    const Namespace& ns, const std::vector<BatchWriteOp>& writes,
    const std::vector<store::BatchWriteResult>& results) {
  std::vector<DeleteOutcome> out;
  out.reserve(writes.size());
  for (size_t i = 0; i < writes.size(); ++i) {
    const BatchWriteOp& w = writes[i];
    const store::BatchWriteResult& r = results[i];
    out.push_back(DeleteOutcome{r.found, r.version});
    if (!w.is_delete) {
      const bool applied = ns.engine->Apply(w.key, r.version, cache::ChangeKind::kValue, w.value,
                                            w.options.ttl) == cache::ApplyResult::kApplied;
      Change change{"", w.key, r.version, ChangeOp::kUpsert};
      change.ttl = w.options.ttl;
      Changed(ns, std::move(change), /*tell_replicas=*/true, /*tell_watchers=*/applied, w.value);
      continue;
    }
    bool applied = false;
    if (r.version > 0) {
      applied = ns.engine->Apply(w.key, r.version, cache::ChangeKind::kTombstone) ==
                cache::ApplyResult::kApplied;
    }
    if (r.found) {
      Changed(ns, Change{"", w.key, r.version, ChangeOp::kDelete}, /*tell_replicas=*/true,
              /*tell_watchers=*/applied);
    }
  }
  return out;
}

void CacheService::Invalidate(absl::string_view ns_name, const std::vector<std::string>& keys,
                              bool all, const InvalidateDone& done, bool broadcast) {
  absl::StatusOr<Namespace*> found = namespaces_.Find(ns_name);
  if (!found.ok()) return done(found.status());
  Namespace& ns = **found;
  // Other replicas hear of it only with `broadcast`; local watchers always.
  if (all) {
    if (!pool_.TrySubmit([this, &ns, done, broadcast] {
          const uint64_t dropped = ns.engine->Flush();
          Changed(ns, Change{"", "", 0, ChangeOp::kFlush}, broadcast, /*tell_watchers=*/true);
          done(dropped);
        })) {
      done(Overloaded());
    }
    return;
  }
  if (keys.empty()) {
    return done(absl::InvalidArgumentError(
        "nothing to invalidate: give keys, or set all to drop the whole namespace"));
  }
  if (absl::Status s = CheckKeys(keys); !s.ok()) return done(s);
  uint64_t dropped = 0;
  for (const std::string& key : keys) {
    dropped += Drop(ns, key) ? 1 : 0;
    Changed(ns, Change{"", key, 0, ChangeOp::kInvalidate}, broadcast, /*tell_watchers=*/true);
  }
  done(dropped);
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
    NamespaceStatsView v{ns->name, ns->engine->Stats(), ns->engine->max_bytes(),
                         ns->loads.load(std::memory_order_relaxed)};
    if (ns->replicated) {
      v.replicated = true;
      v.complete = ns->replicated->Complete(*ns->engine);
      v.full_loads = ns->replicated->loads();
      v.absent_answers = ns->replicated->absent_answers();
    }
    out.push_back(std::move(v));
  }
  return out;
}

}  // namespace cachecar::service
