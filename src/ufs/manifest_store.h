// A manifest instead of a crawl: the list of files (and their sizes and ETags) that make
// up a data set, so index build makes no LIST or HEAD calls at all.
//
// Text: one "path size [etag]" per line ('#' comments, blank lines ignored; paths are
// '/'-separated, relative to the source root, percent-encoded where they hold spaces or
// '%'). JSON: an array of {"path": ..., "size": N, "etag": "..."}. Directories are implied.
#pragma once

#include <memory>
#include <ostream>
#include <string>

#include "ufs/store.h"

namespace tierfs {

// Wraps `base` (which still serves the bytes) so listings and stats come from the
// manifest text. Bad manifests are a clear error naming the line.
Result<std::unique_ptr<Store>> OpenManifestStore(std::unique_ptr<Store> base,
                                                 const std::string& manifest);

// Loads a manifest from a local file or an http(s) URL.
Result<std::string> LoadManifest(const std::string& file_or_url, const StoreOptions& options);

// Writes one manifest line for a file (path percent-encoded as needed).
void WriteManifestLine(std::ostream& out, const std::string& key, uint64_t size,
                       const std::string& version);

}  // namespace tierfs
