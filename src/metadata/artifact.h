// A published index: the index directory packed into one file named by the SHA-256 of its
// content (`<sha256>.tierfs-index`), and a small pointer file (`latest`) naming the
// artifact a mount should use. Artifacts never change once written (so any HTTP cache may
// keep them forever); publishing a revision replaces only the pointer.
//
// Artifact layout: "TIERFS-INDEX 1\n", be32 file count, then per file be16 name length,
// name, be64 size, bytes. Names are plain file names (letters, digits, '.', '_', '-');
// anything else, a size past the end or trailing bytes make it corrupt. Unpacking never
// writes outside the directory it is given.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tierfs {
class Store;

inline constexpr const char* kPointerName = "latest";
inline constexpr const char* kArtifactSuffix = ".tierfs-index";

// The pointer file: JSON, a few hundred bytes.
struct IndexPointer {
  std::string sha256;  // of the artifact, which is named ArtifactName(sha256)
  uint64_t size = 0;   // artifact bytes
  std::string source;  // the source the index was built from (IndexMeta::source)
  int64_t built_at = 0;
  int64_t published_at = 0;
  uint64_t files = 0, dirs = 0, bytes = 0;
};

std::string ArtifactName(const std::string& sha256);
std::string EncodePointer(const IndexPointer& pointer);
// A pointer that is not JSON, names no valid digest or lacks a field is an error that says so.
Result<IndexPointer> DecodePointer(std::string_view text);

struct PackedIndex {
  std::string sha256;
  uint64_t size = 0;
  std::string path;      // the artifact in the output directory
  bool existed = false;  // an identical artifact was there already
};

// Packs the index directory `index_dir` into `out_dir`/<sha256>.tierfs-index.
Result<PackedIndex> PackIndex(const std::string& index_dir, const std::string& out_dir);

// Replaces `path` with a file holding `text` in one rename (synced first): readers see the
// old file or the new one, whole.
Status WriteFileAtomically(const std::string& path, const std::string& text);

// Unpacks an artifact into `dest_dir` (which must not exist): written next to it under a
// temporary name, synced, then renamed into place, so `dest_dir` exists only complete.
// The caller has verified the artifact's SHA-256.
Status UnpackIndex(const std::string& artifact_path, const std::string& dest_dir);

// Downloads the artifact `pointer` names from `store` (the pointer's directory) in
// `chunk`-byte ranges, 4 at once (each placed on a cluster cache like a data block), into
// `dest_dir`.download, checks its SHA-256 and unpacks it at `dest_dir`. The download is
// removed whatever happens.
Status DownloadArtifact(Store& store, const IndexPointer& pointer, uint64_t chunk,
                        const std::string& dest_dir);

}  // namespace tierfs
