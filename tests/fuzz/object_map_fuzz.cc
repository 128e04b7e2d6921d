// Fuzzes the object file tier's map parser (tiers/object_map_format.h) with hostile map
// files, the way a crash, a bad disk or another program could leave them. Whatever the
// input, a map that parses must describe only blocks that fit its object (index in range,
// the length the block must have, one record per block), and what it says must survive
// being written again and read back unchanged; a violation aborts.
#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "tiers/object_map_format.h"

using namespace tierfs;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view bytes(reinterpret_cast<const char*>(data), size);
  auto map = DecodeObjectMap(bytes);
  if (!map.ok()) return 0;
  if (map->size == 0 || map->block_size == 0 || map->key.size() > kObjectMapMaxName ||
      map->version.size() > kObjectMapMaxName) {
    std::abort();
  }
  int64_t previous = -1;
  for (const ObjectMapRecord& r : map->blocks) {
    if (r.index >= map->nblocks() || r.length != map->BlockLength(r.index) ||
        static_cast<int64_t>(r.index) <= previous) {
      std::abort();  // a block outside the object, of the wrong length, or twice
    }
    previous = r.index;
  }
  std::string again = EncodeObjectMapHeader(map->size, map->block_size, map->key, map->version);
  for (const ObjectMapRecord& r : map->blocks) {
    again.append(reinterpret_cast<const char*>(&r), sizeof r);
  }
  auto back = DecodeObjectMap(again);
  if (!back.ok() || back->size != map->size || back->block_size != map->block_size ||
      back->key != map->key || back->version != map->version ||
      !std::equal(back->blocks.begin(), back->blocks.end(), map->blocks.begin(), map->blocks.end(),
                  [](const ObjectMapRecord& a, const ObjectMapRecord& b) {
                    return a.index == b.index && a.length == b.length && a.sum == b.sum;
                  })) {
    std::abort();
  }
  return 0;
}
