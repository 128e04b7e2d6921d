// File descriptors and whole reads and writes: one place for the loops every caller needs.
//
// UniqueFd owns a descriptor and closes it once. The Full functions retry short transfers
// and EINTR; an error is a Status with the errno of the call that failed (never a stale
// one: a write that makes no progress is ENOSPC/EIO, not whatever errno held) and `what`
// (a path, usually) in its message.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "common/status.h"

namespace tierfs {

class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    if (this != &other) reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives the descriptor up without closing it.
  int release() {
    const int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the descriptor held (if any) and holds `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// Reads up to `n` bytes at `offset`: fewer only where the file ends.
[[nodiscard]] Result<size_t> PreadFull(int fd, void* buf, size_t n, uint64_t offset,
                                       const std::string& what);
// Reads exactly `n` bytes at `offset`; a file that ends first is EIO ("... is truncated").
[[nodiscard]] Status PreadExact(int fd, void* buf, size_t n, uint64_t offset,
                                const std::string& what);
// Reads exactly `n` bytes from the file position.
[[nodiscard]] Status ReadExact(int fd, void* buf, size_t n, const std::string& what);
// Writes all `n` bytes at `offset`.
[[nodiscard]] Status PwriteFull(int fd, const void* buf, size_t n, uint64_t offset,
                                const std::string& what);
// Writes all `n` bytes at the file position (O_APPEND files, pipes).
[[nodiscard]] Status WriteFull(int fd, const void* buf, size_t n, const std::string& what);

}  // namespace tierfs
