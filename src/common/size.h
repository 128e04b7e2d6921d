// Human sizes: "512M", "4G", "2Gi", "1048576", "64k". Binary multiples (K = 1024) for
// every suffix, as mount tools (rclone, s3fs, juicefs) do; an optional trailing "i"/"B"/"iB"
// is accepted. Rejects negatives, fractions that do not fit, overflow and garbage.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "common/status.h"

namespace tierfs {

Result<uint64_t> ParseSize(std::string_view text);
std::string FormatSize(uint64_t bytes);  // "1.5 GiB"

}  // namespace tierfs
