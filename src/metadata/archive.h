// Archive listings: the members of a tar or zip object, read with ranged reads, so the
// index can serve each member as a file (a byte range of its archive).
//
//  - tar (ustar, GNU long names and links, PAX path/linkpath/size/mtime): the headers are
//    walked in order, reading the archive in large windows (a member's data is skipped,
//    not read, when the next header lies past the window).
//  - zip (zip64 included): the end of central directory and the central directory are
//    read (two or three requests); a member's data offset is in its local header, which
//    the reader resolves on first read (ResolveZipData): it sits just before the data,
//    in the same cache block as a rule.
//
// Hostile input never yields a name outside the archive's directory or a range past the
// archive's end: member paths are normalized (a leading "./" dropped) and refused with
// "..", an absolute path, NUL or an empty component; symlinks must stay inside the
// archive; hard links must name an earlier regular member; duplicates keep the last (as
// `tar -x` and `unzip -o` do). Each refusal is counted, and the first reason kept, for one
// line per archive. Counts and sizes are bounded before anything is allocated.
#pragma once

#include <sys/uio.h>

#include <cstdint>
#include <functional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ufs/store.h"

namespace tierfs {

enum class ArchiveKind : uint8_t { kNone = 0, kTar = 1, kZip = 2 };

// Zip compression methods tierfs reads; any other is listed and its reads fail.
inline constexpr uint16_t kZipStored = 0;
inline constexpr uint16_t kZipDeflated = 8;

struct ArchiveMember {
  std::string path;  // normalized: "a/b.jpg", no leading '/', no "." or ".." parts
  ObjectType type = ObjectType::kFile;
  uint32_t mode = 0;  // permission bits (0: none recorded)
  int64_t mtime_ns = 0;
  uint64_t size = 0;         // bytes a reader sees
  uint64_t offset = 0;       // tar: first byte of the data; zip: the local header
  uint64_t packed_size = 0;  // bytes in the archive (compressed size)
  uint16_t method = kZipStored;
  bool encrypted = false;
  uint32_t crc32 = 0;  // zip: of the bytes a reader sees
  std::string link_target;
};

struct ArchiveListing {
  std::vector<ArchiveMember> members;  // archive order, duplicates removed
  uint64_t skipped = 0;                // members refused (see `problem`)
  std::string problem;                 // the first reason, for the archive's log line
  uint64_t requests = 0;               // ranged reads made
};

// Reads up to `length` bytes at `offset` of the archive into `buf`; fewer only at its end.
using RangeReader = std::function<Result<size_t>(uint64_t offset, size_t length, char* buf)>;

// Bounds on one archive: more members, or a central directory or name record larger than
// these, refuse the archive (a "zip bomb" in the directory) rather than allocate.
inline constexpr uint64_t kMaxArchiveMembers = 4'000'000;
inline constexpr uint64_t kMaxZipDirectoryBytes = 512ULL << 20;
// A deflated member may not claim to grow more than deflate can (1032:1).
inline constexpr uint64_t kMaxDeflateRatio = 1032;

// The kind an object's name asks for among `enabled` (a mask of 1 << ArchiveKind).
ArchiveKind ArchiveKindOf(std::string_view name, unsigned enabled);
inline constexpr unsigned ArchiveMask(ArchiveKind k) { return 1u << static_cast<unsigned>(k); }

// Lists an archive of `size` bytes. A structure that cannot be a tar or zip at all is an
// error; damage after some members were read (a truncated tar) keeps those, with a problem.
Result<ArchiveListing> ListTar(const RangeReader& read, uint64_t size);
Result<ArchiveListing> ListZip(const RangeReader& read, uint64_t size);
Result<ArchiveListing> ListArchive(ArchiveKind kind, const RangeReader& read, uint64_t size);

// Size of a zip local file header's fixed part; the data starts at the header's offset +
// this + its name and extra lengths.
inline constexpr size_t kZipLocalHeaderSize = 30;
// The data offset from the fixed part of the local header at `header_offset` (EIO if it is
// not one, or if `packed_size` bytes from there pass `archive_size`).
Result<uint64_t> ResolveZipData(std::string_view header, uint64_t header_offset,
                                uint64_t packed_size, uint64_t archive_size);

// Inflates raw deflate `in` (a member of `out_size` bytes whose CRC-32 is `crc`) and copies
// [from, from + out.size()) of it to `out`. A range that reaches the end checks the whole
// stream: EIO for a stream that is damaged, ends early, runs long or fails the CRC.
Status InflateRange(std::span<const iovec> in, uint64_t out_size, uint32_t crc, uint64_t from,
                    std::span<char> out);

}  // namespace tierfs
