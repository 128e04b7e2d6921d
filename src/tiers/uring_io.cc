#include "tiers/uring_io.h"

#include <liburing.h>
#include <unistd.h>

#include <algorithm>
#include <cstdlib>
#include <string_view>

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

  static constexpr unsigned kDepth = 32;

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

  // Up to kDepth reads in one submission; res[i] gets bytes read or -errno.
  void SubmitReads(std::span<ReadOp> ops, ssize_t* res) {
    if (pid_ != ::getpid()) Init();
    if (!ok_) {
      std::fill(res, res + ops.size(), -EINPROGRESS);
      PreadPending(ops, res);
      return;
    }
    size_t queued = 0;
    for (size_t i = 0; i < ops.size(); ++i) {
      io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
      if (sqe == nullptr) {
        res[i] = -EBUSY;
        continue;
      }
      io_uring_prep_read(sqe, ops[i].fd, ops[i].buf, static_cast<unsigned>(ops[i].len),
                         ops[i].offset);
      io_uring_sqe_set_data64(sqe, i);
      res[i] = -EINPROGRESS;
      ++queued;
    }
    // The kernel may take only part of the batch (or none, on error): what it did not
    // take is read with pread below, once the ring, which still holds it, is replaced.
    int submitted = io_uring_submit(&ring_);
    if (submitted < 0) submitted = 0;
    for (int done = 0; done < submitted;) {
      io_uring_cqe* cqe = nullptr;
      int rc = io_uring_wait_cqe(&ring_, &cqe);
      if (rc == -EINTR) continue;
      if (rc < 0) {
        // Cannot reap: tear the ring down (its outstanding reads are cancelled) rather
        // than leave completions for buffers the caller is about to give back.
        Reset();
        std::replace(res, res + ops.size(), ssize_t{-EINPROGRESS}, ssize_t{rc});
        return;
      }
      res[io_uring_cqe_get_data64(cqe)] = cqe->res;
      io_uring_cqe_seen(&ring_, cqe);
      ++done;
    }
    if (static_cast<size_t>(submitted) < queued) {
      Reset();
      PreadPending(ops, res);
    }
  }

 private:
  void Init() {
    pid_ = ::getpid();
    // TIERFS_IO_URING=0 keeps to pread/pwrite (where io_uring is present but unwanted).
    const char* env = std::getenv("TIERFS_IO_URING");
    ok_ = !(env != nullptr && std::string_view(env) == "0") &&
          io_uring_queue_init(kDepth, &ring_, 0) == 0;
  }
  // A new ring; whatever the old one still held is cancelled.
  void Reset() {
    io_uring_queue_exit(&ring_);
    Init();
  }
  // Reads each op still marked -EINPROGRESS with pread.
  static void PreadPending(std::span<ReadOp> ops, ssize_t* res) {
    for (size_t i = 0; i < ops.size(); ++i) {
      if (res[i] != -EINPROGRESS) continue;
      res[i] = Check(::pread(ops[i].fd, ops[i].buf, ops[i].len, static_cast<off_t>(ops[i].offset)));
    }
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

void UringReadBatch(std::span<ReadOp> ops) {
  ssize_t res[ThreadRing::kDepth];
  for (size_t first = 0; first < ops.size(); first += ThreadRing::kDepth) {
    std::span<ReadOp> part =
        ops.subspan(first, std::min<size_t>(ThreadRing::kDepth, ops.size() - first));
    Ring().SubmitReads(part, res);
    for (size_t i = 0; i < part.size(); ++i) {
      ReadOp& op = part[i];
      if (res[i] >= 0 && static_cast<size_t>(res[i]) == op.len) {
        op.result = op.len;
      } else if (res[i] > 0) {
        // Short: finish it alone (end of file, or a transfer the kernel split).
        auto rest = Transfer(false, op.fd, static_cast<char*>(op.buf) + res[i], op.len - res[i],
                             op.offset + res[i]);
        op.result = rest.ok() ? Result<size_t>(static_cast<size_t>(res[i]) + *rest) : rest;
      } else if (res[i] == 0) {
        op.result = size_t{0};
      } else {
        // EINTR/EAGAIN/EBUSY: try it alone, which retries those.
        op.result =
            res[i] == -EINTR || res[i] == -EAGAIN || res[i] == -EBUSY
                ? Transfer(false, op.fd, static_cast<char*>(op.buf), op.len, op.offset)
                : Result<size_t>(Status::FromErrno(static_cast<int>(-res[i]), "cache read"));
      }
    }
  }
}

Result<size_t> UringRead(int fd, void* buf, size_t len, uint64_t offset) {
  return Transfer(false, fd, static_cast<char*>(buf), len, offset);
}

Result<size_t> UringWrite(int fd, const void* buf, size_t len, uint64_t offset) {
  return Transfer(true, fd, static_cast<char*>(const_cast<void*>(buf)), len, offset);
}

}  // namespace tierfs
