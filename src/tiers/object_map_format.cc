#include "tiers/object_map_format.h"

#include <cstring>
#include <map>

namespace tierfs {

uint32_t ObjectMap::BlockLength(uint32_t index) const {
  const uint64_t start = static_cast<uint64_t>(index) * block_size;
  return static_cast<uint32_t>(std::min<uint64_t>(block_size, size - start));
}

std::string EncodeObjectMapHeader(uint64_t size, uint32_t block_size, std::string_view key,
                                  std::string_view version) {
  ObjectMapHeader h{};
  std::memcpy(h.magic, kObjectMapMagic, sizeof h.magic);
  h.size = size;
  h.block_size = block_size;
  h.key_length = static_cast<uint32_t>(key.size());
  h.version_length = static_cast<uint32_t>(version.size());
  std::string out(reinterpret_cast<const char*>(&h), sizeof h);
  out.append(key);
  out.append(version);
  return out;
}

Result<ObjectMap> DecodeObjectMap(std::string_view bytes) {
  ObjectMapHeader h;
  if (bytes.size() < sizeof h) return Status::Invalid("object map shorter than its header");
  std::memcpy(&h, bytes.data(), sizeof h);
  if (std::memcmp(h.magic, kObjectMapMagic, sizeof h.magic) != 0) {
    return Status::Invalid("not an object map (magic)");
  }
  // Block counts must fit a u32 record index.
  if (h.size == 0 || h.block_size == 0 || (h.size - 1) / h.block_size >= UINT32_MAX) {
    return Status::Invalid("object map with a bad size or block size");
  }
  if (h.key_length > kObjectMapMaxName || h.version_length > kObjectMapMaxName ||
      bytes.size() - sizeof h < static_cast<size_t>(h.key_length) + h.version_length) {
    return Status::Invalid("object map with names out of bounds");
  }
  ObjectMap map;
  map.size = h.size;
  map.block_size = h.block_size;
  map.key.assign(bytes.substr(sizeof h, h.key_length));
  map.version.assign(bytes.substr(sizeof h + h.key_length, h.version_length));
  std::map<uint32_t, ObjectMapRecord> last;  // a later record for a block wins
  for (size_t at = sizeof h + h.key_length + h.version_length;
       at + sizeof(ObjectMapRecord) <= bytes.size(); at += sizeof(ObjectMapRecord)) {
    ObjectMapRecord r;
    std::memcpy(&r, bytes.data() + at, sizeof r);
    if (r.index >= map.nblocks() || r.length != map.BlockLength(r.index)) continue;
    last[r.index] = r;
  }
  map.blocks.reserve(last.size());
  for (const auto& [index, r] : last) map.blocks.push_back(r);
  return map;
}

}  // namespace tierfs
