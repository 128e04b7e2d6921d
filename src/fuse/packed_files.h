// Where a file's bytes are, for the block cache: a plain file is its own object; an archive
// member (metadata/archive.h) is a byte range of its archive, read through the same blocks
// as the archive (one 1 MiB block serves every small member in it); a deflated zip member
// is an object of its own, made by MemberInflater and cached inflated.
#pragma once

#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "common/mutex.h"
#include "metadata/entry.h"
#include "tiers/block_cache.h"
#include "ufs/store.h"

namespace tierfs {

// The file is [offset, offset + size) of object `ref`, which has `object_size` bytes.
struct FileExtent {
  ObjectRef ref;
  uint64_t object_size = 0;
  uint64_t offset = 0;
  uint64_t size = 0;
  // A stored zip member: its local header's offset; `offset` is known once that is read.
  std::optional<uint64_t> zip_header;
  std::string unreadable;     // reads fail with this (encrypted, an unsupported method)
  bool whole_object = false;  // the file is all of `ref` (it may be passed through)
};

FileExtent ExtentOf(const Entry& e);

// The range a warm of the file pulls in: for a zip member whose data offset is not known,
// from its header to the furthest its data can reach.
struct WarmRange {
  uint64_t offset, length;
};
WarmRange WarmRangeOf(const FileExtent& x);

// Fetches the blocks of inflated zip members (BlockCache::Maker): reads the local header
// and the compressed bytes from the store (one request as a rule), inflates, checks the
// CRC when a read reaches the member's end. Members up to 16 MiB are kept inflated for a
// moment (up to 64 MiB in all), so the blocks of one member are inflated once. Thread-safe.
class MemberInflater {
 public:
  explicit MemberInflater(Store& store) : store_(store) {}
  Result<size_t> Read(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                      ReadVia* via);

 private:
  struct Recent {
    std::string version;
    std::shared_ptr<const std::string> bytes;
  };
  Store& store_;
  Mutex mu_;
  std::vector<Recent> recent_ GUARDED_BY(mu_);  // most recent last
  uint64_t recent_bytes_ GUARDED_BY(mu_) = 0;
};

}  // namespace tierfs
