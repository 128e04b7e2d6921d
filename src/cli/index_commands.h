// The index commands:
//   tierfs index build SOURCE --index DIR [--write-manifest FILE]
//   tierfs index build --source PATH=URL ... --index DIR     (a namespace of sources)
//   tierfs index stat --index DIR [--json]
//   tierfs index publish --index DIR DEST     (DEST: a directory or s3://bucket/prefix)
//   tierfs index refresh MOUNTPOINT
// Each returns the process exit code and prints one clear line on failure.
#pragma once

#include <string>

#include "cli/mount_command.h"
#include "metadata/index.h"
#include "ufs/store.h"

namespace tierfs {

// Builds the index of `sources`' source (or its sources; `store` and each source's
// options say how to reach them).
int RunIndexBuild(MountConfig sources, const std::string& index_path,
                  const std::string& write_manifest, ListMode mode);
int RunIndexStat(const std::string& index_path, bool json);
// Packs the index into DEST/<sha256>.tierfs-index and points DEST/latest at it (a no-op
// if it already does). S3 destinations use `so` (endpoint, region, credentials).
int RunIndexPublish(const std::string& index_path, const std::string& dest, const StoreOptions& so);
// Asks the mount's daemon to check for a new index revision now and switch to it.
int RunIndexRefresh(const std::string& mountpoint);

}  // namespace tierfs
