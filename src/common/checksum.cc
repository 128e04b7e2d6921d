#include "common/checksum.h"

#define XXH_INLINE_ALL
#include <xxhash.h>

namespace tierfs {

uint64_t Xxh3(const void* data, size_t size, uint64_t seed) {
  return XXH3_64bits_withSeed(data, size, seed);
}

Hash128 Xxh3_128(const void* data, size_t size) {
  XXH128_hash_t h = XXH3_128bits(data, size);
  return Hash128{h.low64, h.high64};
}

}  // namespace tierfs
