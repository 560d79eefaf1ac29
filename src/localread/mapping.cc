// See mapping.h: a published file's tables, checked before any Get reads
// them.
#include "localread/mapping.h"

#include <utility>

namespace cachecar::localread {

Result Reader::Mapping::Build(const char* base, uint64_t mapped) {
  header = reinterpret_cast<const FileHeader*>(base);
  if (header->magic != kMagic || header->layout_version != kLayoutVersion) {
    return Result::kIncompatible;
  }
  file_bytes = header->file_bytes;
  if (header->header_bytes != kHeaderBytes || file_bytes < kHeaderBytes || file_bytes > mapped) {
    return Result::kCorrupt;
  }
  instance_id = header->instance_id;
  max_key_bytes = header->max_key_bytes;
  const uint64_t count = header->namespace_count;
  const uint64_t table = header->namespaces_offset;
  if (count == 0 || count > 1024 || table % 8 != 0 ||
      !InBounds(table, count * kNamespaceBytes, file_bytes)) {
    return Result::kCorrupt;
  }
  namespaces.clear();
  namespaces.reserve(count);
  for (uint32_t i = 0; i < count; ++i) {
    const auto* nh =
        reinterpret_cast<const NamespaceHeader*>(base + table + uint64_t{i} * kNamespaceBytes);
    const uint64_t shards = nh->shard_count;
    const uint64_t shards_at = nh->shards_offset;
    if (nh->name_len == 0 || nh->name_len > kMaxNamespaceName || !PowerOfTwo(shards) ||
        shards > 1024 || shards_at % 64 != 0 ||
        !InBounds(shards_at, shards * kShardBytes, file_bytes)) {
      return Result::kCorrupt;
    }
    Namespace ns{std::string(nh->name, nh->name_len), nh, i, static_cast<uint32_t>(shards), {}};
    ns.shards.reserve(shards);
    for (uint64_t s = 0; s < shards; ++s) {
      const auto* sh = reinterpret_cast<const ShardHeader*>(base + shards_at + s * kShardBytes);
      const uint64_t slots = sh->index_max_slots;
      if (!PowerOfTwo(slots) || sh->index_offset % 8 != 0 || sh->arena_offset % 8 != 0 ||
          sh->arena_bytes % 8 != 0 || !InBounds(sh->index_offset, slots * 8, file_bytes) ||
          !InBounds(sh->arena_offset, sh->arena_bytes, file_bytes)) {
        return Result::kCorrupt;
      }
      ns.shards.push_back(
          Shard{sh, reinterpret_cast<const std::atomic<uint64_t>*>(base + sh->index_offset), slots,
                base + sh->arena_offset, sh->arena_bytes});
    }
    namespaces.push_back(std::move(ns));
  }
  for (const Namespace& ns : namespaces) {
    if (ns.name == "default") by_default = &ns;
  }
  return Result::kHit;  // usable
}

}  // namespace cachecar::localread
