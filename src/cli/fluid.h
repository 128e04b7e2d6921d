// Fluid ThinRuntime support: `tierfs fluid-mount` is the entrypoint of the FUSE container
// Fluid starts for a Dataset whose ThinRuntimeProfile names tierfs. Fluid writes what to
// mount into /etc/fluid/config/config.json:
//
//   {"mounts": [{"mountPoint": "https://data.example.org/imagenet/", "name": "imagenet",
//                "options": {"cache-size": "200G", "aws-access-key-id":
//                "/etc/fluid/secrets/s3/id"}}],
//    "targetPath": "/runtime-mnt/thin/default/imagenet/thin-fuse",
//    "runtimeOptions": {"ram-size": "4G"}, "accessModes": ["ReadOnlyMany"]}
//
// One Dataset mount is one tierfs mount at targetPath. Options (runtimeOptions first, then
// the mount's own, which win) are tierfs mount options, spelled either way (cache-size or
// cache_size); anything tierfs does not know goes to libfuse, which refuses what it does
// not know either. Encrypted options arrive as paths of files holding the secret
// (aws-access-key-id, aws-secret-access-key, aws-session-token): they are read, never
// printed.
#pragma once

#include <map>
#include <string>

#include "cli/mount_command.h"
#include "common/status.h"

namespace tierfs {

inline constexpr const char* kFluidConfigPath = "/etc/fluid/config/config.json";

struct FluidMount {
  MountConfig config;
  std::map<std::string, std::string> env;  // AWS_* variables for the S3 credential chain
  std::string command_line;                // the equivalent `tierfs mount`, secrets left out
};

// Translates the text of Fluid's config.json. Errors name the field at fault.
Result<FluidMount> FluidMountFromConfig(const std::string& json_text);

// `tierfs fluid-mount`: reads `path`, then mounts in the foreground at targetPath (created
// if missing) until SIGTERM, which unmounts. With `dry_run`, prints the mount command
// instead. Returns the exit code.
int RunFluidMount(const std::string& path, bool dry_run);

}  // namespace tierfs
