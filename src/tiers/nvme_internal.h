// Internals shared by the NVMe tier's three files: nvme_tier.cc (lookups, puts, stats),
// nvme_recovery.cc (layout and start-up), nvme_writer.cc (the writer thread: batching,
// sealing, eviction). Not for other users.
#pragma once

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <string>

#include "tiers/segment_format.h"

namespace tierfs::nvme_internal {

inline constexpr uint64_t kMaxSegment = 256ULL << 20;
inline constexpr int kLayoutFormat = 1;

// A zeroed buffer aligned for O_DIRECT, rounded up to whole 4 KiB units.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : size(RoundUp(n, kUnit)) {
    data = static_cast<char*>(std::aligned_alloc(kUnit, size));
    if (data == nullptr) throw std::bad_alloc();
    std::memset(data, 0, size);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data;
  size_t size;
};

}  // namespace tierfs::nvme_internal
