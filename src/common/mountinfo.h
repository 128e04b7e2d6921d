// Reads /proc/self/mountinfo: which filesystems are mounted where.
#pragma once

#include <string>
#include <vector>

namespace tierfs {

struct MountInfo {
  std::string device;      // "major:minor"
  std::string mountpoint;  // unescaped
  std::string fstype;      // e.g. "fuse.tierfs"
};

// In mount order (later entries are mounted on top of earlier ones).
std::vector<MountInfo> ReadMountInfo();

}  // namespace tierfs
