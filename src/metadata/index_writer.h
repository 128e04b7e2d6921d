// IndexWriter: the write side of the RocksDB index, used only by BuildIndex.
// Not thread-safe: one builder thread owns it.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "common/status.h"
#include "metadata/entry.h"
#include "metadata/index.h"

namespace tierfs {

class IndexWriter {
 public:
  virtual ~IndexWriter() = default;
  // Creates a new, empty index at `path` (which must not exist).
  static Result<std::unique_ptr<IndexWriter>> Create(const std::string& path);

  // True if `ino` is already used by an entry written so far.
  virtual Result<bool> InodeTaken(uint64_t ino) = 0;
  // True if directory `parent` already has a child `name`.
  virtual Result<bool> NameTaken(uint64_t parent, std::string_view name) = 0;
  // Records `entry` as child `name` of entry.parent (the root passes an empty name).
  virtual Status Put(const Entry& entry, std::string_view name) = 0;
  // Writes the directory positions and the meta record, compacts and closes the index.
  virtual Status Finish(const IndexMeta& meta) = 0;
};

}  // namespace tierfs

namespace tierfs {
// The index format this build writes and reads.
int IndexFormatVersion();
}  // namespace tierfs
