// Positional file I/O through io_uring, one small ring per calling thread (created on first
// use, so no thread shares a submission queue and no lock is needed). Falls back to
// pread/pwrite where io_uring is unavailable. Short transfers are retried to completion;
// the result is less than `len` only at end of file.
#pragma once

#include <cstddef>
#include <cstdint>

#include "common/status.h"

namespace tierfs {

Result<size_t> UringRead(int fd, void* buf, size_t len, uint64_t offset);
Result<size_t> UringWrite(int fd, const void* buf, size_t len, uint64_t offset);

}  // namespace tierfs
