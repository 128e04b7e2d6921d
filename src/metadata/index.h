// Index: every piece of metadata a mount serves, resolved locally — never from the store.
//
// Built once by BuildIndex() (a single walk of the source), then opened read-only by the
// mount. Inode numbers are derived from object keys (and, for files, their versions), so
// they are stable across rebuilds of the same source and across remounts.
//
// Thread safety: an opened Index may be used from many threads at once.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "metadata/entry.h"

namespace tierfs {

// The index's own record: where it came from and what it holds.
struct IndexMeta {
  int format_version = 0;
  std::string source;    // Store::Url() of the source it was built from
  int64_t built_at = 0;  // unix seconds
  uint64_t files = 0, dirs = 0, symlinks = 0, bytes = 0, skipped = 0;
  // Bytes in files of kLargeFileBytes or more (what FUSE passthrough can serve); -1 in an
  // index built before it was counted.
  int64_t large_bytes = -1;
  // A namespace of several sources (ufs/namespace_store.h): each one's files and bytes,
  // in key order of their prefixes ("spark", "apache/hbase").
  struct SourceCount {
    std::string prefix;
    uint64_t files = 0, bytes = 0;
  };
  std::vector<SourceCount> sources;
  // Archives served as directories of their members (--archives), and those members.
  uint64_t archives = 0, members = 0;
  // The archive options it was built with (BuildOptions::archive_label; empty: none), so
  // a mount whose options differ builds its index again.
  std::string archive_label;
};

// Files this large or larger may be cached as one file each and passed through.
inline constexpr uint64_t kLargeFileBytes = 8 << 20;

// Lookups, getattr and listings are answered from memory when they can; one that must wait
// for the disk calls AboutToBlock() first (common/blocking.h), so the FUSE loop never
// serves it on the thread that holds the device. Thread-safe.
class Index {
 public:
  virtual ~Index() = default;

  // ENOENT if `parent` has no child `name`.
  virtual Result<Entry> Lookup(uint64_t parent, std::string_view name) = 0;
  virtual Result<Entry> GetAttr(uint64_t ino) = 0;

  // Lists directory `ino` in name order starting at position `pos` (0 = first child).
  // `sink` gets each child and its position; returning false stops the listing.
  using DirSink = std::function<bool(std::string_view name, const Entry& entry, uint64_t pos)>;
  virtual Status ReadDir(uint64_t ino, uint64_t pos, const DirSink& sink) = 0;

  virtual const IndexMeta& Meta() const = 0;

  // Starts loading the index into memory in the background (up to its in-memory cache's
  // capacity), so lookups after a fresh mount or after the page cache was dropped do not
  // wait for the disk. Stops when the index is destroyed. Lookups work meanwhile.
  virtual void StartWarmup() {}
  // Bytes of index data in memory (the warm-up's progress; 0 if unknown).
  virtual uint64_t CachedBytes() const { return 0; }
  // Reads that had to wait for the disk (each preceded by AboutToBlock()).
  virtual uint64_t DiskReads() const { return 0; }
};

// Opens an index directory read-only. A missing, unreadable or corrupt index is a clear error.
Result<std::unique_ptr<Index>> OpenIndex(const std::string& path);

class Store;
// How BuildIndex lists the source: flat (one key-ordered stream of every key, S3) where
// the store can, else per directory; or one of them only.
enum class ListMode { kAuto, kFlat, kTree };

// Which archives an index build opens (metadata/archive.h), for the objects of one source.
struct ArchiveOptions {
  unsigned kinds = 0;         // a mask of ArchiveMask(ArchiveKind); 0: none
  bool strip_suffix = false;  // "x.tar" stays a file and "x" is its directory; else "x.tar"
                              // is the directory and the archive itself is not shown
};

struct BuildOptions {
  ListMode mode = ListMode::kAuto;
  // The archive options for an object key (a namespace's sources may differ); unset: none.
  std::function<ArchiveOptions(std::string_view key)> archives;
  unsigned archive_threads = 8;  // archives listed at once
  std::string archive_label;     // names the archive options, recorded in IndexMeta
  // Called every `progress_every` entries (from the building thread).
  std::function<void(const IndexMeta&)> progress;
  uint64_t progress_every = 10000;
};

// Walks `store` once and writes a fresh index at `path` (replacing any index there only
// once the new one is complete). Memory use does not grow with the number of files.
Result<IndexMeta> BuildIndex(Store& store, const std::string& path, const BuildOptions& options);

// The inode number derived from an object key (before collision probing): directories.
uint64_t InodeForKey(std::string_view key);
// Files and symlinks: derived from the key and what the key holds (the version, or the
// link target), so a path whose content changes between two revisions of an index gets
// a new inode (a reader of the old one keeps the old bytes or gets EIO, never a mix), and
// an unchanged path keeps its number.
uint64_t InodeFor(std::string_view key, ObjectType type, std::string_view identity);

}  // namespace tierfs
