// Positional file I/O through io_uring, one small ring per calling thread (created on first
// use, so no thread shares a submission queue and no lock is needed). Falls back to
// pread/pwrite where io_uring is unavailable, or with TIERFS_IO_URING=0 in the
// environment. Short transfers are retried to completion; the result is less than `len`
// only at end of file.
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>

#include "common/status.h"

namespace tierfs {

Result<size_t> UringRead(int fd, void* buf, size_t len, uint64_t offset);
Result<size_t> UringWrite(int fd, const void* buf, size_t len, uint64_t offset);

// Many reads at once: all are submitted together (one io_uring_enter per ring-full) and
// the call returns when every one has completed. Each op gets its own result in `result`
// (bytes read, short only at end of file, or the error).
struct ReadOp {
  int fd = -1;
  void* buf = nullptr;
  size_t len = 0;
  uint64_t offset = 0;
  Result<size_t> result = size_t{0};
};
void UringReadBatch(std::span<ReadOp> ops);

}  // namespace tierfs
