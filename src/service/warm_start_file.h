// The warm start file (`warm_start_file`): the keys a replica held when it
// stopped, by namespace (no values: a restarted replica reads the values
// from the store, so nothing in the file can be stale). Written at SIGTERM,
// read at start (service/warm_start.h).
//
// Format, version 1, all integers little-endian:
//   magic    8 bytes  "CCWARM\r\n" (a text-mode copy or a foreign file fails here)
//   version  u32      1
//   length   u64      bytes of the body that follows
//   crc      u32      CRC-32C of the body
//   body     u32 namespace count, then per namespace:
//              u16 name length, name, u32 key count, then per key:
//              u32 key length, key
// Nothing may follow the body. A reader checks every length against what
// is left and against its limits before it allocates, so a corrupt,
// truncated or foreign file is an error naming what is wrong, never a crash.
// Writes go to a temporary file in the same directory, fsync'd, then renamed
// over the old one, so a crash mid-write leaves the previous file whole.
//
// Thread-safety: plain functions of their arguments; safe from any thread.
#ifndef CACHECAR_SERVICE_WARM_START_FILE_H_
#define CACHECAR_SERVICE_WARM_START_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace cachecar::service {

struct WarmNamespace {
  std::string name;
  std::vector<std::string> keys;
};

struct WarmKeys {
  std::vector<WarmNamespace> namespaces;
  size_t key_count() const;
};

struct WarmFileLimits {
  uint64_t max_file_bytes = uint64_t{1} << 30;  // refuse larger files unread
  uint32_t max_key_bytes = 1024;                // a longer key is corruption
};

constexpr uint32_t kWarmFileVersion = 1;

// CRC-32C (Castagnoli) of `data`.
uint32_t Crc32c(absl::string_view data);

std::string EncodeWarmKeys(const WarmKeys& keys);
// DATA_LOSS naming the problem (bad magic, unknown version, bad checksum,
// truncated, trailing bytes, a length over a limit).
absl::StatusOr<WarmKeys> DecodeWarmKeys(absl::string_view data, const WarmFileLimits& limits);

// Atomically replaces `path` (temp file + fsync + rename + fsync of the
// directory).
absl::Status WriteWarmStartFile(const std::string& path, const WarmKeys& keys);
// NOT_FOUND when there is no file; DATA_LOSS when it is not a whole file of
// this format; other errors from the file system.
absl::StatusOr<WarmKeys> ReadWarmStartFile(const std::string& path, const WarmFileLimits& limits);

}  // namespace cachecar::service

#endif  // CACHECAR_SERVICE_WARM_START_FILE_H_
