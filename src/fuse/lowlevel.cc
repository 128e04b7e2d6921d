#define FUSE_USE_VERSION 314
#include "fuse/lowlevel.h"

#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <linux/fuse.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <chrono>
#include <csignal>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <thread>
#include <vector>

#include "common/blocking.h"
#include "common/log.h"
#include "common/mountinfo.h"
#include "common/mutex.h"
#include "common/xattrs.h"
#include "fuse/device_loop.h"
#include "fuse/uring_transport.h"

namespace tierfs {

// The libfuse userdata of a mount: what the op functions need.
struct FuseContext {
  Filesystem* fs;
  std::string mountpoint;
  bool no_open = false;
  bool no_opendir = false;
  // The kernel resets the mount's read-ahead when it processes our INIT reply, so it is
  // raised on the first request after INIT. 32 MiB by default: the kernel's read-ahead
  // READs are what keep several block fetches in flight for one sequential reader
  // (measurements in tools/bench/README.md, "Tuning behind the defaults").
  std::once_flag read_ahead_once;
  unsigned read_ahead_kb = 32768;
  std::unique_ptr<UringTransport> uring;       // when asked for and enabled
  std::unique_ptr<DeviceChannel> passthrough;  // when asked for (or for uring)
};

namespace {

// Data never changes while mounted, so the kernel may cache names, attributes and
// negative lookups for as long as it likes.
constexpr double kCacheTimeout = 365.0 * 24 * 3600;

// A reply this large takes long enough to copy (~10 us per 128 KiB) that the device is
// handed to another worker first.
constexpr size_t kLongCopy = 128 << 10;

// fuse_open_out as the kernel reads it since 6.9: the padding became the backing id.
struct OpenOut {
  uint64_t fh;
  uint32_t open_flags;
  int32_t backing_id;
};
constexpr uint32_t kOpenPassthrough = 1u << 7;  // FOPEN_PASSTHROUGH
// fi->fh of an open: not tracked (cannot be passthrough), tracked cached, passthrough.
enum OpenKind : uint64_t { kUntracked = 0, kTrackedCached = 1, kPassthrough = 2 };

FuseContext& Ctx(fuse_req_t req) {
  auto& ctx = *static_cast<FuseContext*>(fuse_req_userdata(req));
  std::call_once(ctx.read_ahead_once, [&] { RaiseReadAhead(ctx.mountpoint, ctx.read_ahead_kb); });
  return ctx;
}

fuse_entry_param EntryParam(const struct stat& st) {
  fuse_entry_param e = {};
  e.ino = st.st_ino;
  e.generation = 1;
  e.attr = st;
  e.attr_timeout = kCacheTimeout;
  e.entry_timeout = kCacheTimeout;
  return e;
}

// What an op answers, one type per kind of reply. Each op computes a Result of one of
// them and answers once, with Reply(): the value's reply, or the error's errno.
struct Attr {
  struct stat st;
};
struct LinkTarget {
  std::string path;
};
struct XattrValue {
  std::string value;
  size_t size;  // the caller's buffer: 0 asks for the value's size
};
struct Opened {
  fuse_file_info fi;
  std::optional<OpenOut> passthrough;  // sent raw: 3.14's fuse_reply_open cannot say it
};
struct DirPage {
  std::string buf;
  size_t used = 0;
};

void Send(fuse_req_t req, const fuse_entry_param& e) { fuse_reply_entry(req, &e); }
void Send(fuse_req_t req, const Attr& a) { fuse_reply_attr(req, &a.st, kCacheTimeout); }
void Send(fuse_req_t req, const LinkTarget& t) { fuse_reply_readlink(req, t.path.c_str()); }
void Send(fuse_req_t req, const struct statvfs& s) { fuse_reply_statfs(req, &s); }
void Send(fuse_req_t req, const DirPage& d) { fuse_reply_buf(req, d.buf.data(), d.used); }
void Send(fuse_req_t req, const XattrValue& x) {
  if (x.size == 0) return (void)fuse_reply_xattr(req, x.value.size());
  if (x.size < x.value.size()) return (void)fuse_reply_err(req, ERANGE);
  fuse_reply_buf(req, x.value.data(), x.value.size());
}
void Send(fuse_req_t req, const Opened& o) {
  if (!o.passthrough) return (void)fuse_reply_open(req, &o.fi);
  fuse_reply_buf(req, reinterpret_cast<const char*>(&*o.passthrough), sizeof *o.passthrough);
}
void Send(fuse_req_t req, const ReadResult& r) {
  if (r.iov.empty()) return (void)fuse_reply_buf(req, nullptr, 0);
  if (r.size >= kLongCopy) AboutToBlock();
  // The blocks stay alive in `r` until the reply has been written.
  fuse_reply_iov(req, r.iov.data(), static_cast<int>(r.iov.size()));
}

template <typename T>
void Reply(fuse_req_t req, const Result<T>& r) {
  if (!r.ok()) return (void)fuse_reply_err(req, r.status().error());
  Send(req, *r);
}
void Reply(fuse_req_t req, const Status& s) { fuse_reply_err(req, s.error()); }

// Runs `body`, turning any escaped exception into EIO so none crosses into libfuse.
template <typename F>
void Guard(fuse_req_t req, F&& body) {
  try {
    body();
  } catch (const std::bad_alloc&) {
    fuse_reply_err(req, ENOMEM);
  } catch (const std::exception& e) {
    TLOG_ERROR("internal error: {}", e.what());
    fuse_reply_err(req, EIO);
  } catch (...) {
    fuse_reply_err(req, EIO);
  }
}

void OpInit(void* userdata, fuse_conn_info* conn) {
  auto* ctx = static_cast<FuseContext*>(userdata);
  ctx->no_open = conn->capable & FUSE_CAP_NO_OPEN_SUPPORT;
  ctx->no_opendir = conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT;
  if (conn->capable & FUSE_CAP_CACHE_SYMLINKS) conn->want |= FUSE_CAP_CACHE_SYMLINKS;
  if (conn->capable & FUSE_CAP_PARALLEL_DIROPS) conn->want |= FUSE_CAP_PARALLEL_DIROPS;
  if (conn->capable & FUSE_CAP_ASYNC_READ) conn->want |= FUSE_CAP_ASYNC_READ;
  // Splice measured slower here; the data is immutable so no auto invalidation.
  conn->want &= ~(FUSE_CAP_SPLICE_READ | FUSE_CAP_SPLICE_WRITE | FUSE_CAP_SPLICE_MOVE |
                  FUSE_CAP_AUTO_INVAL_DATA);
  conn->max_read = 1 << 20;  // must equal the max_read mount option
  conn->max_background = 64;
  conn->congestion_threshold = 48;
  conn->time_gran = 1;
}

Result<fuse_entry_param> Lookup(FuseContext& ctx, fuse_ino_t parent, const char* name) {
  auto st = ctx.fs->Lookup(parent, name);
  if (st.ok()) return EntryParam(*st);
  if (st.status().error() != ENOENT) return st.status();
  fuse_entry_param negative = {};  // a negative entry: cached like a positive one
  negative.entry_timeout = kCacheTimeout;
  return negative;
}

void OpLookup(fuse_req_t req, fuse_ino_t parent, const char* name) {
  Guard(req, [&] { Reply(req, Lookup(Ctx(req), parent, name)); });
}

void OpGetAttr(fuse_req_t req, fuse_ino_t ino, fuse_file_info*) {
  Guard(req, [&] {
    auto st = Ctx(req).fs->GetAttr(ino);
    Reply(req, st.ok() ? Result<Attr>(Attr{*st}) : Result<Attr>(st.status()));
  });
}

void OpReadLink(fuse_req_t req, fuse_ino_t ino) {
  Guard(req, [&] {
    auto target = Ctx(req).fs->ReadLink(ino);
    Reply(req, target.ok() ? Result<LinkTarget>(LinkTarget{std::move(*target)})
                           : Result<LinkTarget>(target.status()));
  });
}

Result<Opened> Open(FuseContext& ctx, fuse_ino_t ino, fuse_file_info fi) {
  bool may_passthrough = false;
  TIERFS_RETURN_IF_ERROR(ctx.fs->Open(ino, fi.flags, &may_passthrough));
  DeviceChannel* pt = ctx.passthrough.get();
  if (pt == nullptr || !pt->usable()) {
    // ENOSYS tells the kernel to skip open/release from now on (reads need only the inode).
    if (ctx.no_open) return Status(ENOSYS, "no open");
    fi.fh = kUntracked;
  } else if (!may_passthrough) {
    fi.fh = kUntracked;  // too small to have a backing file: no bookkeeping
  } else {
    const auto d = pt->Open(ino, [&] { return ctx.fs->Backing(ino); });
    if (d.passthrough) {
      // No keep_cache: with passthrough the kernel refuses it (the open fails with EIO).
      return Opened{fi, OpenOut{kPassthrough, kOpenPassthrough | FOPEN_NOFLUSH, d.backing_id}};
    }
    fi.fh = kTrackedCached;
  }
  fi.keep_cache = 1;
  fi.noflush = 1;
  return Opened{fi, std::nullopt};
}

void OpOpen(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] { Reply(req, Open(Ctx(req), ino, *fi)); });
}

Result<Opened> OpenDir(FuseContext& ctx, fuse_ino_t ino, fuse_file_info fi) {
  auto st = ctx.fs->GetAttr(ino);
  if (!st.ok()) return st.status();
  if (!S_ISDIR(st->st_mode)) return Status(ENOTDIR, "not a directory");
  if (ctx.no_opendir) return Status(ENOSYS, "no opendir");
  fi.keep_cache = 1;
  fi.cache_readdir = 1;
  return Opened{fi, std::nullopt};
}

void OpOpenDir(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  Guard(req, [&] { Reply(req, OpenDir(Ctx(req), ino, *fi)); });
}

void OpRelease(fuse_req_t req, fuse_ino_t ino, fuse_file_info* fi) {
  DeviceChannel* pt = static_cast<FuseContext*>(fuse_req_userdata(req))->passthrough.get();
  if (pt != nullptr && fi->fh != kUntracked) pt->Release(ino, fi->fh == kPassthrough);
  Reply(req, Status::Ok());
}

// Python's open() asks isatty() (TCGETS) of every file it opens, and the kernel sends
// every ioctl on a FUSE file to the daemon: answer at once, without touching the
// filesystem (the kernel turns ENOTTY into the caller's ENOTTY).
void OpIoctl(fuse_req_t req, fuse_ino_t, unsigned int, void*, fuse_file_info*, unsigned,
             const void*, size_t, size_t) {
  Reply(req, Status(ENOTTY, "not a tty"));
}

// The session's device I/O when passthrough is asked for (fuse_session_custom_io).
ssize_t DeviceRead(int fd, void* buf, size_t len, void* userdata) {
  return static_cast<FuseContext*>(userdata)->passthrough->ReadRequest(fd, buf, len);
}
ssize_t DeviceWritev(int fd, struct iovec* iov, int count, void* userdata) {
  return static_cast<FuseContext*>(userdata)->passthrough->WriteReply(fd, iov, count);
}

// A read that must wait for the store is answered from the fetch pool when it lands, so
// this worker goes back to the device at once: requests in flight are the fetch budget,
// not the worker count. Over io_uring a request must be answered by the worker that took
// it, so there the worker waits.
void OpRead(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guard(req, [&] {
    FuseContext& ctx = Ctx(req);
    if (ctx.uring != nullptr)
      return Reply(req, ctx.fs->Read(ino, static_cast<uint64_t>(off), size));
    auto r =
        ctx.fs->ReadOrDefer(ino, static_cast<uint64_t>(off), size,
                            [req](Result<ReadResult> r) { Guard(req, [&] { Reply(req, r); }); });
    if (r) Reply(req, *r);
  });
}

Result<DirPage> ReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus) {
  DirPage page{std::string(size, '\0')};
  Status s = Ctx(req).fs->ReadDir(
      ino, static_cast<uint64_t>(off),
      [&](std::string_view name, const struct stat& st, uint64_t next) {
        std::string n(name);
        char* at = page.buf.data() + page.used;
        const size_t room = size - page.used;
        size_t need;
        if (plus) {
          fuse_entry_param e = EntryParam(st);
          need = fuse_add_direntry_plus(req, at, room, n.c_str(), &e, static_cast<off_t>(next));
        } else {
          need = fuse_add_direntry(req, at, room, n.c_str(), &st, static_cast<off_t>(next));
        }
        if (need > room) return false;
        page.used += need;
        return true;
      });
  if (!s.ok() && page.used == 0) return s;
  return page;
}

void OpReadDir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guard(req, [&] { Reply(req, ReadDir(req, ino, size, off, false)); });
}

void OpReadDirPlus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, fuse_file_info*) {
  Guard(req, [&] { Reply(req, ReadDir(req, ino, size, off, true)); });
}

void OpReleaseDir(fuse_req_t req, fuse_ino_t, fuse_file_info*) { Reply(req, Status::Ok()); }

void OpStatFs(fuse_req_t req, fuse_ino_t) {
  Guard(req, [&] { Reply(req, Result<struct statvfs>(Ctx(req).fs->StatFs())); });
}

Result<XattrValue> AsXattr(Result<std::string> v, size_t size) {
  if (!v.ok()) return v.status();
  return XattrValue{std::move(*v), size};
}

void OpGetXattr(fuse_req_t req, fuse_ino_t ino, const char* name, size_t size) {
  Guard(req, [&] {
    // A file's warm is answered from the fetch pool once the file is in (as OpRead).
    if (std::strcmp(name, kWarmXattr) == 0 && Ctx(req).uring == nullptr) {
      return Ctx(req).fs->Warm(ino, [req, size](Result<std::string> v) {
        Guard(req, [&] { Reply(req, AsXattr(std::move(v), size)); });
      });
    }
    // A refresh may download an index or walk the source: let another worker take the device.
    if (std::strcmp(name, kRefreshXattr) == 0) AboutToBlock();
    Reply(req, AsXattr(Ctx(req).fs->GetXattr(ino, name, fuse_req_ctx(req)->uid), size));
  });
}

void OpListXattr(fuse_req_t req, fuse_ino_t ino, size_t size) {
  Guard(req, [&] {
    auto names = Ctx(req).fs->ListXattr(ino);
    std::string packed;
    if (names.ok()) {
      for (const auto& n : *names) packed.append(n).push_back('\0');
    }
    Reply(req, names.ok() ? AsXattr(std::move(packed), size) : names.status());
  });
}

void RejectWrite(fuse_req_t req) { Reply(req, Ctx(req).fs->RejectWrite()); }

fuse_lowlevel_ops MakeOps() {
  fuse_lowlevel_ops ops = {};
  ops.init = OpInit;
  ops.lookup = OpLookup;
  ops.getattr = OpGetAttr;
  ops.readlink = OpReadLink;
  ops.open = OpOpen;
  ops.read = OpRead;
  ops.release = OpRelease;
  ops.ioctl = OpIoctl;
  ops.opendir = OpOpenDir;
  ops.readdir = OpReadDir;
  ops.readdirplus = OpReadDirPlus;
  ops.releasedir = OpReleaseDir;
  ops.statfs = OpStatFs;
  ops.getxattr = OpGetXattr;
  ops.listxattr = OpListXattr;
  ops.setattr = [](fuse_req_t req, fuse_ino_t, struct stat*, int, fuse_file_info*) {
    RejectWrite(req);
  };
  ops.mknod = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, dev_t) { RejectWrite(req); };
  ops.mkdir = [](fuse_req_t req, fuse_ino_t, const char*, mode_t) { RejectWrite(req); };
  ops.unlink = [](fuse_req_t req, fuse_ino_t, const char*) { RejectWrite(req); };
  ops.rmdir = [](fuse_req_t req, fuse_ino_t, const char*) { RejectWrite(req); };
  ops.symlink = [](fuse_req_t req, const char*, fuse_ino_t, const char*) { RejectWrite(req); };
  ops.rename = [](fuse_req_t req, fuse_ino_t, const char*, fuse_ino_t, const char*, unsigned) {
    RejectWrite(req);
  };
  ops.link = [](fuse_req_t req, fuse_ino_t, fuse_ino_t, const char*) { RejectWrite(req); };
  ops.write = [](fuse_req_t req, fuse_ino_t, const char*, size_t, off_t, fuse_file_info*) {
    RejectWrite(req);
  };
  ops.create = [](fuse_req_t req, fuse_ino_t, const char*, mode_t, fuse_file_info*) {
    RejectWrite(req);
  };
  ops.setxattr = [](fuse_req_t req, fuse_ino_t, const char*, const char*, size_t, int) {
    RejectWrite(req);
  };
  ops.removexattr = [](fuse_req_t req, fuse_ino_t, const char*) { RejectWrite(req); };
  ops.fallocate = [](fuse_req_t req, fuse_ino_t, int, off_t, off_t, fuse_file_info*) {
    RejectWrite(req);
  };
  return ops;
}

// libfuse's own messages go to our log, or into `captured` while options are validated.
Mutex log_mu;
bool capturing GUARDED_BY(log_mu) = false;
std::string captured GUARDED_BY(log_mu);

void FuseLog(enum fuse_log_level level, const char* fmt, va_list ap) {
  char buf[1024];
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  std::string line(buf);
  while (!line.empty() && line.back() == '\n') line.pop_back();
  if (line.empty()) return;
  {
    MutexLock lock(log_mu);
    if (capturing) {
      captured += line;  // libfuse writes one message in several pieces
      return;
    }
  }
  if (level <= FUSE_LOG_ERR) {
    TLOG_ERROR("{}", line);
  } else {
    TLOG_INFO("{}", line);
  }
}

std::string MountOptions(const FuseServerOptions& o) {
  std::string opts = "ro,default_permissions,max_read=1048576,subtype=tierfs,fsname=" + o.fsname;
  if (!o.extra_options.empty()) opts += "," + o.extra_options;
  return opts;
}

fuse_session* NewSession(const FuseServerOptions& options, void* userdata) {
  static const fuse_lowlevel_ops ops = MakeOps();
  fuse_set_log_func(FuseLog);
  std::vector<std::string> argv_s = {"tierfs", "-o", MountOptions(options)};
  if (options.debug) argv_s.push_back("-d");
  std::vector<char*> argv;
  argv.reserve(argv_s.size());
  for (auto& a : argv_s) argv.push_back(a.data());
  fuse_args args = FUSE_ARGS_INIT(static_cast<int>(argv.size()), argv.data());
  fuse_session* se = fuse_session_new(&args, &ops, sizeof(ops), userdata);
  fuse_opt_free_args(&args);
  return se;
}

}  // namespace

Status FuseServer::ValidateOptions(const std::string& extra_options) {
  FuseServerOptions o;
  o.fsname = "check";
  o.extra_options = extra_options;
  {
    MutexLock lock(log_mu);
    capturing = true;
    captured.clear();
  }
  fuse_session* se = NewSession(o, nullptr);
  std::string message;
  {
    MutexLock lock(log_mu);
    capturing = false;
    message = captured;
  }
  if (se == nullptr) {
    return Status::Invalid("invalid mount options '" + extra_options + "'" +
                           (message.empty() ? "" : " (" + message + ")"));
  }
  fuse_session_destroy(se);
  return Status::Ok();
}

namespace {
fuse_session* signal_session = nullptr;  // set once, before the handler is installed
void OnExitSignal(int) {
  RequestShutdown();
  if (signal_session != nullptr) fuse_session_exit(signal_session);
}
}  // namespace

FuseServer::FuseServer(Filesystem& fs, FuseServerOptions options)
    : fs_(fs), options_(std::move(options)) {}

FuseServer::~FuseServer() {
  fs_.SetKernelCache({});
  if (session_ != nullptr) {
    if (mounted_) fuse_session_unmount(session_);
    fuse_remove_signal_handlers(session_);
    fuse_session_destroy(session_);
  }
}

Status FuseServer::Mount(const std::string& mountpoint) {
  context_ = std::make_unique<FuseContext>();
  context_->fs = &fs_;
  context_->mountpoint = mountpoint;
  context_->read_ahead_kb = options_.read_ahead_kb;
  FuseContext* ctx = context_.get();
  session_ = NewSession(options_, ctx);
  if (session_ == nullptr) {
    return Status::Invalid("invalid mount options '" + options_.extra_options + "'");
  }
  // Before mounting: a SIGTERM from now on ends the loop cleanly instead of killing us
  // with the mount left behind.
  if (fuse_set_signal_handlers(session_) != 0) return Status::Io("cannot install signal handlers");
  // Ours on top of libfuse's: the same session exit, and also RequestShutdown(), so reads
  // that wait for an unreachable source (wait_while_unreachable) give up and the loop's
  // workers come back to see the exit.
  signal_session = session_;
  struct sigaction sa {};
  sa.sa_handler = OnExitSignal;
  sigemptyset(&sa.sa_mask);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) ::sigaction(sig, &sa, nullptr);
  if (fuse_session_mount(session_, mountpoint.c_str()) != 0) {
    return Status(EIO, "cannot mount at '" + mountpoint + "' (see the message above)");
  }
  mounted_ = true;
  mountpoint_ = mountpoint;
  const int fd = fuse_session_fd(session_);
  if (options_.fuse_uring) {
    std::string why;
    if (UringTransport::Enabled(&why)) {
      ctx->uring = std::make_unique<UringTransport>(session_, fd, options_.uring_threads_per_queue);
    } else {
      TLOG_INFO("fuse over io_uring off: {}; requests use /dev/fuse", why);
    }
  }
  if (options_.passthrough || ctx->uring != nullptr) {
    // Before any request is read: the INIT request and reply pass through the channel.
    static const fuse_custom_io io = {DeviceWritev, DeviceRead, nullptr, nullptr};
    ctx->passthrough = std::make_unique<DeviceChannel>(fd, options_.stack_depth,
                                                       options_.passthrough, ctx->uring.get());
    if (fuse_session_custom_io(session_, &io, fd) != 0) {
      ctx->passthrough.reset();
      ctx->uring.reset();
      TLOG_INFO("passthrough and io_uring off: libfuse refused custom device I/O");
    }
  }
  fuse_session* se = session_;
  fs_.SetKernelCache(
      KernelCache{[se](uint64_t parent, const std::string& name) {
                    // libfuse sends the terminating NUL too. ENOENT: the kernel had nothing cached
                    // there.
                    fuse_lowlevel_notify_inval_entry(se, parent, name.c_str(), name.size());
                  },
                  [se](uint64_t ino) { fuse_lowlevel_notify_inval_inode(se, ino, 0, 0); }});
  return Status::Ok();
}

namespace {

// /dev/fuse through libfuse, for DeviceLoop.
class FuseDevice : public DeviceLoop::Device {
 public:
  explicit FuseDevice(fuse_session* se) : se_(se) {}
  int fd() const override { return fuse_session_fd(se_); }
  void* NewBuffer() override { return new fuse_buf{}; }
  void FreeBuffer(void* buffer) override {
    auto* buf = static_cast<fuse_buf*>(buffer);
    std::free(buf->mem);
    delete buf;
  }
  int Receive(void* buffer) override {
    return fuse_session_receive_buf(se_, static_cast<fuse_buf*>(buffer));
  }
  bool Exited() const override { return fuse_session_exited(se_) != 0; }
  void Process(void* buffer) override {
    fuse_session_process_buf(se_, static_cast<fuse_buf*>(buffer));
  }
  void Ended() override { RequestShutdown(); }

 private:
  fuse_session* se_;
};

}  // namespace

Status FuseServer::Run() {
  unsigned threads = options_.max_threads;
  if (threads == 0) threads = std::max(4u, std::thread::hardware_concurrency() * 4);
  FuseDevice device(session_);
  const int rc = DeviceLoop(device, threads, std::chrono::microseconds(options_.spin_us)).Run();
  fuse_session_unmount(session_);
  mounted_ = false;
  if (context_ != nullptr && context_->uring != nullptr) context_->uring->Stop();
  if (rc < 0) return Status::FromErrno(-rc, "fuse loop");
  return Status::Ok();
}

const DeviceChannel* FuseServer::passthrough() const {
  return context_ == nullptr ? nullptr : context_->passthrough.get();
}

nlohmann::json FuseServer::TransportJson() const {
  const FuseContext* ctx = context_.get();
  const bool uring = ctx != nullptr && ctx->passthrough != nullptr && ctx->passthrough->uring_on();
  if (!uring) return {{"transport", "/dev/fuse"}};
  return {{"transport", "io_uring"},
          {"queues", ctx->uring->queues()},
          {"ring_requests", ctx->uring->served()}};
}

void FuseServer::Exit() {
  if (session_ != nullptr) fuse_session_exit(session_);
}

void RaiseReadAhead(const std::string& mountpoint, unsigned kb) {
  // Never stat() the mountpoint here: that would be a FUSE request to ourselves before the
  // loop runs. mountinfo names the device instead; the last match is the topmost mount.
  std::string device;
  for (const MountInfo& m : ReadMountInfo()) {
    if (m.mountpoint == mountpoint) device = m.device;
  }
  if (device.empty()) return;
  std::ofstream f("/sys/class/bdi/" + device + "/read_ahead_kb");
  if (f) f << kb << "\n";
}

}  // namespace tierfs
