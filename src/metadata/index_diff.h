// DiffIndexes: what changed between two revisions of an index, as the kernel needs to hear
// it to drop what it cached of the old one (entries, attributes, directory listings).
#pragma once

#include <cstdint>
#include <functional>
#include <string>

#include "common/status.h"
#include "metadata/index.h"

namespace tierfs {

struct IndexChange {
  enum class Kind {
    kAdded,     // `name` is new in directory `ino`
    kRemoved,   // `name` is gone from directory `ino`
    kReplaced,  // `name` in directory `ino` is another inode now (content or type changed)
    kAttrs,     // inode `ino` has other attributes (mode, mtime, size)
    kListing,   // directory `ino` lists other names or inodes
  };
  Kind kind;
  uint64_t ino;      // the directory (kAdded, kRemoved, kReplaced) or the inode itself
  std::string name;  // kAdded, kRemoved, kReplaced
};

struct DiffCounts {
  uint64_t added = 0, removed = 0, replaced = 0, attrs = 0;
  uint64_t total() const { return added + removed + replaced + attrs; }
};

// Walks both trees together from the root, in name order, visiting each directory present
// in both once; a directory added or removed is one change (its contents are not walked).
// Memory: one directory's children at a time per side.
Result<DiffCounts> DiffIndexes(Index& old_index, Index& new_index,
                               const std::function<void(const IndexChange&)>& sink);

}  // namespace tierfs
