// Entry: what the index knows about one inode, and its compact on-disk encoding.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ufs/store.h"

namespace tierfs {

inline constexpr uint64_t kRootIno = 1;

// A file that is a member of an archive (metadata/archive.h): its bytes are a range of the
// archive, whose key and version are the entry's own.
struct Packed {
  uint64_t offset = 0;        // tar, stored zip: where the bytes start (zip: once resolved)
  uint64_t archive_size = 0;  // the archive's size (its blocks are keyed by it)
  uint64_t packed_size = 0;   // bytes in the archive
  uint16_t method = 0;        // 0 stored, 8 deflated (zip numbers); others fail reads
  bool zip_header = false;    // `offset` is the zip local header, not the data
  bool encrypted = false;
  uint32_t crc32 = 0;  // zip: of the bytes a reader sees
};

struct Entry {
  uint64_t ino = 0;
  uint64_t parent = 0;  // the root is its own parent
  ObjectType type = ObjectType::kFile;
  uint32_t mode = 0;  // permission bits only; the type comes from `type`
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;           // changes whenever the object's bytes do
  std::string key;               // the object's key in the store
  std::string link_target;       // symlinks only
  std::optional<Packed> packed;  // a member of an archive (files only)

  bool is_dir() const { return type == ObjectType::kDirectory; }
  ObjectRef ref() const { return ObjectRef{key, version}; }
};

std::string EncodeEntry(const Entry& entry);
// `ino` is not part of the encoding (it is the record's key).
Result<Entry> DecodeEntry(uint64_t ino, std::string_view bytes);

}  // namespace tierfs
