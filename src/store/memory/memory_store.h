// MemoryStore: the embedded default store. Keeps every namespace's rows in
// one map in process memory, with versions from one counter. Nothing
// survives a restart; it lets cachecar run with no database at all.
//
// Deleted keys keep their delete version (a few bytes each) so a later read
// reports "absent at version v" and versions keep moving forward.
//
// Thread-safety: all methods are safe to call concurrently (one mutex).
#ifndef CACHECAR_STORE_MEMORY_MEMORY_STORE_H_
#define CACHECAR_STORE_MEMORY_MEMORY_STORE_H_

#include <string>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "common/mutex.h"
#include "store/store.h"

namespace cachecar::store {

class MemoryStore final : public Store {
 public:
  MemoryStore() = default;

  absl::StatusOr<Record> Load(absl::string_view ns, absl::string_view key,
                              const CallOptions& options) override;
  // A sort of the namespace's keys per page: for tests and small tables.
  absl::StatusOr<std::vector<std::string>> ScanKeys(absl::string_view ns, absl::string_view after,
                                                    size_t limit,
                                                    const CallOptions& options) override;
  absl::StatusOr<std::vector<Record>> LoadBatch(absl::string_view ns,
                                                const std::vector<std::string>& keys,
                                                const CallOptions& options) override;
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               Precondition precondition, const CallOptions& options) override;
  absl::StatusOr<DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                      std::optional<uint64_t> if_version,
                                      const CallOptions& options) override;
  absl::StatusOr<std::vector<BatchWriteResult>> WriteBatch(absl::string_view ns,
                                                           const std::vector<BatchWrite>& writes,
                                                           const CallOptions& options) override;
  // `written` is when this process wrote the version (absl::Now()).
  absl::StatusOr<VersionSnapshot> ReadVersions(absl::string_view ns,
                                               const std::vector<std::string>& keys,
                                               const CallOptions& options) override;
  absl::string_view Name() const override { return "memory"; }

 private:
  absl::Status CheckLocked(absl::string_view ns, absl::string_view key,
                           const Precondition& precondition) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  uint64_t PutLocked(absl::string_view ns, absl::string_view key, absl::string_view value)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  DeleteResult DeleteLocked(absl::string_view ns, absl::string_view key)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  using RowKey = std::pair<std::string, std::string>;  // (namespace, key)

  Record LoadLocked(absl::string_view ns, absl::string_view key) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  mutable Mutex mu_;
  uint64_t last_version_ ABSL_GUARDED_BY(mu_) = 0;
  absl::flat_hash_map<RowKey, Record> rows_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<RowKey, absl::Time> written_ ABSL_GUARDED_BY(mu_);  // per row
};

}  // namespace cachecar::store

#endif  // CACHECAR_STORE_MEMORY_MEMORY_STORE_H_
