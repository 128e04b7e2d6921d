#include "tiers/uring_io.h"

#include <liburing.h>
#include <unistd.h>

namespace tierfs {
namespace {

class ThreadRing {
 public:
  ThreadRing() { Init(); }
  ~ThreadRing() {
    if (ok_ && pid_ == ::getpid()) io_uring_queue_exit(&ring_);
  }
  ThreadRing(const ThreadRing&) = delete;
  ThreadRing& operator=(const ThreadRing&) = delete;

  // One read or write; returns bytes transferred or -errno.
  ssize_t Submit(bool write, int fd, void* buf, size_t len, uint64_t offset) {
    // A forked child inherits the parent's ring mappings; sharing them would mix up both
    // processes' completions, so a child sets up its own ring.
    if (pid_ != ::getpid()) Init();
    if (!ok_) {
      return write ? Check(::pwrite(fd, buf, len, static_cast<off_t>(offset)))
                   : Check(::pread(fd, buf, len, static_cast<off_t>(offset)));
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
    if (sqe == nullptr) return -EBUSY;
    if (write) {
      io_uring_prep_write(sqe, fd, buf, static_cast<unsigned>(len), offset);
    } else {
      io_uring_prep_read(sqe, fd, buf, static_cast<unsigned>(len), offset);
    }
    int rc = io_uring_submit(&ring_);
    if (rc < 0) return rc;
    io_uring_cqe* cqe = nullptr;
    do {
      rc = io_uring_wait_cqe(&ring_, &cqe);
    } while (rc == -EINTR);
    if (rc < 0) return rc;
    ssize_t res = cqe->res;
    io_uring_cqe_seen(&ring_, cqe);
    return res;
  }

 private:
  void Init() {
    pid_ = ::getpid();
    ok_ = io_uring_queue_init(8, &ring_, 0) == 0;
  }
  static ssize_t Check(ssize_t n) { return n < 0 ? -errno : n; }
  io_uring ring_;
  bool ok_ = false;
  pid_t pid_ = 0;
};

ThreadRing& Ring() {
  thread_local ThreadRing ring;
  return ring;
}

Result<size_t> Transfer(bool write, int fd, char* buf, size_t len, uint64_t offset) {
  size_t done = 0;
  while (done < len) {
    ssize_t n = Ring().Submit(write, fd, buf + done, len - done, offset + done);
    if (n == -EINTR || n == -EAGAIN) continue;
    if (n < 0) return Status::FromErrno(static_cast<int>(-n), write ? "cache write" : "cache read");
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  return done;
}

}  // namespace

Result<size_t> UringRead(int fd, void* buf, size_t len, uint64_t offset) {
  return Transfer(false, fd, static_cast<char*>(buf), len, offset);
}

Result<size_t> UringWrite(int fd, const void* buf, size_t len, uint64_t offset) {
  return Transfer(true, fd, static_cast<char*>(const_cast<void*>(buf)), len, offset);
}

}  // namespace tierfs
