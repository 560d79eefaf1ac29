// See memory_store.h.
#include "store/memory/memory_store.h"

#include <algorithm>

#include "store/outcome.h"

namespace cachecar::store {
namespace {
absl::Status CheckDeadline(const CallOptions& options) {
  if (absl::Now() >= options.deadline) {
    return absl::DeadlineExceededError("deadline passed before the store was read");
  }
  return absl::OkStatus();
}
}  // namespace

Record MemoryStore::LoadLocked(absl::string_view ns, absl::string_view key) const {
  auto it = rows_.find(RowKey(ns, key));
  if (it == rows_.end()) return Record{};
  return it->second;
}

absl::StatusOr<Record> MemoryStore::Load(absl::string_view ns, absl::string_view key,
                                         const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  return LoadLocked(ns, key);
}

absl::StatusOr<std::vector<Record>> MemoryStore::LoadBatch(absl::string_view ns,
                                                           const std::vector<std::string>& keys,
                                                           const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  std::vector<Record> out;
  out.reserve(keys.size());
  MutexLock lock(&mu_);
  for (const std::string& key : keys) out.push_back(LoadLocked(ns, key));
  return out;
}

absl::StatusOr<VersionSnapshot> MemoryStore::ReadVersions(absl::string_view ns,
                                                          const std::vector<std::string>& keys,
                                                          const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  VersionSnapshot out;
  out.records.reserve(keys.size());
  MutexLock lock(&mu_);
  out.as_of = absl::Now();
  for (const std::string& key : keys) {
    const Record row = LoadLocked(ns, key);
    VersionRecord v{row.found, row.version, absl::InfinitePast()};
    if (auto it = written_.find(RowKey(ns, key)); it != written_.end()) v.written = it->second;
    out.records.push_back(v);
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> MemoryStore::ScanKeys(absl::string_view ns,
                                                               absl::string_view after,
                                                               size_t limit,
                                                               const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  std::vector<std::string> keys;
  {
    MutexLock lock(&mu_);
    for (const auto& [row, record] : rows_) {
      // A deleted key keeps its delete version (a tombstone): scanned too.
      if (row.first == ns && row.second > after) keys.push_back(row.second);
    }
  }
  std::sort(keys.begin(), keys.end());
  if (keys.size() > limit) keys.resize(limit);
  return keys;
}

absl::Status MemoryStore::CheckLocked(absl::string_view ns, absl::string_view key,
                                      const Precondition& precondition) const {
  auto it = rows_.find(RowKey(ns, key));
  const bool live = it != rows_.end() && it->second.found;
  // The key's current version: its value's, or its delete's (what Get says).
  const uint64_t current = it != rows_.end() ? it->second.version : 0;
  switch (precondition.kind) {
    case Precondition::Kind::kNone:
      break;
    case Precondition::Kind::kIfVersion:
      // A live key matches its value's version; an absent one 0 or the
      // version it was deleted at (a read-modify-write of a deleted key).
      if (live ? current != precondition.version
               : precondition.version != 0 && precondition.version != current) {
        return VersionMismatchError(key, precondition.version, current, !live && current != 0);
      }
      break;
    case Precondition::Kind::kIfAbsent:
      if (live) return NotAbsentError(key, current);
      break;
  }
  return absl::OkStatus();
}

uint64_t MemoryStore::PutLocked(absl::string_view ns, absl::string_view key,
                                absl::string_view value) {
  Record& row = rows_[RowKey(ns, key)];
  row.found = true;
  row.value.assign(value.data(), value.size());
  row.version = ++last_version_;
  written_[RowKey(ns, key)] = absl::Now();
  return row.version;
}

DeleteResult MemoryStore::DeleteLocked(absl::string_view ns, absl::string_view key) {
  auto it = rows_.find(RowKey(ns, key));
  if (it == rows_.end()) return DeleteResult{false, 0};
  if (!it->second.found) return DeleteResult{false, it->second.version};
  it->second.found = false;
  it->second.value.clear();
  it->second.value.shrink_to_fit();
  it->second.version = ++last_version_;
  written_[it->first] = absl::Now();
  return DeleteResult{true, it->second.version};
}

absl::StatusOr<uint64_t> MemoryStore::Put(absl::string_view ns, absl::string_view key,
                                          absl::string_view value, Precondition precondition,
                                          const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  // Look before inserting: a failed precondition must not leave a row.
  if (absl::Status s = CheckLocked(ns, key, precondition); !s.ok()) return s;
  return PutLocked(ns, key, value);
}

absl::StatusOr<DeleteResult> MemoryStore::Delete(absl::string_view ns, absl::string_view key,
                                                 std::optional<uint64_t> if_version,
                                                 const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  // As for Put: an absent key matches 0 or the version it was deleted at.
  if (if_version.has_value()) {
    if (absl::Status s = CheckLocked(ns, key, Precondition::IfVersion(*if_version)); !s.ok()) {
      return s;
    }
  }
  return DeleteLocked(ns, key);
}

absl::StatusOr<std::vector<BatchWriteResult>> MemoryStore::WriteBatch(
    absl::string_view ns, const std::vector<BatchWrite>& writes, const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  // Every precondition first: all or nothing.
  for (size_t i = 0; i < writes.size(); ++i) {
    if (absl::Status s = CheckLocked(ns, writes[i].key, writes[i].precondition); !s.ok()) {
      return InBatchWrite(i, s);
    }
  }
  std::vector<BatchWriteResult> out;
  out.reserve(writes.size());
  for (const BatchWrite& w : writes) {
    if (w.is_delete) {
      const DeleteResult d = DeleteLocked(ns, w.key);
      out.push_back(BatchWriteResult{d.version, d.found});
    } else {
      out.push_back(BatchWriteResult{PutLocked(ns, w.key, w.value), false});
    }
  }
  return out;
}

}  // namespace cachecar::store
