#include "fuse/device_channel.h"

#include <linux/fuse.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <vector>

#include "common/log.h"
#include "fuse/uring_transport.h"

namespace tierfs {
namespace {

// Kernel ABI newer than the headers Debian 12 ships (linux/fuse.h 7.38).
constexpr uint64_t kPassthroughFlag2 = 1u << 5;  // FUSE_PASSTHROUGH >> 32
constexpr uint64_t kOverIoUringFlag2 = 1u << 9;  // FUSE_OVER_IO_URING >> 32
constexpr uint32_t kInitExt = 1u << 30;          // FUSE_INIT_EXT
struct BackingMap {
  int32_t fd;
  uint32_t flags;
  uint64_t padding;
};
constexpr unsigned long kBackingOpen = _IOW(229, 1, BackingMap);
constexpr unsigned long kBackingClose = _IOW(229, 2, uint32_t);
constexpr uint32_t kOverlayfsMagic = 0x794c7630;

BackingIoctls DeviceIoctls(int dev_fd) {
  return {[dev_fd](int fd) {
            BackingMap map{fd, 0, 0};
            return ::ioctl(dev_fd, kBackingOpen, &map);
          },
          [dev_fd](int id) { ::ioctl(dev_fd, kBackingClose, &id); }};
}

}  // namespace

DeviceChannel::DeviceChannel(int dev_fd, int stack_depth, bool passthrough, UringTransport* uring,
                             BackingIoctls ioctls)
    : stack_depth_(stack_depth),
      want_passthrough_(passthrough),
      uring_(uring),
      ioctls_(ioctls.open ? std::move(ioctls) : DeviceIoctls(dev_fd)) {}

DeviceChannel::~DeviceChannel() {
  for (Shard& shard : shards_) {
    MutexLock lock(shard.mu);
    for (auto& [ino, o] : shard.opens) {
      if (o.backing_id > 0) ioctls_.close(o.backing_id);
    }
  }
}

std::string DeviceChannel::why_not() const {
  MutexLock lock(why_mu_);
  return why_;
}

void DeviceChannel::Refuse(const std::string& why) {
  {
    MutexLock lock(why_mu_);
    if (!why_.empty()) return;
    why_ = why;
  }
  usable_ = false;
  TLOG_INFO("passthrough off: {}; cached files are read through the daemon", why);
}

ssize_t DeviceChannel::ReadRequest(int fd, void* buf, size_t len) {
  const ssize_t n = ::read(fd, buf, len);
  if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) return n;
  fuse_in_header in;
  std::memcpy(&in, buf, sizeof in);
  if (in.opcode != FUSE_INIT) return n;
  fuse_init_in init{};
  const size_t body = static_cast<size_t>(n) - sizeof in;
  std::memcpy(&init, static_cast<char*>(buf) + sizeof in, std::min(body, sizeof init));
  const bool ext = (init.flags & kInitExt) && body >= offsetof(fuse_init_in, flags2) + 4;
  kernel_offers_ = ext && (init.flags2 & kPassthroughFlag2);
  kernel_offers_uring_ = ext && (init.flags2 & kOverIoUringFlag2);
  init_unique_ = in.unique;
  return n;
}

ssize_t DeviceChannel::WriteReply(int fd, struct iovec* iov, int count) {
  ssize_t committed = 0;
  if (uring_ != nullptr && uring_->Commit(iov, count, &committed)) return committed;
  const uint64_t unique = init_unique_.load();
  if (unique == 0 || count < 2 || iov[0].iov_len < sizeof(fuse_out_header)) {
    return ::writev(fd, iov, count);
  }
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != unique) return ::writev(fd, iov, count);
  init_unique_ = 0;
  if (out.error != 0 || iov[1].iov_len < sizeof(fuse_init_out)) return ::writev(fd, iov, count);
  fuse_init_out init;
  std::memcpy(&init, iov[1].iov_base, sizeof init);
  bool passthrough = false;
  if (want_passthrough_ && !kernel_offers_) {
    Refuse("the kernel does not offer it (Linux 6.9+ with CONFIG_FUSE_PASSTHROUGH)");
  } else if (want_passthrough_ && (init.flags & FUSE_WRITEBACK_CACHE)) {
    Refuse("the writeback cache is on");
  } else if (want_passthrough_) {
    init.flags2 |= kPassthroughFlag2;
    init.unused[0] = static_cast<uint32_t>(stack_depth_);  // max_stack_depth
    passthrough = true;
  }
  const bool uring = uring_ != nullptr && kernel_offers_uring_;
  if (uring_ != nullptr && !uring) {
    TLOG_INFO("fuse over io_uring off: the kernel does not offer it; requests use /dev/fuse");
  }
  if (uring) init.flags2 |= kOverIoUringFlag2;
  if (passthrough || uring) init.flags |= kInitExt;
  std::vector<iovec> patched(iov, iov + count);
  patched[1].iov_base = &init;
  const ssize_t n = ::writev(fd, patched.data(), count);
  if (n < 0) return n;
  if (passthrough) usable_ = true;
  if (uring) {
    uring_on_ = true;
    uring_->Start();
  }
  return n;
}

DeviceChannel::Decision DeviceChannel::Open(uint64_t ino,
                                            const std::function<BackingFile()>& backing) {
  Shard& shard = shards_[ino % kShards];
  MutexLock lock(shard.mu);
  InodeOpens& o = shard.opens[ino];
  if (o.passthrough > 0) {
    ++o.passthrough;
    ++counters_.opens;
    return {true, o.backing_id};
  }
  if (o.cached == 0 && usable()) {
    BackingFile file = backing();
    if (file.fd >= 0) {
      const int id = ioctls_.open(file.fd);
      if (id > 0) {
        ++counters_.backing_opens;
        ++counters_.opens;
        o.passthrough = 1;
        o.backing_id = id;
        o.pin = std::move(file.pin);
        return {true, id};
      }
      ++counters_.failures;
      if (errno == EPERM) {
        Refuse("registering a backing file needs CAP_SYS_ADMIN in the initial user namespace");
      } else {
        TLOG_WARN("passthrough: the kernel refused a backing file: {}", std::strerror(errno));
      }
    }
  }
  ++o.cached;
  ++counters_.cached_opens;
  return {};
}

void DeviceChannel::Release(uint64_t ino, bool passthrough) {
  Shard& shard = shards_[ino % kShards];
  MutexLock lock(shard.mu);
  auto it = shard.opens.find(ino);
  if (it == shard.opens.end()) return;
  InodeOpens& o = it->second;
  if (passthrough && o.passthrough > 0 && --o.passthrough == 0) {
    ioctls_.close(o.backing_id);
    o.backing_id = 0;
    o.pin.reset();
  } else if (!passthrough && o.cached > 0) {
    --o.cached;
  }
  if (o.passthrough == 0 && o.cached == 0) shard.opens.erase(it);
}

uint64_t DeviceChannel::live_backing_files() const {
  uint64_t n = 0;
  for (const Shard& shard : shards_) {
    MutexLock lock(shard.mu);
    for (const auto& [ino, o] : shard.opens) n += o.backing_id > 0;
  }
  return n;
}

bool HasSysAdmin() {
  std::ifstream in("/proc/self/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("CapEff:", 0) != 0) continue;
    const uint64_t caps = std::stoull(line.substr(7), nullptr, 16);
    return caps & (1ULL << 21);  // CAP_SYS_ADMIN
  }
  return false;
}

int StackDepthFor(const std::string& dir) {
  struct statfs s {};
  if (::statfs(dir.c_str(), &s) == 0 && static_cast<uint32_t>(s.f_type) == kOverlayfsMagic) {
    return 2;
  }
  return 1;
}

}  // namespace tierfs
