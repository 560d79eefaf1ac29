// Storage: where the cache engines keep their entries. One mapping holds,
// in the published cache's format (docs/LOCAL_READS.md), a header, every
// namespace's table of shards, and each shard's index slots and entry arena.
// Each engine works inside its own NamespaceRegion.
//
// Without local reads the mapping is private anonymous memory: the same
// layout, seen by nobody else. With local_read_path it is a file in a shared
// directory that apps map read-only, and Storage runs the file's life:
//   - CreateFile locks <path>.lock (one cachecar per path), retires whatever
//     file is at <path> (its state becomes "retired", so no reader keeps
//     serving an older process's cache), removes temporary files a crashed
//     process left, builds the new file under a temporary name and renames
//     it over <path> with state "starting";
//   - SetServing turns it to "serving" once the replica answers requests;
//   - SetTrustedUntil publishes the instant up to which the replica vouches
//     for its cache (readers fall back after it);
//   - Retire (also on destruction) turns it to "retired" and removes it.
// The file is never truncated or resized while it exists.
//
// Thread-safety: the regions are used by their engines (under their shard
// locks). SetServing, SetTrustedUntil and Retire may be called from any
// thread; Retire and destruction must not race with each other.
#ifndef CACHECAR_CACHE_STORAGE_H_
#define CACHECAR_CACHE_STORAGE_H_

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "localread/layout.h"

namespace cachecar::cache {

// One namespace's engine, as Engine sizes it: max_bytes split over shards
// (a power of two).
struct NamespacePlan {
  std::string name;
  size_t max_bytes = 0;
  size_t shards = 1;
};

struct ShardRegion {
  localread::ShardHeader* header = nullptr;
  std::atomic<uint64_t>* slots = nullptr;
  uint32_t max_slots = 0;
  char* arena = nullptr;
  uint64_t arena_bytes = 0;
};

struct NamespaceRegion {
  localread::NamespaceHeader* header = nullptr;
  std::vector<ShardRegion> shards;
};

struct StorageFileOptions {
  std::string path;  // the file readers open; its directory must exist
  uint32_t max_key_bytes = 1024;
  absl::Duration publish_period = absl::Milliseconds(1);
  // Free bytes of the directory's volume; null: statvfs (tests give a small
  // volume here). The file is refused when it could outgrow them.
  uint64_t (*volume_free_bytes)(const std::string& dir) = nullptr;
};

class Storage {
 public:
  // Private memory (no local reads).
  static absl::StatusOr<std::unique_ptr<Storage>> CreatePrivate(std::vector<NamespacePlan> plans);
  // The published file; see the top of this file.
  static absl::StatusOr<std::unique_ptr<Storage>> CreateFile(std::vector<NamespacePlan> plans,
                                                             const StorageFileOptions& options);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  size_t namespace_count() const { return regions_.size(); }
  NamespaceRegion* region(size_t i) { return &regions_[i]; }
  const NamespacePlan& plan(size_t i) const { return plans_[i]; }

  bool published() const { return !path_.empty(); }
  const std::string& path() const { return path_; }
  uint64_t instance_id() const { return header()->instance_id; }
  uint64_t mapped_bytes() const { return bytes_; }
  localread::State state() const {
    return static_cast<localread::State>(header()->state.load(std::memory_order_acquire));
  }
  int64_t trusted_until_ns() const {
    return header()->trusted_until_ns.load(std::memory_order_acquire);
  }

  void SetTrustedUntil(absl::Time until);
  void SetServing();
  // Idempotent.
  void Retire();

  // The shard's byte budget and the index slots reserved for it.
  static size_t ShardCapacity(const NamespacePlan& plan) { return plan.max_bytes / plan.shards; }
  static uint32_t MaxSlots(size_t shard_capacity);

 private:
  Storage() = default;
  localread::FileHeader* header() const { return reinterpret_cast<localread::FileHeader*>(base_); }
  // Lays the plans out in [base_, base_ + bytes_) (which is zero) and fills
  // in the headers; state "starting".
  void Format(uint32_t max_key_bytes, absl::Duration publish_period);
  static absl::StatusOr<size_t> Plan(const std::vector<NamespacePlan>& plans);

  std::vector<NamespacePlan> plans_;
  std::vector<NamespaceRegion> regions_;
  char* base_ = nullptr;
  size_t bytes_ = 0;
  // Published file only.
  std::string path_;
  int lock_fd_ = -1;
  uint64_t file_dev_ = 0, file_ino_ = 0;
  std::atomic<bool> retired_{false};
};

// Sets the state of the published cache at `path` (any layout version) to
// "retired", so its readers stop serving from it. OK when there is no file.
absl::Status RetireFile(const std::string& path);

}  // namespace cachecar::cache

#endif  // CACHECAR_CACHE_STORAGE_H_
