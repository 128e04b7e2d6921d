// DeviceChannel: the session's device I/O (fuse_session_custom_io), standing between
// libfuse and /dev/fuse to turn on what libfuse 3.14 has no API for: FUSE passthrough
// (Linux 6.9+) and FUSE over io_uring (uring_transport.h).
//
// With passthrough the kernel reads an open file's bytes straight from a "backing file"
// the daemon registered: no READ reaches the daemon, reads and mmap run at the backing
// file's speed. libfuse 3.14 cannot ask for it, so this class does it on the device
// through fuse_session_custom_io():
//  - INIT: the kernel's request says whether it offers FUSE_PASSTHROUGH (flags2 bit 5,
//    read only with FUSE_INIT_EXT); our reply is rewritten to accept it with a
//    max_stack_depth (1, or 2 when backing files live on a stacked fs such as overlayfs).
//  - Backing files are registered with ioctl(FUSE_DEV_IOC_BACKING_OPEN) (a backing id
//    > 0; needs CAP_SYS_ADMIN in the initial user namespace) and released with
//    FUSE_DEV_IOC_BACKING_CLOSE.
//  - OPEN replies carry FOPEN_PASSTHROUGH and the backing id (fuse_open_out's padding in
//    3.14's headers), sent raw with fuse_reply_buf().
//
// Kernel rules kept here: while an inode has open files they are all cached-mode or all
// passthrough (mixing fails the open), so an inode with cached opens gets cached opens
// until they are released, and one with passthrough opens shares their backing id;
// FOPEN_KEEP_CACHE is never combined with passthrough.
//
// Thread-safe.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <unordered_map>

#include "common/mutex.h"

struct iovec;

namespace tierfs {
class UringTransport;
}

namespace tierfs {

// A file whose byte N is the object's byte N, and what keeps it (and its room in the
// cache) alive while the kernel reads it.
struct BackingFile {
  int fd = -1;  // owned by the provider; valid while `pin` lives
  std::shared_ptr<void> pin;
};

// Registers backing files with the kernel: ioctl(FUSE_DEV_IOC_BACKING_OPEN / _CLOSE) on
// the device by default; tests give fakes. `open` returns a backing id > 0, or -1 with
// errno set.
struct BackingIoctls {
  std::function<int(int fd)> open;
  std::function<void(int backing_id)> close;
};

struct PassthroughCounters {
  std::atomic<uint64_t> opens{0};          // opens answered with passthrough
  std::atomic<uint64_t> cached_opens{0};   // opens served through the daemon
  std::atomic<uint64_t> backing_opens{0};  // backing ids registered
  std::atomic<uint64_t> failures{0};       // registrations the kernel refused
};

class DeviceChannel {
 public:
  // `dev_fd`: the session's /dev/fuse descriptor. `stack_depth` as above. `passthrough`:
  // ask for passthrough. `uring`: if not null, ask for FUSE over io_uring too and start it
  // once INIT is answered; replies of requests it serves are committed through it.
  DeviceChannel(int dev_fd, int stack_depth, bool passthrough, UringTransport* uring,
                BackingIoctls ioctls = {});
  ~DeviceChannel();
  DeviceChannel(const DeviceChannel&) = delete;
  DeviceChannel& operator=(const DeviceChannel&) = delete;

  // The kernel accepted passthrough at INIT and no registration has been refused for
  // lack of privilege. False until INIT has been answered.
  bool usable() const { return usable_.load(std::memory_order_relaxed); }
  // Why passthrough is off ("" while usable or before INIT).
  std::string why_not() const;
  // FUSE over io_uring was accepted at INIT and serves requests.
  bool uring_on() const { return uring_on_.load(std::memory_order_relaxed); }

  struct Decision {
    bool passthrough = false;
    int backing_id = 0;
  };
  // An open of `ino`: passthrough with a backing id when `backing()` provides a file (or
  // the inode already has one), cached otherwise. Every open is matched by Release().
  Decision Open(uint64_t ino, const std::function<BackingFile()>& backing);
  void Release(uint64_t ino, bool passthrough);

  const PassthroughCounters& counters() const { return counters_; }
  uint64_t live_backing_files() const;

  // The session's device I/O (fuse_custom_io's read and writev): requests and replies
  // pass unchanged except INIT, which is read and rewritten as above.
  ssize_t ReadRequest(int fd, void* buf, size_t len);
  ssize_t WriteReply(int fd, struct iovec* iov, int count);

 private:
  void Refuse(const std::string& why);

  struct InodeOpens {
    uint32_t cached = 0;
    uint32_t passthrough = 0;
    int backing_id = 0;
    std::shared_ptr<void> pin;
  };
  static constexpr size_t kShards = 16;
  struct Shard {
    mutable Mutex mu;
    std::unordered_map<uint64_t, InodeOpens> opens GUARDED_BY(mu);
  };

  const int stack_depth_;
  const bool want_passthrough_;
  UringTransport* const uring_;
  const BackingIoctls ioctls_;
  std::atomic<bool> kernel_offers_uring_{false}, uring_on_{false};
  std::atomic<uint64_t> init_unique_{0};  // the INIT request awaiting our reply
  std::atomic<bool> kernel_offers_{false}, usable_{false};
  mutable Mutex why_mu_;
  std::string why_ GUARDED_BY(why_mu_);
  Shard shards_[kShards];
  PassthroughCounters counters_;
};

// Whether this process may register backing files (CAP_SYS_ADMIN in its effective set; the
// kernel also wants the initial user namespace, which only the first open can tell).
bool HasSysAdmin();
// 2 when `dir` is on overlayfs (backing files one level down already), else 1.
int StackDepthFor(const std::string& dir);

}  // namespace tierfs
