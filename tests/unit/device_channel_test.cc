// DeviceChannel without a kernel: INIT requests and replies over pipes standing for
// /dev/fuse, backing-file registration through fake ioctls. The kernel's rules it keeps:
// passthrough is accepted only when offered, an inode's opens are all cached or all
// passthrough, and each backing id is closed once, after its last open.
#include "fuse/device_channel.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/fuse.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <thread>
#include <vector>

namespace tierfs {
namespace {

constexpr uint32_t kInitExt = 1u << 30;
constexpr uint32_t kPassthroughFlag2 = 1u << 5;

struct Pipe {
  int fd[2] = {-1, -1};
  Pipe() { EXPECT_EQ(::pipe2(fd, O_CLOEXEC), 0); }
  ~Pipe() {
    ::close(fd[0]);
    ::close(fd[1]);
  }
};

// The kernel's INIT request (offering passthrough or not) read through the channel.
void ReadInit(DeviceChannel& ch, bool offer, uint64_t unique = 7) {
  Pipe p;
  fuse_in_header in{};
  fuse_init_in init{};
  in.len = sizeof in + sizeof init;
  in.opcode = FUSE_INIT;
  in.unique = unique;
  init.major = 7;
  init.minor = 40;
  init.flags = kInitExt;
  init.flags2 = offer ? kPassthroughFlag2 : 0;
  char buf[sizeof in + sizeof init];
  std::memcpy(buf, &in, sizeof in);
  std::memcpy(buf + sizeof in, &init, sizeof init);
  ASSERT_EQ(::write(p.fd[1], buf, sizeof buf), static_cast<ssize_t>(sizeof buf));
  char got[256];
  ASSERT_EQ(ch.ReadRequest(p.fd[0], got, sizeof got), static_cast<ssize_t>(sizeof buf));
  EXPECT_EQ(std::memcmp(got, buf, sizeof buf), 0) << "a request must reach libfuse unchanged";
}

// Our INIT reply (`flags`) written through the channel; returns what reached the kernel.
fuse_init_out WriteInitReply(DeviceChannel& ch, uint32_t flags, uint64_t unique = 7) {
  Pipe p;
  fuse_out_header out{};
  fuse_init_out init{};
  out.len = sizeof out + sizeof init;
  out.unique = unique;
  init.major = 7;
  init.minor = 38;
  init.flags = flags;
  iovec iov[2] = {{&out, sizeof out}, {&init, sizeof init}};
  EXPECT_EQ(ch.WriteReply(p.fd[1], iov, 2), static_cast<ssize_t>(sizeof out + sizeof init));
  char got[sizeof out + sizeof init];
  EXPECT_EQ(::read(p.fd[0], got, sizeof got), static_cast<ssize_t>(sizeof got));
  fuse_init_out sent;
  std::memcpy(&sent, got + sizeof out, sizeof sent);
  return sent;
}

TEST(DeviceChannel, AcceptsPassthroughAtInitOnlyWhenTheKernelOffersIt) {
  {
    DeviceChannel ch(-1, 2, true, nullptr);
    EXPECT_FALSE(ch.usable()) << "usable before INIT";
    ReadInit(ch, true);
    const fuse_init_out sent = WriteInitReply(ch, 0);
    EXPECT_TRUE(sent.flags2 & kPassthroughFlag2);
    EXPECT_TRUE(sent.flags & kInitExt);
    EXPECT_EQ(sent.unused[0], 2u) << "max_stack_depth";
    EXPECT_TRUE(ch.usable());
    EXPECT_EQ(ch.why_not(), "");
  }
  {
    DeviceChannel ch(-1, 1, true, nullptr);
    ReadInit(ch, false);
    const fuse_init_out sent = WriteInitReply(ch, 0);
    EXPECT_EQ(sent.flags2, 0u);
    EXPECT_EQ(sent.flags, 0u);
    EXPECT_FALSE(ch.usable());
    EXPECT_NE(ch.why_not().find("does not offer"), std::string::npos) << ch.why_not();
  }
  {
    DeviceChannel ch(-1, 1, true, nullptr);
    ReadInit(ch, true);
    EXPECT_EQ(WriteInitReply(ch, FUSE_WRITEBACK_CACHE).flags2, 0u);
    EXPECT_FALSE(ch.usable());
    EXPECT_NE(ch.why_not().find("writeback"), std::string::npos) << ch.why_not();
  }
  {
    DeviceChannel ch(-1, 1, false, nullptr);  // not asked for: the reply is left alone
    ReadInit(ch, true);
    EXPECT_EQ(WriteInitReply(ch, 0).flags2, 0u);
    EXPECT_FALSE(ch.usable());
  }
  {
    DeviceChannel ch(-1, 1, true, nullptr);  // a reply to another request is not INIT's
    ReadInit(ch, true, 7);
    EXPECT_EQ(WriteInitReply(ch, 0, 8).flags2, 0u);
    EXPECT_FALSE(ch.usable());
  }
}

// Fake registration: the backing file's fd is the inode number; ids count up from 1.
struct FakeKernel {
  std::mutex mu;
  int next_id = 1;
  int refuse_errno = 0;
  std::map<int, uint64_t> live;                // id -> inode
  std::map<int, int> closed;                   // id -> times closed
  std::map<uint64_t, int>* holders = nullptr;  // inode -> opens the test holds
  bool closed_while_held = false;

  BackingIoctls Ioctls() {
    return {[this](int fd) {
              std::lock_guard lock(mu);
              if (refuse_errno != 0) {
                errno = refuse_errno;
                return -1;
              }
              live[next_id] = static_cast<uint64_t>(fd);
              return next_id++;
            },
            [this](int id) {
              std::lock_guard lock(mu);
              ++closed[id];
              if (holders != nullptr && (*holders)[live[id]] > 0) closed_while_held = true;
              live.erase(id);
            }};
  }
};

TEST(DeviceChannel, AnInodesOpensAreAllCachedOrAllPassthrough) {
  FakeKernel k;
  DeviceChannel ch(-1, 1, true, nullptr, k.Ioctls());
  ReadInit(ch, true);
  WriteInitReply(ch, 0);
  ASSERT_TRUE(ch.usable());
  int asked = 0;
  auto pin = std::make_shared<int>(0);
  std::weak_ptr<int> pinned = pin;
  auto none = [&] {
    ++asked;
    return BackingFile{};
  };
  auto file = [&] {
    ++asked;
    return BackingFile{42, pin};
  };
  EXPECT_FALSE(ch.Open(42, none).passthrough);  // not cached yet: through the daemon
  EXPECT_FALSE(ch.Open(42, file).passthrough) << "passthrough beside a cached open";
  EXPECT_EQ(asked, 1) << "an inode with cached opens must not ask for a backing file";
  ch.Release(42, false);
  ch.Release(42, false);
  const auto first = ch.Open(42, file);
  ASSERT_TRUE(first.passthrough);
  pin.reset();  // the channel holds the pin now
  const auto second = ch.Open(42, file);
  EXPECT_TRUE(second.passthrough);
  EXPECT_EQ(second.backing_id, first.backing_id);
  EXPECT_EQ(asked, 2) << "a second passthrough open registered another backing file";
  EXPECT_TRUE(ch.Open(42, none).passthrough) << "a cached open beside passthrough ones";
  ch.Release(42, true);
  ch.Release(42, true);
  EXPECT_TRUE(k.closed.empty()) << "backing id closed while an open remains";
  EXPECT_FALSE(pinned.expired());
  ch.Release(42, true);
  EXPECT_EQ(k.closed[first.backing_id], 1);
  EXPECT_TRUE(pinned.expired()) << "the backing file's pin outlived its last open";
  EXPECT_EQ(ch.live_backing_files(), 0u);
  EXPECT_EQ(ch.counters().backing_opens.load(), 1u);
}

TEST(DeviceChannel, ARegistrationRefusedForPrivilegeTurnsPassthroughOff) {
  FakeKernel k;
  k.refuse_errno = EPERM;
  DeviceChannel ch(-1, 1, true, nullptr, k.Ioctls());
  ReadInit(ch, true);
  WriteInitReply(ch, 0);
  int asked = 0;
  auto file = [&] {
    ++asked;
    return BackingFile{7, nullptr};
  };
  EXPECT_FALSE(ch.Open(7, file).passthrough);
  EXPECT_FALSE(ch.usable());
  EXPECT_NE(ch.why_not().find("CAP_SYS_ADMIN"), std::string::npos) << ch.why_not();
  EXPECT_EQ(ch.counters().failures.load(), 1u);
  ch.Release(7, false);
  EXPECT_FALSE(ch.Open(8, file).passthrough);
  EXPECT_EQ(asked, 1) << "asked for backing files after passthrough turned off";
}

// Many threads opening and releasing a few inodes: every backing id registered is closed
// exactly once, never while an open of its inode is held, and nothing stays registered.
TEST(DeviceChannel, ConcurrentOpensCloseEachBackingIdOnceAfterItsLastOpen) {
  FakeKernel k;
  std::map<uint64_t, int> holders;  // guarded by k.mu (the fake reads it when closing)
  k.holders = &holders;
  DeviceChannel ch(-1, 1, true, nullptr, k.Ioctls());
  ReadInit(ch, true);
  WriteInitReply(ch, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        const uint64_t ino = 1 + static_cast<uint64_t>((t + i) % 4);
        const auto d = ch.Open(ino, [&] {
          return BackingFile{static_cast<int>(ino), std::make_shared<int>(0)};
        });
        if (d.passthrough) {
          std::lock_guard lock(k.mu);
          ++holders[ino];
        }
        std::this_thread::yield();  // reading meanwhile
        if (d.passthrough) {
          std::lock_guard lock(k.mu);
          --holders[ino];
        }
        ch.Release(ino, d.passthrough);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_FALSE(k.closed_while_held);
  EXPECT_TRUE(k.live.empty()) << k.live.size() << " backing ids left registered";
  EXPECT_EQ(ch.live_backing_files(), 0u);
  EXPECT_GT(k.closed.size(), 1u);
  for (const auto& [id, times] : k.closed) EXPECT_EQ(times, 1) << "backing id " << id;
  EXPECT_EQ(ch.counters().backing_opens.load(), k.closed.size());
}

}  // namespace
}  // namespace tierfs
