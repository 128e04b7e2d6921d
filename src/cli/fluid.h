// Fluid ThinRuntime support: `tierfs fluid-mount` is the entrypoint of the FUSE container
// Fluid starts for a Dataset whose ThinRuntimeProfile names tierfs. Fluid writes what to
// mount into /etc/fluid/config/config.json:
//
//   {"mounts": [{"mountPoint": "https://archive.apache.org/dist/spark/", "name": "spark",
//                "options": {"timeout": "20000"}},
//               {"mountPoint": "s3://bucket/hbase/", "name": "hbase", "path": "/apache/hbase",
//                "options": {"s3-endpoint": "http://minio:9000",
//                            "aws-access-key-id": "/etc/fluid/secrets/s3/id", ...}}],
//    "targetPath": "/runtime-mnt/thin/default/spark/thin-fuse",
//    "runtimeOptions": {"ram-size": "4G"}, "accessModes": ["ReadOnlyMany"]}
//
// A Dataset is one tierfs mount at targetPath serving every entry of `mounts` as Fluid lays
// a Dataset out (what Alluxio and JuiceFS runtimes do): each at its `path` if set, else at
// /{name}; `path: "/"` (the source is the whole mount) only for a Dataset of one mount.
// Overlapping, duplicate or escaping paths are refused in one line.
//
// Options are tierfs mount options in either spelling (cache-size, cache_size):
//  - remote-access options (s3-endpoint, timeout, insecure, http-proxy, ...; the rows of the
//    option table marked `store`) and the encrypted S3 keys (aws-access-key-id,
//    aws-secret-access-key, aws-session-token) apply to the source of the mount that gives
//    them; set in runtimeOptions they apply to every source;
//  - every other option belongs to the whole mount: runtimeOptions, overridden by the
//    mounts' own options, which must agree with each other;
//  - `sharedOptions` / `sharedEncryptOptions` apply to every mount under its own options
//    (Fluid already folds them into each mount's options; hand-written files may not).
// Anything tierfs does not know goes to libfuse, which refuses what it does not know either.
// Encrypted options arrive as paths of files holding the secret (an absolute path must be
// a readable file), or, in Fluid's "secret" config storage, as the value itself; an
// `encryptOptions` list ({name, valueFrom.secretKeyRef {name, key}}) is read from
// <secrets_dir>/<secret>/<key>, where Fluid mounts secrets. Secrets are never printed.
#pragma once

#include <string>

#include "cli/mount_command.h"
#include "common/status.h"

namespace tierfs {

inline constexpr const char* kFluidConfigPath = "/etc/fluid/config/config.json";
inline constexpr const char* kFluidSecretsDir = "/etc/fluid/secrets";

struct FluidMount {
  MountConfig config;        // sources resolved (ResolveSources has run)
  std::string command_line;  // the equivalent `tierfs mount`, secrets left out
};

// Translates the text of Fluid's config.json. Errors are one line naming the field at fault.
Result<FluidMount> FluidMountFromConfig(const std::string& json_text,
                                        const std::string& secrets_dir = kFluidSecretsDir);

// `tierfs fluid-mount`: reads `path`, then mounts in the foreground at targetPath (created
// if missing) until SIGTERM, which unmounts. With `dry_run`, prints the mount command
// instead. Returns the exit code.
int RunFluidMount(const std::string& path, bool dry_run);

}  // namespace tierfs
