// The on-disk format of the object file tier's maps. Each object kept whole lives in
// <cache_dir>/objects/<stem>.data (a sparse file of the object's size) next to
// <stem>.map, which says what the data file holds:
//
//   ObjectMapHeader (28 bytes: magic "TFOBJ001", u64 object size, u32 block size,
//                    u32 key length, u32 version length), then the key and the version;
//   ObjectMapRecord (16 bytes: u32 block index, u32 length, u64 XXH3 of the block's
//                    bytes), appended once a block's bytes are in the data file.
//
// Records are appended without fsync: a record whose bytes never reached the disk fails
// its checksum when read, a torn last record is ignored, and a later record for a block
// wins. Little-endian, as the machines tierfs runs on. Parsing never trusts the file:
// lengths are bounded and every record is checked against the header.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tierfs {

inline constexpr char kObjectMapMagic[8] = {'T', 'F', 'O', 'B', 'J', '0', '0', '1'};
inline constexpr size_t kObjectMapMaxName = 64 << 10;  // key or version length a map may claim

struct ObjectMapHeader {
  char magic[8];
  uint64_t size;
  uint32_t block_size;
  uint32_t key_length;
  uint32_t version_length;
} __attribute__((packed));
static_assert(sizeof(ObjectMapHeader) == 28);

struct ObjectMapRecord {
  uint32_t index;
  uint32_t length;
  uint64_t sum;  // XXH3 of the block's bytes
};
static_assert(sizeof(ObjectMapRecord) == 16);

// What a map says: the object, and its blocks (one record per block present, the last
// record of each block; only records that fit the object: index in range, the length the
// block must have).
struct ObjectMap {
  uint64_t size = 0;
  uint32_t block_size = 0;
  std::string key, version;
  std::vector<ObjectMapRecord> blocks;

  uint32_t nblocks() const { return static_cast<uint32_t>((size + block_size - 1) / block_size); }
  // The bytes block `index` has (the last one may be short).
  uint32_t BlockLength(uint32_t index) const;
};

// The header and names of a new map, to be written when its data file is created.
std::string EncodeObjectMapHeader(uint64_t size, uint32_t block_size, std::string_view key,
                                  std::string_view version);

// Parses a whole map file. Fails (EINVAL, one line) for anything that is not a map of
// this format: bad magic, a zero or oversized size or block size, names over
// kObjectMapMaxName or past the end.
Result<ObjectMap> DecodeObjectMap(std::string_view bytes);

}  // namespace tierfs
