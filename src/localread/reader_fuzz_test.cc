// A damaged published file makes readers fall back, never crash or hang:
// random corruptions (bit flips, extreme values in every header field, slot
// and entry header, index tables with no empty slot, truncations) of a real
// file, each opened by a fresh reader that then looks up every key it held
// and random ones. Under ASan+UBSan any out-of-bounds read is a failure.
//
// CACHECAR_FUZZ_ITERATIONS sets the number of damaged files (default 600).
#include <fcntl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "cache/engine.h"
#include "cache/storage.h"
#include "gtest/gtest.h"
#include "localread/layout.h"
#include "localread/reader.h"

namespace cachecar::localread {
namespace {

using cache::ChangeKind;

int Iterations() {
  const char* s = std::getenv("CACHECAR_FUZZ_ITERATIONS");
  return s != nullptr ? std::max(1, std::atoi(s)) : 600;
}

std::vector<char> ReadAll(const std::string& path) {
  std::vector<char> bytes;
  const int fd = open(path.c_str(), O_RDONLY);
  off_t size = lseek(fd, 0, SEEK_END);
  bytes.resize(size);
  pread(fd, bytes.data(), size, 0);
  close(fd);
  return bytes;
}

void WriteAll(const std::string& path, const std::vector<char>& bytes, size_t size) {
  const int fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  // Sparse, like the original: only the nonzero pages are written.
  for (size_t off = 0; off < size; off += 4096) {
    const size_t n = std::min<size_t>(4096, size - off);
    bool zero = true;
    for (size_t i = 0; i < n && zero; ++i) zero = bytes[off + i] == 0;
    if (!zero) pwrite(fd, bytes.data() + off, n, static_cast<off_t>(off));
  }
  ftruncate(fd, static_cast<off_t>(size));
  close(fd);
}

// Offsets of the places worth damaging in a file: header fields, namespace
// and shard headers, used slots and entry headers.
struct Landmarks {
  std::vector<size_t> words;    // 8-byte fields
  std::vector<size_t> regions;  // starts of index slot arrays and entries
};

Landmarks Find(const std::vector<char>& file) {
  Landmarks l;
  const auto* h = reinterpret_cast<const FileHeader*>(file.data());
  for (size_t off = 0; off < 80; off += 4) l.words.push_back(off);
  for (uint32_t n = 0; n < h->namespace_count; ++n) {
    const size_t ns = h->namespaces_offset + n * kNamespaceBytes;
    for (size_t off = 64; off < 96; off += 4) l.words.push_back(ns + off);
    const auto* nh = reinterpret_cast<const NamespaceHeader*>(file.data() + ns);
    for (uint32_t s = 0; s < nh->shard_count; ++s) {
      const size_t sh = nh->shards_offset + s * kShardBytes;
      for (size_t off = 8; off < 40; off += 4) l.words.push_back(sh + off);
      const auto* shard = reinterpret_cast<const ShardHeader*>(file.data() + sh);
      const uint32_t slots = shard->index_mask.load() + 1;
      l.regions.push_back(shard->index_offset);
      for (uint32_t i = 0; i < slots; ++i) {
        uint64_t slot;
        std::memcpy(&slot, file.data() + shard->index_offset + 8 * i, 8);
        if (slot == 0) continue;
        const size_t slot_at = shard->index_offset + 8 * i;
        l.words.push_back(slot_at);
        l.words.push_back(slot_at + 4);
        const size_t entry = shard->arena_offset + uint64_t{SlotRef(slot)} * 8;
        for (size_t off = 0; off < 32; off += 4) l.words.push_back(entry + off);
        l.regions.push_back(entry);
      }
    }
  }
  return l;
}

TEST(ReaderFuzzTest, DamagedFilesMakeReadersFallBackAndNeverCrash) {
  char tmpl[] = "/tmp/cachecar-reader-fuzz.XXXXXX";
  const std::string dir = mkdtemp(tmpl);
  const std::string path = dir + "/cache";
  std::vector<std::string> keys;
  {
    auto storage =
        cache::Storage::CreateFile({{"default", 256 << 10, 2}, {"other", 64 << 10, 1}}, {path, 64});
    ASSERT_TRUE(storage.ok()) << storage.status();
    std::vector<std::unique_ptr<cache::Engine>> engines;
    for (size_t i = 0; i < 2; ++i) {
      cache::EngineOptions o;
      o.max_bytes = (*storage)->plan(i).max_bytes;
      o.shards = (*storage)->plan(i).shards;
      o.region = (*storage)->region(i);
      engines.push_back(std::make_unique<cache::Engine>(o));
    }
    for (int k = 0; k < 300; ++k) {
      keys.push_back("key" + std::to_string(k));
      if (k % 10 == 0) {
        engines[0]->Apply(keys.back(), k + 1, ChangeKind::kTombstone);
      } else {
        engines[k % 2]->Apply(keys.back(), k + 1, ChangeKind::kValue, std::string(k * 3, 'v'));
      }
    }
    (*storage)->SetTrustedUntil(absl::InfiniteFuture());
    (*storage)->SetServing();
    // Copied while it serves; the storage retires and removes it after.
    const std::vector<char> pristine = ReadAll(path);
    engines.clear();
    WriteAll(dir + "/pristine", pristine, pristine.size());
  }
  const std::vector<char> pristine = ReadAll(dir + "/pristine");
  const Landmarks marks = Find(pristine);
  ASSERT_GT(marks.words.size(), 100u);

  const std::string damaged = dir + "/damaged";
  std::mt19937_64 rng(42);
  const uint64_t extremes[] = {0,          1,          7,          0x7fffffff, 0x80000000,
                               0xffffffff, 1ull << 32, 1ull << 40, ~0ull,      ~0ull >> 1};
  int results[kResultCount] = {};
  const int iterations = Iterations();
  for (int it = 0; it < iterations; ++it) {
    std::vector<char> bytes = pristine;
    size_t size = bytes.size();
    const int kind = static_cast<int>(rng() % 6);
    const int edits = 1 + static_cast<int>(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      const size_t at = marks.words[rng() % marks.words.size()];
      if (kind == 0) {  // flip a bit near a field
        bytes[at + rng() % 8] ^= static_cast<char>(1 << (rng() % 8));
      } else if (kind == 1) {  // an extreme 32- or 64-bit value
        const uint64_t v = extremes[rng() % (sizeof extremes / sizeof extremes[0])];
        std::memcpy(&bytes[at], &v, rng() % 2 ? 8 : 4);
      } else if (kind == 2) {  // random bytes over a table or an entry
        const size_t region = marks.regions[rng() % marks.regions.size()];
        for (int i = 0; i < 64; ++i) bytes[region + rng() % 512] = static_cast<char>(rng());
      } else if (kind == 3) {  // an index with no empty slot at all
        const size_t region = marks.regions[rng() % marks.regions.size()];
        for (size_t i = 0; i < 4096 && region + i < size; i += 8) {
          const uint64_t slot = (rng() | 1) & (rng() % 2 ? ~0ull : 0xffffffff000000ffull);
          std::memcpy(&bytes[region + i], &slot, 8);
        }
      } else if (kind == 4) {  // truncated
        size = rng() % 2 ? rng() % 8192 : rng() % bytes.size();
      } else {  // anything anywhere in the first pages
        bytes[rng() % 65536] = static_cast<char>(rng());
      }
    }
    WriteAll(damaged, bytes, size);
    ReaderOptions options;
    options.path = damaged;
    options.report_hits = false;
    Reader reader(options);
    std::string value;
    uint64_t version = 0;
    for (const std::string& key : keys) {
      for (const char* ns : {"default", "other", "", "nope"}) {
        const Result r = reader.Get(ns, key, &value, &version);
        ASSERT_GE(static_cast<int>(r), 0);
        ASSERT_LT(static_cast<int>(r), kResultCount);
        ++results[static_cast<int>(r)];
        // A value is copied only from inside the arena: at most its size.
        if (r == Result::kHit) {
          ASSERT_LE(value.size(), bytes.size());
        }
      }
    }
    char small[8];
    size_t len = 0;
    reader.GetInto("default", keys[rng() % keys.size()], small, sizeof small, &len, &version);
  }
  for (int r = 0; r < kResultCount; ++r) {
    std::printf("%-18s %d\n", ResultName(static_cast<Result>(r)), results[r]);
  }
  // The damage was seen (not every read happened on an intact file) and
  // intact parts still answered.
  EXPECT_GT(results[static_cast<int>(Result::kCorrupt)], 0);
  EXPECT_GT(results[static_cast<int>(Result::kIncompatible)], 0);
  EXPECT_GT(results[static_cast<int>(Result::kHit)], 0);
  std::system(("rm -rf " + dir).c_str());
}

}  // namespace
}  // namespace cachecar::localread
