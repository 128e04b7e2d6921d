// Wall-clock time as stored in indexes, pointers and metrics.
#pragma once

#include <chrono>
#include <cstdint>

namespace tierfs {

// Seconds since the Unix epoch.
inline int64_t UnixNow() {
  return std::chrono::duration_cast<std::chrono::seconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace tierfs
