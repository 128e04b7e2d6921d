#define FUSE_USE_VERSION 314
#include "fuse/uring_transport.h"

#include <fuse_lowlevel.h>
#include <liburing.h>
#include <linux/fuse.h>
#include <sched.h>
#include <unistd.h>

#include <cstring>
#include <fstream>

#include "common/blocking.h"
#include "common/log.h"

namespace tierfs {
namespace {

// FUSE-over-io_uring ABI (7.42), newer than Debian 12's linux/fuse.h.
constexpr uint32_t kCmdRegister = 1, kCmdCommitAndFetch = 2;
struct EntInOut {
  uint64_t flags, commit_id;
  uint32_t payload_sz, padding;
  uint64_t reserved;
};
struct ReqHeader {
  char in_out[128];  // fuse_in_header on fetch, fuse_out_header on commit
  char op_in[128];   // the request's fixed argument
  EntInOut ent;
};
struct CmdReq {
  uint64_t flags, commit_id;
  uint16_t qid;
  uint8_t padding[6];
};
// At least the largest request or reply: libfuse 3.14 offers 1 MiB writes and reads.
constexpr size_t kPayload = (1 << 20) + (64 << 10);

}  // namespace

struct UringTransport::Worker {
  unsigned qid = 0;
  io_uring ring{};
  bool ring_ok = false;
  ReqHeader* header = nullptr;
  std::vector<char> payload, request;
  iovec iov[2]{};
  uint64_t unique = 0;  // the request being served
  bool committed = false;
  ~Worker() {
    if (ring_ok) io_uring_queue_exit(&ring);
    std::free(header);
  }
};

namespace {
thread_local UringTransport::Worker* tl_worker = nullptr;

void Submit(UringTransport::Worker* w, int fd, uint32_t op, uint64_t commit_id) {
  io_uring_sqe* sqe = io_uring_get_sqe(&w->ring);  // never null: one in flight per ring
  // The ring has 128-byte entries (SQE128); the struct declares 64 and a flexible tail.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Warray-bounds"
#if !defined(__clang__)
#pragma GCC diagnostic ignored "-Wstringop-overflow"
#endif
  std::memset(sqe, 0, 128);
#pragma GCC diagnostic pop
  sqe->opcode = IORING_OP_URING_CMD;
  sqe->fd = fd;
  sqe->cmd_op = op;
  sqe->addr = reinterpret_cast<uint64_t>(w->iov);
  sqe->len = 2;
  auto* req = reinterpret_cast<CmdReq*>(sqe->cmd);
  req->qid = static_cast<uint16_t>(w->qid);
  req->commit_id = commit_id;
  io_uring_submit(&w->ring);
}
}  // namespace

UringTransport::UringTransport(fuse_session* se, int dev_fd, unsigned threads_per_queue)
    : se_(se), dev_fd_(dev_fd), threads_per_queue_(std::max(1u, threads_per_queue)) {}

UringTransport::~UringTransport() { Stop(); }

bool UringTransport::Enabled(std::string* why_not) {
  std::ifstream f("/sys/module/fuse/parameters/enable_uring");
  std::string v;
  if (!(f >> v)) {
    *why_not = "the kernel has no FUSE over io_uring (Linux 6.14+ with CONFIG_FUSE_IO_URING)";
    return false;
  }
  if (v != "Y" && v != "1") {
    *why_not =
        "the fuse module's enable_uring parameter is off "
        "(echo Y > /sys/module/fuse/parameters/enable_uring)";
    return false;
  }
  return true;
}

void UringTransport::Start() {
  // The kernel has one queue per possible CPU and waits for an entry on each.
  queues_ = static_cast<unsigned>(std::max(1L, ::sysconf(_SC_NPROCESSORS_CONF)));
  for (unsigned q = 0; q < queues_; ++q) {
    for (unsigned t = 0; t < threads_per_queue_; ++t) {
      auto w = std::make_unique<Worker>();
      w->qid = q;
      workers_.push_back(std::move(w));
    }
  }
  for (auto& w : workers_) threads_.emplace_back([this, p = w.get()] { Run(p); });
}

void UringTransport::Stop() {
  stopping_ = true;
  for (auto& t : threads_) {
    if (t.joinable()) t.join();
  }
  threads_.clear();
}

void UringTransport::Abort(const std::string& why) {
  TLOG_ERROR("fuse over io_uring: {}; ending the mount (requests would wait forever)", why);
  RequestShutdown();
  fuse_session_exit(se_);
}

void UringTransport::Run(Worker* w) {
  SetThreadName("tierfs-uring");
  SetBlockingHook(nullptr, nullptr);  // each worker owns its entry: nothing to hand over
  cpu_set_t cpus;
  CPU_ZERO(&cpus);
  CPU_SET(w->qid, &cpus);
  (void)::sched_setaffinity(0, sizeof cpus, &cpus);  // an offline CPU: serve from anywhere
  io_uring_params p{};
  p.flags = IORING_SETUP_SQE128;
  if (int rc = io_uring_queue_init_params(4, &w->ring, &p); rc != 0) {
    return Abort(std::string("io_uring setup: ") + std::strerror(-rc));
  }
  w->ring_ok = true;
  w->header = static_cast<ReqHeader*>(std::aligned_alloc(4096, 4096));
  std::memset(w->header, 0, 4096);
  w->payload.resize(kPayload);
  w->request.resize(sizeof(fuse_in_header) + sizeof w->header->op_in + kPayload);
  w->iov[0] = {w->header, sizeof(ReqHeader)};
  w->iov[1] = {w->payload.data(), w->payload.size()};
  Submit(w, dev_fd_, kCmdRegister, 0);
  while (!stopping_ && !fuse_session_exited(se_)) {
    // Workers sleep until a request comes; they do not poll as the /dev/fuse loop may. A
    // worker runs on its caller's CPU, so polling there takes turns with the caller: it
    // speeds up one thread's round trips but slows down several busy callers (measured in
    // tools/bench/README.md, FUSE over io_uring).
    io_uring_cqe* cqe = nullptr;
    __kernel_timespec ts{0, 500 * 1000 * 1000};
    if (io_uring_wait_cqe_timeout(&w->ring, &cqe, &ts) != 0) continue;
    const int res = cqe->res;
    io_uring_cqe_seen(&w->ring, cqe);
    if (res < 0) {
      // Unmounted or aborted: the kernel ends every entry.
      if (res != -ENOTCONN && res != -ECANCELED && !stopping_) {
        Abort(std::string("queue ") + std::to_string(w->qid) + ": " + std::strerror(-res));
      }
      return;
    }
    // Lay the request out as /dev/fuse delivers it: header, fixed argument, the rest.
    fuse_in_header in;
    std::memcpy(&in, w->header->in_out, sizeof in);
    const size_t rest = std::min<size_t>(w->header->ent.payload_sz, kPayload);
    const size_t fixed = in.len >= sizeof in + rest ? in.len - sizeof in - rest : 0;
    if (fixed > sizeof w->header->op_in) {
      Abort("a request with a " + std::to_string(fixed) + "-byte argument");
      return;
    }
    char* r = w->request.data();
    std::memcpy(r, &in, sizeof in);
    std::memcpy(r + sizeof in, w->header->op_in, fixed);
    std::memcpy(r + sizeof in + fixed, w->payload.data(), rest);
    w->unique = in.unique;
    w->committed = false;
    tl_worker = w;
    fuse_buf buf{};
    buf.size = sizeof in + fixed + rest;
    buf.mem = r;
    fuse_session_process_buf(se_, &buf);
    tl_worker = nullptr;
    if (!w->committed) {  // no reply was sent (not expected over the ring): answer ENOSYS
      fuse_out_header out{sizeof(fuse_out_header), -ENOSYS, in.unique};
      std::memcpy(w->header->in_out, &out, sizeof out);
      w->header->ent.payload_sz = 0;
      Submit(w, dev_fd_, kCmdCommitAndFetch, w->header->ent.commit_id);
    }
    served_.fetch_add(1, std::memory_order_relaxed);
  }
}

bool UringTransport::Commit(const struct iovec* iov, int count, ssize_t* written) const {
  Worker* w = tl_worker;
  if (w == nullptr || w->committed || count < 1 || iov[0].iov_len < sizeof(fuse_out_header)) {
    return false;
  }
  fuse_out_header out;
  std::memcpy(&out, iov[0].iov_base, sizeof out);
  if (out.unique != w->unique) return false;
  size_t n = 0;
  for (int i = 1; i < count; ++i) {
    if (n + iov[i].iov_len > w->payload.size()) {  // cannot happen with libfuse's limits
      out.error = -EIO;
      n = 0;
      break;
    }
    std::memcpy(w->payload.data() + n, iov[i].iov_base, iov[i].iov_len);
    n += iov[i].iov_len;
  }
  out.len = static_cast<uint32_t>(sizeof out + n);
  std::memcpy(w->header->in_out, &out, sizeof out);
  w->header->ent.payload_sz = static_cast<uint32_t>(n);
  Submit(w, dev_fd_, kCmdCommitAndFetch, w->header->ent.commit_id);
  w->committed = true;
  *written = static_cast<ssize_t>(out.len);
  return true;
}

}  // namespace tierfs
