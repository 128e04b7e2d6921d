// fuse_uring_probe: the round trip of one small FUSE request through /dev/fuse
// (read + writev, what libfuse and tierfs do) against FUSE over io_uring (Linux 6.14+,
// fuse.enable_uring=Y), measured with a minimal server on this machine.
//
//   fuse_uring_probe MOUNTPOINT [--ops N]     (root)
//
// For each transport it mounts a one-file filesystem (attributes never cached) and times
// stat() (one GETATTR each) and ioctl(TCGETS) on an open file (one IOCTL each: what
// Python's open() costs through isatty()). Prints microseconds per operation, medians of
// 5 rounds; each transport with servers that sleep until a request comes and with servers
// that poll (yielding the CPU), as tierfs's request loop does. The io_uring server registers one
// entry per CPU queue and serves each queue on its own thread; the /dev/fuse server serves on one
// thread, as a minimal baseline.
#include <fcntl.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

namespace {

// FUSE-over-io_uring ABI (7.42), newer than Debian 12's linux/fuse.h.
constexpr uint64_t kOverIoUring = 1ULL << 41;
constexpr uint32_t kInitExt = 1u << 30;
constexpr uint32_t kCmdRegister = 1, kCmdCommitAndFetch = 2;
struct UringEntInOut {
  uint64_t flags, commit_id;
  uint32_t payload_sz, padding;
  uint64_t reserved;
};
struct UringReqHeader {
  char in_out[128];
  char op_in[128];
  UringEntInOut ent;
};
struct UringCmdReq {
  uint64_t flags, commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
constexpr size_t kPayload = 128 << 10;

std::atomic<bool> g_uring{false};
std::atomic<bool> g_stop{false};
std::atomic<bool> g_init_done{false};
std::atomic<uint64_t> g_dev_served{0}, g_uring_served{0};
bool g_spin = false;  // servers poll (yielding) instead of sleeping, as tierfs's loop does
int g_fd = -1;

fuse_attr Attr(uint64_t ino) {
  fuse_attr a{};
  a.ino = ino;
  a.mode = ino == FUSE_ROOT_ID ? (S_IFDIR | 0755) : (S_IFREG | 0644);
  a.nlink = ino == FUSE_ROOT_ID ? 2 : 1;
  a.size = ino == FUSE_ROOT_ID ? 0 : 4096;
  a.blksize = 4096;
  return a;
}

// Serves one request: fills `out` (reply argument) and returns the error (<= 0), or 1 for
// requests that take no reply. `name` is LOOKUP's name.
int Handle(const fuse_in_header& in, const void* op_in, const char* name, std::string* out) {
  switch (in.opcode) {
    case FUSE_INIT: {
      fuse_init_in init;
      std::memcpy(&init, op_in, sizeof init);
      fuse_init_out o{};
      o.major = FUSE_KERNEL_VERSION;
      o.minor = init.minor;
      o.max_readahead = init.max_readahead;
      o.flags = kInitExt;
      o.flags2 = g_uring ? static_cast<uint32_t>(kOverIoUring >> 32) : 0;
      o.max_background = 16;
      o.congestion_threshold = 12;
      o.max_write = kPayload;
      o.time_gran = 1;
      o.max_pages = kPayload / 4096;
      out->assign(reinterpret_cast<char*>(&o), sizeof o);
      return 0;
    }
    case FUSE_LOOKUP: {
      if (std::strcmp(name, "f") != 0) return -ENOENT;
      fuse_entry_out e{};
      e.nodeid = 2;
      e.generation = 1;
      e.entry_valid = 3600;
      e.attr = Attr(2);
      out->assign(reinterpret_cast<char*>(&e), sizeof e);
      return 0;
    }
    case FUSE_GETATTR: {
      fuse_attr_out a{};  // attr_valid 0: every stat() asks again
      a.attr = Attr(in.nodeid);
      out->assign(reinterpret_cast<char*>(&a), sizeof a);
      return 0;
    }
    case FUSE_OPEN: {
      fuse_open_out o{};
      o.fh = 1;
      out->assign(reinterpret_cast<char*>(&o), sizeof o);
      return 0;
    }
    case FUSE_IOCTL:
      return -ENOTTY;
    case FUSE_RELEASE:
      return 0;
    case FUSE_FORGET:
    case FUSE_BATCH_FORGET:
    case FUSE_INTERRUPT:
      return 1;
    default:
      return -ENOSYS;
  }
}

// The /dev/fuse transport: read a request, writev the reply.
void DevLoop() {
  std::vector<char> buf(kPayload + 4096);
  std::string out;
  while (!g_stop) {
    const ssize_t n = ::read(g_fd, buf.data(), buf.size());
    if (n < 0 && (errno == EINTR || errno == ENOENT)) continue;
    if (n < 0 && errno == EAGAIN) {
      sched_yield();
      continue;
    }
    if (n < static_cast<ssize_t>(sizeof(fuse_in_header))) break;  // ENODEV: unmounted
    fuse_in_header in;
    std::memcpy(&in, buf.data(), sizeof in);
    const char* arg = buf.data() + sizeof in;
    if (std::getenv("PROBE_DEBUG"))
      std::fprintf(stderr, "dev: opcode %u len %u\n", in.opcode, in.len);
    out.clear();
    const int err = Handle(in, arg, arg, &out);
    if (err == 1) continue;
    fuse_out_header oh{static_cast<uint32_t>(sizeof oh + (err == 0 ? out.size() : 0)), err,
                       in.unique};
    iovec iov[2] = {{&oh, sizeof oh}, {out.data(), err == 0 ? out.size() : 0}};
    (void)!::writev(g_fd, iov, 2);
    if (in.opcode == FUSE_INIT) g_init_done = true;
    ++g_dev_served;
  }
}

// The io_uring transport for queue `qid`: REGISTER one entry, then COMMIT_AND_FETCH.
void UringLoop(int qid, std::atomic<int>* ready, std::atomic<int>* failed) {
  // A request is queued on the CPU its caller runs on: serving it on that CPU makes the
  // hand-over a local wake-up (no cross-CPU interrupt).
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(qid, &cpus);
  sched_setaffinity(0, sizeof cpus, &cpus);
  io_uring ring;
  io_uring_params p{};
  p.flags = IORING_SETUP_SQE128;
  if (int rc = io_uring_queue_init_params(8, &ring, &p); rc != 0) {
    std::fprintf(stderr, "io_uring_queue_init: %s\n", std::strerror(-rc));
    ++*failed;
    return;
  }
  auto* header = static_cast<UringReqHeader*>(std::aligned_alloc(4096, 4096));
  std::vector<char> payload(kPayload);
  std::memset(header, 0, 4096);
  iovec iov[2] = {{header, sizeof(UringReqHeader)}, {payload.data(), payload.size()}};
  auto submit = [&](uint32_t op, uint64_t commit_id) {
    io_uring_sqe* sqe = io_uring_get_sqe(&ring);
    std::memset(sqe, 0, 128);
    sqe->opcode = IORING_OP_URING_CMD;
    sqe->fd = g_fd;
    sqe->cmd_op = op;
    sqe->addr = reinterpret_cast<uint64_t>(iov);
    sqe->len = 2;
    auto* req = reinterpret_cast<UringCmdReq*>(sqe->cmd);
    req->qid = static_cast<uint16_t>(qid);
    req->commit_id = commit_id;
    io_uring_submit(&ring);
  };
  submit(kCmdRegister, 0);
  ++*ready;
  std::string out;
  while (!g_stop) {
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{0, 200 * 1000 * 1000};
    if (g_spin) {
      if (io_uring_peek_cqe(&ring, &cqe) != 0) {
        sched_yield();
        continue;
      }
    } else if (io_uring_wait_cqe_timeout(&ring, &cqe, &ts) != 0) {
      continue;
    }
    const int res = cqe->res;
    io_uring_cqe_seen(&ring, cqe);
    if (res < 0) {
      if (res != -ENOTCONN && !g_stop)
        std::fprintf(stderr, "queue %d: %s\n", qid, std::strerror(-res));
      ++*failed;
      break;
    }
    fuse_in_header in;
    std::memcpy(&in, header->in_out, sizeof in);
    out.clear();
    int err = Handle(in, header->op_in, payload.data(), &out);
    if (err == 1) err = 0;
    fuse_out_header oh{static_cast<uint32_t>(sizeof oh + (err == 0 ? out.size() : 0)), err,
                       in.unique};
    std::memcpy(header->in_out, &oh, sizeof oh);
    if (err == 0) std::memcpy(payload.data(), out.data(), out.size());
    header->ent.payload_sz = err == 0 ? static_cast<uint32_t>(out.size()) : 0;
    submit(kCmdCommitAndFetch, header->ent.commit_id);
    ++g_uring_served;
  }
  io_uring_queue_exit(&ring);
  std::free(header);
}

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

template <typename F>
double MicrosPerOp(int ops, F&& op) {
  std::vector<double> rounds;
  for (int r = 0; r < 5; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    for (int i = 0; i < ops; ++i) op();
    rounds.push_back(
        std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count() /
        ops);
  }
  return Median(rounds);
}

bool SetEnableUring(const char* v) {
  std::ofstream f("/sys/module/fuse/parameters/enable_uring");
  f << v;
  return static_cast<bool>(f);
}

int Run(const std::string& mnt, bool uring, int ops) {
  g_uring = uring;
  g_stop = false;
  g_fd = ::open("/dev/fuse", O_RDWR | O_CLOEXEC | (g_spin ? O_NONBLOCK : 0));
  if (g_fd < 0) return std::perror("/dev/fuse"), 1;
  const std::string opts =
      "fd=" + std::to_string(g_fd) + ",rootmode=40000,user_id=0,group_id=0,default_permissions";
  if (::mount("probe", mnt.c_str(), "fuse.probe", MS_NOSUID | MS_NODEV, opts.c_str()) != 0) {
    return std::perror("mount"), 1;
  }
  std::thread dev(DevLoop);
  std::vector<std::thread> queues;
  std::atomic<int> ready{0}, failed{0};
  const std::string file = mnt + "/f";
  struct stat st;
  // The first request waits for INIT (always by /dev/fuse); with io_uring accepted, every
  // request after INIT waits until each CPU's queue has an entry registered.
  g_init_done = false;
  g_dev_served = 0;
  g_uring_served = 0;
  std::thread first([&] {
    if (::stat(file.c_str(), &st) != 0) std::perror("stat");
  });
  while (!g_init_done) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  if (uring) {
    const int n = static_cast<int>(std::thread::hardware_concurrency());
    for (int q = 0; q < n; ++q) queues.emplace_back(UringLoop, q, &ready, &failed);
    while (ready + failed < n) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  first.join();
  const double getattr = MicrosPerOp(ops, [&] { ::stat(file.c_str(), &st); });
  const int fd = ::open(file.c_str(), O_RDONLY);
  termios t;
  const double ioctl = MicrosPerOp(ops, [&] { ::ioctl(fd, TCGETS, &t); });
  ::close(fd);
  std::fflush(stdout);
  std::printf(
      "%-10s %-6s getattr %.2f us/op, ioctl %.2f us/op (requests served: %llu by /dev/fuse, "
      "%llu by io_uring)%s\n",
      uring ? "io_uring" : "/dev/fuse", g_spin ? "spin" : "sleep", getattr, ioctl,
      static_cast<unsigned long long>(g_dev_served.load()),
      static_cast<unsigned long long>(g_uring_served.load()),
      failed > 0 ? " (io_uring queues failed)" : "");
  std::fflush(stdout);
  g_stop = true;
  ::umount2(mnt.c_str(), MNT_DETACH);
  ::close(g_fd);
  dev.join();
  for (auto& q : queues) q.join();
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: fuse_uring_probe MOUNTPOINT [--ops N]\n");
    return 2;
  }
  const std::string mnt = argv[1];
  const int ops = argc >= 4 && std::string(argv[2]) == "--ops" ? std::atoi(argv[3]) : 20000;
  std::string before;
  std::ifstream("/sys/module/fuse/parameters/enable_uring") >> before;
  if (!SetEnableUring("Y")) std::fprintf(stderr, "cannot set fuse.enable_uring\n");
  int rc = 0;
  for (int round = 0; round < 4 && rc == 0; ++round) {
    g_spin = round % 2 == 1;
    rc = Run(mnt, false, ops);
    if (rc == 0) rc = Run(mnt, true, ops);
  }
  SetEnableUring(before == "Y" ? "Y" : "N");
  return rc;
}
