// The on-disk format of NVMe cache segments. Every cached block is self-describing and
// verified on every read; a segment's directory (written when the segment is sealed)
// lets start-up skip reading the blocks themselves.
//
// Segment file (segment_size bytes, preallocated):
//   [ records ... | directory area (dir_bytes) ]
// Record (4 KiB aligned): RecordHeader (64 bytes) + data, padded to a multiple of 4 KiB.
// Directory: DirHeader (4 KiB block) + DirEntry[count].
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "common/checksum.h"

namespace tierfs {

inline constexpr uint64_t kRecordMagic = 0x314B4C4253464954ULL;  // "TIFSBLK1"
inline constexpr uint64_t kDirMagic = 0x3152494453464954ULL;     // "TIFSDIR1"
inline constexpr size_t kRecordHeaderSize = 64;
inline constexpr size_t kUnit = 4096;

struct RecordHeader {
  uint64_t magic;
  uint64_t key_lo, key_hi;  // Hash128 of (object key, version, block index)
  uint64_t index;           // block index within the object
  uint32_t length;          // data bytes that follow the header
  uint32_t generation;      // the segment's write generation
  uint64_t data_xxh3;
  uint64_t reserved;
  uint64_t header_xxh3;  // of the 56 bytes above
};
static_assert(sizeof(RecordHeader) == kRecordHeaderSize);

struct DirEntry {
  uint64_t key_lo, key_hi;
  uint64_t index;
  uint32_t offset_units;  // record offset in 4 KiB units
  uint32_t length;        // data bytes
};
static_assert(sizeof(DirEntry) == 32);

struct DirHeader {
  uint64_t magic;
  uint32_t generation;
  uint32_t count;
  uint64_t entries_xxh3;
  uint64_t header_xxh3;  // of the 24 bytes above
};

inline size_t RoundUp(size_t n, size_t unit) { return (n + unit - 1) / unit * unit; }
inline size_t RecordBytes(size_t length) { return RoundUp(kRecordHeaderSize + length, kUnit); }

// Fills a header for `data` (length bytes) and returns it.
RecordHeader MakeRecordHeader(const Hash128& key, uint64_t index, uint32_t generation,
                              const char* data, uint32_t length);
// True if `h` is intact (magic and header checksum).
bool HeaderIntact(const RecordHeader& h);
// True if `h` is intact, names `key`/`index`, and `data` matches its checksum.
bool RecordValid(const RecordHeader& h, const Hash128& key, uint64_t index, const char* data,
                 size_t available);

// Encodes a directory into `out` (resized to a multiple of 4 KiB).
void EncodeDirectory(uint32_t generation, const std::vector<DirEntry>& entries,
                     std::vector<char>* out);
// Parses the directory header at `buf` (4 KiB); false if absent or corrupt.
bool DecodeDirHeader(const char* buf, DirHeader* out);
// Checks entries against the header's checksum.
bool DirEntriesValid(const DirHeader& h, const DirEntry* entries);

}  // namespace tierfs
