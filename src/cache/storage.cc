// See storage.h.
#include "cache/storage.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cache/arena.h"
#include "cache/entry.h"
#include "cache/slot_index.h"
#include "common/errno_text.h"

namespace cachecar::cache {
namespace {

namespace lr = localread;

constexpr size_t kPage = 4096;

size_t AlignUp(size_t n, size_t a) { return (n + a - 1) / a * a; }

// A shard's arena: its byte budget plus 1/8. The budget (charges, which
// exceed what blocks take) decides eviction; the eighth absorbs the holes
// between blocks of mixed sizes, which would otherwise force evictions
// before the budget is reached (with values of random size up to 6% of a
// shard, the cache then still fills to 93% of its budget, else 84%).
uint64_t ArenaBytes(size_t capacity) {
  return std::max<uint64_t>(32, (capacity + capacity / 8) & ~size_t{7});
}

std::string Errno(const std::string& what) { return absl::StrCat(what, ": ", ErrnoText(errno)); }

uint64_t RandomId() {
  std::random_device rd;
  uint64_t id = 0;
  while (id == 0) id = (uint64_t{rd()} << 32) ^ rd();
  return id;
}

std::string DirOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  return slash == 0 ? "/" : path.substr(0, slash);
}

std::string BaseOf(const std::string& path) {
  const size_t slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// Removes <base>.tmp.* files in `dir` (left by a cachecar that died while
// building its file; they hold memory). Called with the path's lock held.
void RemoveTemporaries(const std::string& dir, const std::string& base) {
  DIR* d = opendir(dir.c_str());
  if (d == nullptr) return;
  const std::string prefix = base + ".tmp.";
  while (dirent* e = readdir(d)) {
    if (absl::StartsWith(e->d_name, prefix)) unlinkat(dirfd(d), e->d_name, 0);
  }
  closedir(d);
}

// The publication's lock (`path`.lock, held while this process publishes
// `path`): its descriptor, or why not.
absl::StatusOr<int> LockPublication(const std::string& path) {
  const std::string lock_path = path + ".lock";
  const int fd = open(lock_path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::FailedPreconditionError(Errno(absl::StrCat("local_read_path: open ", lock_path)));
  }
  if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
    close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat("local_read_path: another cachecar publishes ", path, " (", lock_path,
                     " is locked); give each cachecar its own path"));
  }
  return fd;
}

// A tmpfs volume (a memory emptyDir has its sizeLimit as size) too small
// for the file would make cachecar's writes fault (SIGBUS) once the cache
// fills it. The file we replace is freed once its readers move on.
// A tmpfs volume (a memory emptyDir has its sizeLimit as size) too small
// for the file would make cachecar's writes fault (SIGBUS) once the cache
// fills it. The file we replace is freed once its readers move on.
// `volume_free_bytes` (tests) stands in for statvfs when set.
absl::Status CheckRoom(const std::string& dir, const std::string& path, size_t bytes,
                       uint64_t (*volume_free_bytes)(const std::string&)) {
  uint64_t room = 0;
  if (volume_free_bytes != nullptr) {
    room = volume_free_bytes(dir);
  } else {
    struct statvfs fs;
    if (statvfs(dir.c_str(), &fs) != 0) return absl::OkStatus();
    room = uint64_t{fs.f_bavail} * fs.f_frsize;
  }
  struct stat old;
  if (stat(path.c_str(), &old) == 0) room += uint64_t(old.st_blocks) * 512;
  if (room < bytes) {
    return absl::FailedPreconditionError(
        absl::StrCat("local_read_path: ", dir, " has room for ", room,
                     " bytes, and the published cache can "
                     "grow to ",
                     bytes,
                     " (max_bytes and its index): give the volume more (in a pod, the "
                     "emptyDir's sizeLimit: at least 1.5 x max_bytes) or lower max_bytes"));
  }
  return absl::OkStatus();
}

}  // namespace

uint32_t Storage::MaxSlots(size_t shard_capacity) {
  // Every entry is charged at least kEntryOverhead, so this many entries fit
  // in the budget; the table must hold them at 3/4 load, plus an empty slot.
  const uint64_t entries = shard_capacity / internal::kEntryOverhead;
  const uint64_t need = std::max<uint64_t>(internal::SlotIndex::kMinSlots, entries * 4 / 3 + 2);
  uint64_t slots = 1;
  while (slots < need) slots <<= 1;
  return static_cast<uint32_t>(slots);
}

absl::StatusOr<size_t> Storage::Plan(const std::vector<NamespacePlan>& plans) {
  if (plans.empty() || plans.size() > 1024) {
    return absl::InvalidArgumentError("storage needs 1 to 1024 namespaces");
  }
  size_t offset = lr::kHeaderBytes + lr::kNamespaceBytes * plans.size();
  for (const NamespacePlan& p : plans) {
    if (p.shards == 0 || p.shards > 1024 || (p.shards & (p.shards - 1)) != 0) {
      return absl::InvalidArgumentError("a namespace needs a power of two of shards, 1 to 1024");
    }
    if (p.name.size() > lr::kMaxNamespaceName) {
      return absl::InvalidArgumentError("namespace names are at most 64 bytes");
    }
    if (ArenaBytes(ShardCapacity(p)) > internal::Arena::kMaxBytes) {
      return absl::InvalidArgumentError(
          absl::StrCat("namespace '", p.name, "': ", ShardCapacity(p),
                       " bytes per shard is more than one shard can hold (14GiB): raise shards"));
    }
    offset = AlignUp(offset, 64) + lr::kShardBytes * p.shards;
  }
  offset = AlignUp(offset, kPage);
  for (const NamespacePlan& p : plans) {
    const size_t per_shard = AlignUp(sizeof(uint64_t) * MaxSlots(ShardCapacity(p)), kPage) +
                             AlignUp(ArenaBytes(ShardCapacity(p)), kPage);
    offset += per_shard * p.shards;
  }
  return offset;
}

void Storage::Format(uint32_t max_key_bytes, absl::Duration publish_period) {
  lr::FileHeader* h = header();
  h->magic = lr::kMagic;
  h->layout_version = lr::kLayoutVersion;
  h->header_bytes = lr::kHeaderBytes;
  h->file_bytes = bytes_;
  h->instance_id = RandomId();
  h->state.store(lr::kStarting, std::memory_order_relaxed);
  h->trusted_until_ns.store(lr::kTrustedNever, std::memory_order_relaxed);
  h->namespaces_offset = lr::kHeaderBytes;
  h->namespace_count = static_cast<uint32_t>(plans_.size());
  h->max_key_bytes = max_key_bytes;
  h->published_ns.store(0, std::memory_order_relaxed);
  h->writer_pid = static_cast<uint32_t>(getpid());
  h->publish_period_us = static_cast<uint32_t>(absl::ToInt64Microseconds(publish_period));

  size_t offset = lr::kHeaderBytes + lr::kNamespaceBytes * plans_.size();
  regions_.resize(plans_.size());
  for (size_t i = 0; i < plans_.size(); ++i) {
    const NamespacePlan& p = plans_[i];
    auto* ns =
        reinterpret_cast<lr::NamespaceHeader*>(base_ + lr::kHeaderBytes + lr::kNamespaceBytes * i);
    std::memcpy(ns->name, p.name.data(), p.name.size());
    ns->name_len = static_cast<uint32_t>(p.name.size());
    ns->shard_count = static_cast<uint32_t>(p.shards);
    ns->epoch.store(0, std::memory_order_relaxed);
    ns->floor.store(0, std::memory_order_relaxed);
    offset = AlignUp(offset, 64);
    ns->shards_offset = offset;
    regions_[i].header = ns;
    regions_[i].shards.resize(p.shards);
    for (size_t s = 0; s < p.shards; ++s) {
      regions_[i].shards[s].header = reinterpret_cast<lr::ShardHeader*>(base_ + offset);
      offset += lr::kShardBytes;
    }
  }
  offset = AlignUp(offset, kPage);
  for (size_t i = 0; i < plans_.size(); ++i) {
    const size_t capacity = ShardCapacity(plans_[i]);
    for (ShardRegion& shard : regions_[i].shards) {
      lr::ShardHeader* sh = shard.header;
      sh->seq.store(0, std::memory_order_relaxed);
      sh->index_offset = offset;
      sh->index_max_slots = MaxSlots(capacity);
      sh->index_mask.store(0, std::memory_order_relaxed);
      offset = AlignUp(offset + sizeof(uint64_t) * sh->index_max_slots, kPage);
      sh->arena_offset = offset;
      sh->arena_bytes = ArenaBytes(capacity);
      offset = AlignUp(offset + sh->arena_bytes, kPage);
      shard.slots = reinterpret_cast<std::atomic<uint64_t>*>(base_ + sh->index_offset);
      shard.max_slots = sh->index_max_slots;
      shard.arena = base_ + sh->arena_offset;
      shard.arena_bytes = sh->arena_bytes;
    }
  }
}

absl::StatusOr<std::unique_ptr<Storage>> Storage::CreatePrivate(std::vector<NamespacePlan> plans) {
  absl::StatusOr<size_t> bytes = Plan(plans);
  if (!bytes.ok()) return bytes.status();
  void* p = mmap(nullptr, *bytes, PROT_READ | PROT_WRITE,
                 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  if (p == MAP_FAILED) {
    return absl::ResourceExhaustedError(Errno(absl::StrCat("mmap of ", *bytes, " bytes")));
  }
  std::unique_ptr<Storage> s(new Storage());
  s->plans_ = std::move(plans);
  s->base_ = static_cast<char*>(p);
  s->bytes_ = *bytes;
  s->Format(0, absl::ZeroDuration());
  return s;
}

absl::Status RetireFile(const std::string& path) {
  const int fd = open(path.c_str(), O_RDWR | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return absl::OkStatus();
    return absl::FailedPreconditionError(Errno(
        absl::StrCat("local_read_path: cannot open the existing ", path,
                     " to retire it (its readers would keep serving an old cache); remove it")));
  }
  struct stat st;
  absl::Status result = absl::OkStatus();
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    result = absl::FailedPreconditionError(
        absl::StrCat("local_read_path: ", path, " exists and is not a regular file"));
  } else if (st.st_size >= static_cast<off_t>(sizeof(uint64_t) * 5)) {
    void* p = mmap(nullptr, kPage, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (p == MAP_FAILED) {
      result = absl::FailedPreconditionError(Errno(absl::StrCat("mmap of ", path)));
    } else {
      auto* words = static_cast<uint64_t*>(p);
      if (words[0] == lr::kMagic) {
        // Offset 32 is `state` in every layout version.
        __atomic_store_n(&words[4], uint64_t{lr::kRetired}, __ATOMIC_SEQ_CST);
      }
      munmap(p, kPage);
    }
  }
  close(fd);
  return result;
}

absl::StatusOr<std::unique_ptr<Storage>> Storage::CreateFile(std::vector<NamespacePlan> plans,
                                                             const StorageFileOptions& options) {
  const std::string& path = options.path;
  if (path.empty() || path[0] != '/') {
    return absl::InvalidArgumentError("local_read_path must be an absolute file path");
  }
  const std::string dir = DirOf(path);
  struct stat st;
  if (stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode)) {
    return absl::FailedPreconditionError(
        absl::StrCat("local_read_path: directory ", dir,
                     " does not exist (in a pod, mount an emptyDir with medium: Memory there)"));
  }
  absl::StatusOr<size_t> bytes = Plan(plans);
  if (!bytes.ok()) return bytes.status();

  std::unique_ptr<Storage> s(new Storage());
  s->plans_ = std::move(plans);
  absl::StatusOr<int> lock = LockPublication(path);
  if (!lock.ok()) return lock.status();
  s->lock_fd_ = *lock;
  if (absl::Status retired = RetireFile(path); !retired.ok()) return retired;
  RemoveTemporaries(dir, BaseOf(path));
  if (absl::Status room = CheckRoom(dir, path, *bytes, options.volume_free_bytes); !room.ok()) {
    return room;
  }

  const std::string tmp = absl::StrCat(path, ".tmp.", getpid());
  const int fd = open(tmp.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0644);
  if (fd < 0)
    return absl::FailedPreconditionError(Errno(absl::StrCat("local_read_path: create ", tmp)));
  auto fail = [&](const std::string& what) {
    absl::Status status = absl::FailedPreconditionError(Errno(what));
    close(fd);
    unlink(tmp.c_str());
    return status;
  };
  if (fchmod(fd, 0644) != 0) return fail(absl::StrCat("chmod ", tmp));
  if (ftruncate(fd, static_cast<off_t>(*bytes)) != 0) {
    return fail(absl::StrCat("local_read_path: size ", tmp, " to ", *bytes, " bytes"));
  }
  void* p = mmap(nullptr, *bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_NORESERVE, fd, 0);
  if (p == MAP_FAILED) return fail(absl::StrCat("local_read_path: mmap ", tmp));
  s->base_ = static_cast<char*>(p);
  s->bytes_ = *bytes;
  s->Format(options.max_key_bytes, options.publish_period);
  if (fstat(fd, &st) != 0) return fail(absl::StrCat("stat ", tmp));
  s->file_dev_ = st.st_dev;
  s->file_ino_ = st.st_ino;
  close(fd);  // the mapping keeps the file
  if (rename(tmp.c_str(), path.c_str()) != 0) {
    const absl::Status status =
        absl::FailedPreconditionError(Errno(absl::StrCat("local_read_path: rename to ", path)));
    unlink(tmp.c_str());
    return status;
  }
  s->path_ = path;
  return s;
}

void Storage::SetTrustedUntil(absl::Time until) {
  int64_t ns = lr::kTrustedNever;
  if (until == absl::InfiniteFuture()) {
    ns = lr::kTrustedAlways;
  } else if (until != absl::InfinitePast()) {
    ns = absl::ToUnixNanos(until);
  }
  lr::FileHeader* h = header();
  if (h->trusted_until_ns.load(std::memory_order_relaxed) != ns) {
    h->trusted_until_ns.store(ns, std::memory_order_release);
  }
  h->published_ns.store(absl::ToUnixNanos(absl::Now()), std::memory_order_relaxed);
}

void Storage::SetServing() {
  if (!retired_.load()) header()->state.store(lr::kServing, std::memory_order_release);
}

void Storage::Retire() {
  if (retired_.exchange(true) || !published()) return;
  header()->state.store(lr::kRetired, std::memory_order_seq_cst);
  // Remove the file only if it is still ours.
  struct stat st;
  if (stat(path_.c_str(), &st) == 0 && st.st_dev == file_dev_ && st.st_ino == file_ino_) {
    unlink(path_.c_str());
  }
}

Storage::~Storage() {
  Retire();
  if (base_ != nullptr) munmap(base_, bytes_);
  if (lock_fd_ >= 0) close(lock_fd_);
}

}  // namespace cachecar::cache
