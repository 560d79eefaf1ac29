// The engine's storage: the arena allocator, the slot index, and the
// published file's life (lock, retire, rename, remove).
#include "cache/storage.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <map>
#include <random>
#include <set>
#include <string>
#include <vector>

#include "cache/arena.h"
#include "cache/engine.h"
#include "cache/entry.h"
#include "cache/slot_index.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace cachecar::cache {
namespace {

using internal::Arena;
using internal::SlotIndex;
using ::testing::HasSubstr;

// 8-aligned private memory for an arena or a table.
struct Region {
  explicit Region(size_t bytes) : bytes(bytes) {
    p = static_cast<char*>(
        mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
  }
  ~Region() { munmap(p, bytes); }
  char* p;
  size_t bytes;
};

std::string CheckArena(const Arena& a) {
  std::string why;
  return a.Check(&why) ? "" : why;
}

TEST(ArenaTest, AllocatesDistinctAlignedBlocksAndMergesThemWhenFreed) {
  Region r(4096);
  Arena arena(r.p, r.bytes);
  const uint32_t a = arena.Allocate(100);
  const uint32_t b = arena.Allocate(1);
  const uint32_t c = arena.Allocate(200);
  ASSERT_NE(a, 0u);
  ASSERT_NE(b, 0u);
  ASSERT_NE(c, 0u);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(arena.At(a)) % 8, 0u);
  // 100 B -> 13 units of payload + 1 header.
  EXPECT_EQ(arena.used_bytes(), (14 + 2 + 26) * 8u);
  EXPECT_GE(arena.At(b), arena.At(a) + 100);
  EXPECT_GE(arena.At(c), arena.At(b) + 1);
  EXPECT_EQ(CheckArena(arena), "");
  arena.Free(a);
  arena.Free(c);
  EXPECT_EQ(CheckArena(arena), "");
  arena.Free(b);  // merges with both neighbours
  EXPECT_EQ(CheckArena(arena), "");
  EXPECT_EQ(arena.used_bytes(), 0u);
  // One free block again: the whole region minus sentinels and a header.
  EXPECT_NE(arena.Allocate(4096 - 3 * 8), 0u);
  EXPECT_EQ(arena.Allocate(1), 0u);
}

TEST(ArenaTest, SaysNoWhenFullAndReuses) {
  Region r(1024);
  Arena arena(r.p, r.bytes);
  std::vector<uint32_t> refs;
  while (uint32_t ref = arena.Allocate(56)) refs.push_back(ref);
  EXPECT_EQ(refs.size(), (1024 / 8 - 2) / 8);  // 8 units per block
  EXPECT_EQ(arena.Allocate(56), 0u);
  arena.Free(refs[3]);
  EXPECT_EQ(arena.Allocate(56), refs[3]);
  arena.Reset();
  EXPECT_EQ(arena.used_bytes(), 0u);
  EXPECT_EQ(CheckArena(arena), "");
}

TEST(ArenaTest, RandomAllocationsNeverOverlapAndKeepTheInvariants) {
  Region r(1 << 20);
  Arena arena(r.p, r.bytes);
  std::mt19937_64 rng(7);
  std::map<uint32_t, size_t> live;  // ref -> payload bytes
  for (int i = 0; i < 20000; ++i) {
    if (live.empty() || rng() % 3 != 0) {
      // Mostly entry-sized blocks, sometimes large ones.
      const size_t bytes = rng() % 10 == 0 ? rng() % 40000 : 48 + rng() % 300;
      const uint32_t ref = arena.Allocate(bytes);
      if (ref == 0) continue;
      std::memset(arena.At(ref), static_cast<int>(ref & 0xff), bytes);
      ASSERT_TRUE(live.emplace(ref, bytes).second);
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      // Nobody wrote over it.
      for (size_t k = 0; k < it->second; ++k) {
        ASSERT_EQ(static_cast<uint8_t>(arena.At(it->first)[k]), it->first & 0xff);
      }
      arena.Free(it->first);
      live.erase(it);
    }
    if (i % 500 == 0) {
      ASSERT_EQ(CheckArena(arena), "") << "after operation " << i;
    }
  }
  // Blocks do not overlap.
  char* end = nullptr;
  for (const auto& [ref, bytes] : live) {
    EXPECT_GE(arena.At(ref), end);
    end = arena.At(ref) + bytes;
  }
  for (const auto& [ref, bytes] : live) arena.Free(ref);
  EXPECT_EQ(CheckArena(arena), "");
  EXPECT_EQ(arena.used_bytes(), 0u);
}

TEST(ArenaTest, CheckFindsADamagedBlock) {
  Region r(4096);
  Arena arena(r.p, r.bytes);
  const uint32_t a = arena.Allocate(64);
  ASSERT_EQ(CheckArena(arena), "");
  // Overwrite the block's header (the word before its payload).
  std::memset(arena.At(a) - 8, 0xff, 4);
  EXPECT_NE(CheckArena(arena), "");
}

struct Table {
  explicit Table(uint32_t max_slots)
      : region(sizeof(uint64_t) * max_slots),
        index(reinterpret_cast<std::atomic<uint64_t>*>(region.p), max_slots, &mask) {}
  Region region;
  std::atomic<uint32_t> mask{0};
  SlotIndex index;
};

// A hash whose tag (high 32 bits) is `tag`.
uint64_t WithTag(uint32_t tag, uint32_t low = 0) { return (uint64_t{tag} << 32) | low; }

TEST(SlotIndexTest, FindsWhatWasInsertedAcrossCollisionsAndErases) {
  Table t(1024);
  // Same home slot (tags equal mod 64), different tags.
  t.index.Insert(WithTag(5), 10);
  t.index.Insert(WithTag(5 + 64), 11);
  t.index.Insert(WithTag(5 + 128), 12);
  t.index.Insert(WithTag(6), 13);  // its home is taken by the run
  auto find = [&](uint64_t hash, uint32_t ref) {
    return t.index.Find(hash, [ref](uint32_t r) { return r == ref; });
  };
  EXPECT_EQ(t.index.RefAt(find(WithTag(5 + 128), 12)), 12u);
  EXPECT_EQ(t.index.RefAt(find(WithTag(6), 13)), 13u);
  EXPECT_EQ(find(WithTag(7), 99), SlotIndex::kNone);
  t.index.EraseAt(find(WithTag(5), 10));
  // Backward shift keeps everything reachable.
  EXPECT_NE(find(WithTag(5 + 64), 11), SlotIndex::kNone);
  EXPECT_NE(find(WithTag(5 + 128), 12), SlotIndex::kNone);
  EXPECT_NE(find(WithTag(6), 13), SlotIndex::kNone);
  EXPECT_EQ(t.index.size(), 3u);
}

TEST(SlotIndexTest, RandomOperationsMatchAMapAndTheTableResizes) {
  Table t(1 << 16);
  std::mt19937_64 rng(11);
  std::map<uint32_t, uint64_t> model;  // ref -> hash
  uint32_t next_ref = 1;
  uint32_t largest = 0;
  auto find = [&](uint64_t hash, uint32_t ref) {
    return t.index.Find(hash, [ref](uint32_t r) { return r == ref; });
  };
  for (int i = 0; i < 200000; ++i) {
    const bool grow_phase = (i / 50000) % 2 == 0;
    if (model.empty() || rng() % 100 < (grow_phase ? 70 : 30)) {
      if (model.size() >= 40000) continue;
      const uint64_t hash = rng();
      t.index.Insert(hash, next_ref);
      model.emplace(next_ref++, hash);
    } else {
      auto it = model.lower_bound(static_cast<uint32_t>(rng() % next_ref));
      if (it == model.end()) it = model.begin();
      const uint32_t pos = find(it->second, it->first);
      ASSERT_NE(pos, SlotIndex::kNone);
      t.index.EraseAt(pos);
      model.erase(it);
    }
    largest = std::max(largest, t.index.slots());
    ASSERT_EQ(t.index.size(), model.size());
    ASSERT_LE(uint64_t{t.index.size()} * 4, uint64_t{t.index.slots()} * 3);
    ASSERT_EQ(t.mask.load(), t.index.slots() - 1);
  }
  EXPECT_GT(largest, 1024u);
  for (const auto& [ref, hash] : model) ASSERT_NE(find(hash, ref), SlotIndex::kNone);
  // Erasing half, then all, keeps the rest reachable and shrinks the table.
  for (const auto& [ref, hash] : model) {
    if (ref % 2 == 0) t.index.EraseAt(find(hash, ref));
  }
  for (const auto& [ref, hash] : model) {
    EXPECT_EQ(find(hash, ref) == SlotIndex::kNone, ref % 2 == 0) << ref;
  }
  for (const auto& [ref, hash] : model) {
    if (ref % 2 != 0) t.index.EraseAt(find(hash, ref));
  }
  EXPECT_EQ(t.index.size(), 0u);
  EXPECT_LE(t.index.slots(), 1024u);
}

std::string TempDir() {
  char tmpl[] = "/tmp/cachecar-storage-test.XXXXXX";
  return mkdtemp(tmpl);
}

std::vector<NamespacePlan> TwoNamespaces() {
  return {NamespacePlan{"default", 1 << 20, 4}, NamespacePlan{"sessions", 1 << 18, 1}};
}

uint64_t StateOf(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return 0;
  uint64_t state = 0;
  pread(fd, &state, sizeof(state), 32);
  close(fd);
  return state;
}

TEST(StorageTest, PublishesAFileThatStartsServesAndIsRemovedWhenRetired) {
  const std::string dir = TempDir();
  const std::string path = dir + "/cache";
  absl::StatusOr<std::unique_ptr<Storage>> storage =
      Storage::CreateFile(TwoNamespaces(), {path, 512, absl::Milliseconds(1)});
  ASSERT_TRUE(storage.ok()) << storage.status();
  struct stat st;
  ASSERT_EQ(stat(path.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0644u);
  EXPECT_EQ(static_cast<uint64_t>(st.st_size), (*storage)->mapped_bytes());
  EXPECT_EQ(StateOf(path), localread::kStarting);
  EXPECT_EQ((*storage)->region(0)->shards.size(), 4u);
  EXPECT_EQ(std::string((*storage)->region(1)->header->name), "sessions");
  (*storage)->SetServing();
  EXPECT_EQ(StateOf(path), localread::kServing);
  (*storage)->SetTrustedUntil(absl::InfinitePast());
  EXPECT_EQ((*storage)->trusted_until_ns(), localread::kTrustedNever);
  (*storage)->SetTrustedUntil(absl::FromUnixNanos(123));
  EXPECT_EQ((*storage)->trusted_until_ns(), 123);
  (*storage)->Retire();
  EXPECT_NE(stat(path.c_str(), &st), 0) << "a retired file is removed";
  storage->reset();
  std::system(("rm -rf " + dir).c_str());
}

// A reader's read-only view of a file's header.
const localread::FileHeader* MapHeader(const std::string& path) {
  const int fd = open(path.c_str(), O_RDONLY);
  if (fd < 0) return nullptr;
  void* p = mmap(nullptr, 4096, PROT_READ, MAP_SHARED, fd, 0);
  close(fd);
  return p == MAP_FAILED ? nullptr : static_cast<const localread::FileHeader*>(p);
}

TEST(StorageTest, ANewWriterRetiresACrashedWritersFileAndTheLockKeepsASecondOneOut) {
  const std::string dir = TempDir();
  const std::string path = dir + "/cache";
  // A writer that dies without retiring its file (a crash, an OOM kill):
  // its file stays at the path, serving, and its temporary leftovers too.
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    auto crashed = Storage::CreateFile(TwoNamespaces(), {path, 512, absl::Milliseconds(1)});
    if (!crashed.ok()) _exit(1);
    (*crashed)->SetServing();
    close(open((path + ".tmp.99999").c_str(), O_CREAT | O_WRONLY, 0644));
    _exit(0);  // no destructors: the file is not retired
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
  const localread::FileHeader* old_view = MapHeader(path);
  ASSERT_NE(old_view, nullptr);
  EXPECT_EQ(old_view->state.load(), localread::kServing);
  const uint64_t old_id = old_view->instance_id;

  auto next = Storage::CreateFile(TwoNamespaces(), {path, 512, absl::Milliseconds(1)});
  ASSERT_TRUE(next.ok()) << next.status();
  EXPECT_EQ(old_view->state.load(), localread::kRetired)
      << "readers of the crashed writer's file must stop serving from it";
  const localread::FileHeader* new_view = MapHeader(path);
  ASSERT_NE(new_view, nullptr);
  EXPECT_NE(new_view->instance_id, old_id);
  EXPECT_EQ(new_view->state.load(), localread::kStarting);
  struct stat st;
  EXPECT_NE(stat((path + ".tmp.99999").c_str(), &st), 0) << "leftovers are removed";

  // While it lives, no second writer may take the path.
  auto second = Storage::CreateFile(TwoNamespaces(), {path, 512, absl::Milliseconds(1)});
  ASSERT_FALSE(second.ok());
  EXPECT_THAT(std::string(second.status().message()), HasSubstr("another cachecar publishes"));
  EXPECT_EQ(new_view->state.load(), localread::kStarting) << "the refused writer changed nothing";
  munmap(const_cast<localread::FileHeader*>(old_view), 4096);
  munmap(const_cast<localread::FileHeader*>(new_view), 4096);
  next->reset();
  std::system(("rm -rf " + dir).c_str());
}

TEST(StorageTest, RetireFileMarksAnyCachecarFileAndLeavesOthersAlone) {
  const std::string dir = TempDir();
  const std::string path = dir + "/cache";
  EXPECT_TRUE(RetireFile(path).ok()) << "no file: nothing to do";
  // Another layout version: only magic and state's offset are shared.
  std::vector<uint64_t> words(512, 0);
  words[0] = localread::kMagic;
  words[1] = 7;  // layout version 7
  words[4] = localread::kServing;
  int fd = open(path.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_EQ(write(fd, words.data(), 4096), 4096);
  close(fd);
  ASSERT_TRUE(RetireFile(path).ok());
  EXPECT_EQ(StateOf(path), localread::kRetired);
  // Not ours: untouched.
  const std::string other = dir + "/other";
  words[0] = 42;
  fd = open(other.c_str(), O_CREAT | O_RDWR, 0644);
  ASSERT_EQ(write(fd, words.data(), 4096), 4096);
  close(fd);
  ASSERT_TRUE(RetireFile(other).ok());
  EXPECT_EQ(StateOf(other), localread::kServing);
  std::system(("rm -rf " + dir).c_str());
}

TEST(StorageTest, RefusesAMissingDirectoryOrARelativePath) {
  auto missing = Storage::CreateFile(TwoNamespaces(), {"/nonexistent-dir/cache", 512});
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(missing.status().message()), HasSubstr("emptyDir"));
  auto relative = Storage::CreateFile(TwoNamespaces(), {"cache", 512});
  ASSERT_FALSE(relative.ok());
  EXPECT_THAT(std::string(relative.status().message()), HasSubstr("absolute"));
}

// The volume-room check: a file that could outgrow its volume (a memory
// emptyDir's sizeLimit) is refused up front, saying what to change, instead
// of cachecar faulting (SIGBUS) once the cache fills the volume.
uint64_t OneMiB(const std::string&) { return uint64_t{1} << 20; }
uint64_t OneTiB(const std::string&) { return uint64_t{1} << 40; }

TEST(StorageTest, RefusesAVolumeTooSmallForTheFile) {
  const std::string dir = TempDir();
  const std::string path = dir + "/cache";
  StorageFileOptions options{path, 512, absl::Milliseconds(1)};
  options.volume_free_bytes = OneMiB;  // TwoNamespaces() needs ~1.5 MiB
  auto refused = Storage::CreateFile(TwoNamespaces(), options);
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  const std::string message(refused.status().message());
  EXPECT_THAT(message, HasSubstr("has room for 1048576 bytes"));
  EXPECT_THAT(message, HasSubstr("sizeLimit"));
  EXPECT_THAT(message, HasSubstr("lower max_bytes"));
  struct stat st;
  EXPECT_NE(stat(path.c_str(), &st), 0) << "nothing is published on a refusal";
  // The same plan on a volume with room is fine, and a small enough plan
  // fits the small volume.
  options.volume_free_bytes = OneTiB;
  auto roomy = Storage::CreateFile(TwoNamespaces(), options);
  ASSERT_TRUE(roomy.ok()) << roomy.status();
  roomy->reset();
  options.volume_free_bytes = OneMiB;
  auto small = Storage::CreateFile({NamespacePlan{"default", 256 << 10, 1}}, options);
  ASSERT_TRUE(small.ok()) << small.status();
  EXPECT_LE((*small)->mapped_bytes(), uint64_t{1} << 20);
  small->reset();
  std::system(("rm -rf " + dir).c_str());
}

// The same check against a real 1 MiB tmpfs (statvfs, no injected room), in
// a child with a private mount namespace; skipped where mounting is not
// permitted (not root, or no CAP_SYS_ADMIN).
TEST(StorageTest, RefusesARealTmpfsTooSmallForTheFile) {
  const std::string dir = TempDir();
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    if (unshare(CLONE_NEWNS) != 0 ||
        mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0 ||
        mount("tmpfs", dir.c_str(), "tmpfs", 0, "size=1m") != 0) {
      _exit(77);
    }
    const std::string path = dir + "/cache";
    auto refused = Storage::CreateFile(TwoNamespaces(), {path, 512, absl::Milliseconds(1)});
    if (refused.ok()) _exit(1);
    if (std::string(refused.status().message()).find("has room for") == std::string::npos) _exit(2);
    auto small = Storage::CreateFile({NamespacePlan{"default", 256 << 10, 1}},
                                     {path, 512, absl::Milliseconds(1)});
    _exit(small.ok() ? 0 : 3);
  }
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  std::system(("rm -rf " + dir).c_str());
  ASSERT_TRUE(WIFEXITED(status));
  if (WEXITSTATUS(status) == 77) GTEST_SKIP() << "cannot mount a tmpfs here";
  EXPECT_EQ(WEXITSTATUS(status), 0)
      << "1: a too-small volume was accepted; 2: the refusal did not say why; 3: a file that "
         "fits was refused";
}

TEST(StorageTest, IndexReservationCoversTheMostEntriesTheBudgetAllows) {
  for (size_t capacity : {size_t{0}, size_t{100}, size_t{1} << 20, size_t{16} << 20}) {
    const uint64_t most = capacity / internal::kEntryOverhead;
    EXPECT_GE(uint64_t{Storage::MaxSlots(capacity)} * 3, most * 4) << capacity;
  }
}

TEST(StorageTest, AnEngineFullOfTinyEntriesFitsItsReservedIndex) {
  auto storage = Storage::CreatePrivate({NamespacePlan{"", 1 << 20, 1}});
  ASSERT_TRUE(storage.ok());
  EngineOptions options;
  options.max_bytes = 1 << 20;
  options.shards = 1;
  options.region = (*storage)->region(0);
  Engine engine(options);
  for (int i = 0; i < 50000; ++i) {
    engine.Apply("k" + std::to_string(i), i + 1, ChangeKind::kTombstone);
  }
  std::string why;
  EXPECT_TRUE(engine.CheckStorage(&why)) << why;
  EXPECT_GT(engine.Stats().entries, 5000u);
}

}  // namespace
}  // namespace cachecar::cache
