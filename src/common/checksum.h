// XXH3 checksums and key hashes. Hashes are stable across versions and machines: they are
// written to disk (cache block headers) and used for inode numbers in the index.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace tierfs {

uint64_t Xxh3(const void* data, size_t size, uint64_t seed = 0);
inline uint64_t Xxh3(std::string_view s, uint64_t seed = 0) {
  return Xxh3(s.data(), s.size(), seed);
}

struct Hash128 {
  uint64_t lo = 0;
  uint64_t hi = 0;
  bool operator==(const Hash128&) const = default;
};
Hash128 Xxh3_128(const void* data, size_t size);

}  // namespace tierfs
