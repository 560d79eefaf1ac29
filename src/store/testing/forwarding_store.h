// ForwardingStore (tests only): a Store that passes every call on to another
// Store, or to a MemoryStore of its own. Tests derive from it and override
// just the calls they need to hook (count, hold, fail, interleave).
//
// Thread-safety: as the target store.
#ifndef CACHECAR_STORE_TESTING_FORWARDING_STORE_H_
#define CACHECAR_STORE_TESTING_FORWARDING_STORE_H_

#include <string>
#include <vector>

#include "store/memory/memory_store.h"
#include "store/store.h"

namespace cachecar::store::testing {

class ForwardingStore : public Store {
 public:
  // Forwards to `target`, or to memory() when `target` is null.
  explicit ForwardingStore(Store* target = nullptr)
      : target_(target != nullptr ? target : &memory_) {}

  absl::StatusOr<Record> Load(absl::string_view ns, absl::string_view key,
                              const CallOptions& o) override {
    return target_->Load(ns, key, o);
  }
  absl::StatusOr<std::vector<Record>> LoadBatch(absl::string_view ns,
                                                const std::vector<std::string>& keys,
                                                const CallOptions& o) override {
    return target_->LoadBatch(ns, keys, o);
  }
  absl::StatusOr<std::vector<std::string>> ScanKeys(absl::string_view ns, absl::string_view after,
                                                    size_t limit, const CallOptions& o) override {
    return target_->ScanKeys(ns, after, limit, o);
  }
  absl::StatusOr<uint64_t> Put(absl::string_view ns, absl::string_view key, absl::string_view value,
                               Precondition p, const CallOptions& o) override {
    return target_->Put(ns, key, value, p, o);
  }
  absl::StatusOr<DeleteResult> Delete(absl::string_view ns, absl::string_view key,
                                      std::optional<uint64_t> if_version,
                                      const CallOptions& o) override {
    return target_->Delete(ns, key, if_version, o);
  }
  absl::StatusOr<std::vector<BatchWriteResult>> WriteBatch(absl::string_view ns,
                                                           const std::vector<BatchWrite>& writes,
                                                           const CallOptions& o) override {
    return target_->WriteBatch(ns, writes, o);
  }
  absl::StatusOr<VersionSnapshot> ReadVersions(absl::string_view ns,
                                               const std::vector<std::string>& keys,
                                               const CallOptions& o) override {
    return target_->ReadVersions(ns, keys, o);
  }
  absl::string_view Name() const override { return "forwarding"; }

  // The store's own rows (when it forwards to itself), for tests to write
  // "straight into the store", past the cache.
  MemoryStore& memory() { return memory_; }

 private:
  MemoryStore memory_;
  Store* const target_;
};

}  // namespace cachecar::store::testing

#endif  // CACHECAR_STORE_TESTING_FORWARDING_STORE_H_
