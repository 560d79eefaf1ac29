// See memory_store.h.
#include "store/memory/memory_store.h"

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

absl::StatusOr<uint64_t> MemoryStore::Put(absl::string_view ns, absl::string_view key,
                                          absl::string_view value, Precondition precondition,
                                          const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  // Look before inserting: a failed precondition must not leave a row.
  auto it = rows_.find(RowKey(ns, key));
  // A version names a live value: an absent key matches nothing but 0.
  const uint64_t live_version = it != rows_.end() && it->second.found ? it->second.version : 0;
  switch (precondition.kind) {
    case Precondition::Kind::kNone:
      break;
    case Precondition::Kind::kIfVersion:
      if (live_version != precondition.version) {
        return VersionMismatchError(key, precondition.version, live_version);
      }
      break;
    case Precondition::Kind::kIfAbsent:
      if (live_version != 0) return NotAbsentError(key, live_version);
      break;
  }
  Record& row = rows_[RowKey(ns, key)];
  row.found = true;
  row.value.assign(value.data(), value.size());
  row.version = ++last_version_;
  return row.version;
}

absl::StatusOr<DeleteResult> MemoryStore::Delete(absl::string_view ns, absl::string_view key,
                                                 std::optional<uint64_t> if_version,
                                                 const CallOptions& options) {
  if (absl::Status s = CheckDeadline(options); !s.ok()) return s;
  MutexLock lock(&mu_);
  auto it = rows_.find(RowKey(ns, key));
  const bool found = it != rows_.end() && it->second.found;
  const uint64_t current = found ? it->second.version : 0;
  if (if_version.has_value() && *if_version != current) {
    return VersionMismatchError(key, *if_version, current);
  }
  if (!found) {
    return DeleteResult{false, it == rows_.end() ? 0 : it->second.version};
  }
  it->second.found = false;
  it->second.value.clear();
  it->second.value.shrink_to_fit();
  it->second.version = ++last_version_;
  return DeleteResult{true, it->second.version};
}

}  // namespace cachecar::store
