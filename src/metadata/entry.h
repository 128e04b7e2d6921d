// Entry: what the index knows about one inode, and its compact on-disk encoding.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"
#include "ufs/store.h"

namespace tierfs {

inline constexpr uint64_t kRootIno = 1;

struct Entry {
  uint64_t ino = 0;
  uint64_t parent = 0;  // the root is its own parent
  ObjectType type = ObjectType::kFile;
  uint32_t mode = 0;  // permission bits only; the type comes from `type`
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  std::string version;      // changes whenever the object's bytes do
  std::string key;          // the object's key in the store
  std::string link_target;  // symlinks only

  bool is_dir() const { return type == ObjectType::kDirectory; }
  ObjectRef ref() const { return ObjectRef{key, version}; }
};

std::string EncodeEntry(const Entry& entry);
// `ino` is not part of the encoding (it is the record's key).
Result<Entry> DecodeEntry(uint64_t ino, std::string_view bytes);

}  // namespace tierfs
