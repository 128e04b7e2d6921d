#include "common/fd.h"

#include <unistd.h>

#include <cerrno>

namespace tierfs {
namespace {

// The loop of every Full function: `step(done)` transfers from byte `done` on and returns
// what read/write returned. Stops at `n`, at an error, or (reads) where the file ends.
template <typename Step>
Result<size_t> Loop(size_t n, bool write, const std::string& what, Step step) {
  size_t done = 0;
  while (done < n) {
    const ssize_t r = step(done);
    if (r < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(
          errno, std::string(write ? "cannot write '" : "cannot read '") + what + "'");
    }
    if (r == 0) {
      if (!write) break;  // the end of the file
      return Status::FromErrno(ENOSPC, "cannot write '" + what + "'");
    }
    done += static_cast<size_t>(r);
  }
  return done;
}

Status Exactly(Result<size_t> r, size_t n, const std::string& what) {
  if (!r.ok()) return r.status();
  if (*r != n) return Status::Io("'" + what + "' is truncated");
  return Status::Ok();
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Result<size_t> PreadFull(int fd, void* buf, size_t n, uint64_t offset, const std::string& what) {
  char* p = static_cast<char*>(buf);
  return Loop(n, false, what, [&](size_t done) {
    return ::pread(fd, p + done, n - done, static_cast<off_t>(offset + done));
  });
}

Status PreadExact(int fd, void* buf, size_t n, uint64_t offset, const std::string& what) {
  return Exactly(PreadFull(fd, buf, n, offset, what), n, what);
}

Status ReadExact(int fd, void* buf, size_t n, const std::string& what) {
  char* p = static_cast<char*>(buf);
  return Exactly(Loop(n, false, what, [&](size_t done) { return ::read(fd, p + done, n - done); }),
                 n, what);
}

Status PwriteFull(int fd, const void* buf, size_t n, uint64_t offset, const std::string& what) {
  const char* p = static_cast<const char*>(buf);
  return Loop(n, true, what,
              [&](size_t done) {
                return ::pwrite(fd, p + done, n - done, static_cast<off_t>(offset + done));
              })
      .status();
}

Status WriteFull(int fd, const void* buf, size_t n, const std::string& what) {
  const char* p = static_cast<const char*>(buf);
  return Loop(n, true, what, [&](size_t done) { return ::write(fd, p + done, n - done); }).status();
}

}  // namespace tierfs
