#include "ufs/nfs_store.h"

#include <fcntl.h>
#include <nfsc/libnfs-raw-nfs.h>
#include <nfsc/libnfs.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <ctime>
#include <list>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "common/log.h"
#include "common/mutex.h"

namespace tierfs {
namespace {

std::string PathFor(const std::string& key) { return "/" + key; }

// Errors that mean the session is gone (server restarted, network), not a bad path.
bool SessionBroken(int err) {
  return err == EIO || err == ETIMEDOUT || err == ECONNRESET || err == ECONNREFUSED ||
         err == EPIPE || err == ENOTCONN || err == ESHUTDOWN || err == EFAULT || err == EAGAIN;
}

std::string VersionOf(uint64_t size, int64_t mtime_ns) {
  return std::to_string(mtime_ns) + "-" + std::to_string(size);
}

}  // namespace

struct NfsTarget {
  std::string url;  // for libnfs (server, path and arguments)
  int uid = -1, gid = -1;
  int timeout_ms = 10000;
};

// One mounted libnfs context, used by one thread at a time, with open file handles.
class NfsStore::Session {
 public:
  ~Session() {
    for (auto& [key, h] : handles_) nfs_close(ctx_, h.fh);
    if (ctx_) nfs_destroy_context(ctx_);
  }

  static Result<std::unique_ptr<Session>> Mount(const NfsTarget& t) {
    std::unique_ptr<Session> s(new Session());
    s->ctx_ = nfs_init_context();
    if (s->ctx_ == nullptr) return Status(ENOMEM, "nfs: cannot create a context");
    nfs_set_timeout(s->ctx_, t.timeout_ms);
    nfs_set_autoreconnect(s->ctx_, 0);  // a broken session is replaced by the pool
    // NFSv4 keys open state by client name: sessions of one process sharing a name would
    // expire each other's state, so each gets its own.
    static std::atomic<uint64_t> session_counter{0};
    std::string client = "tierfs-" + std::to_string(::getpid()) + "-" +
                         std::to_string(++session_counter) + "-" + std::to_string(::time(nullptr));
    nfs4_set_client_name(s->ctx_, client.c_str());
    nfs4_set_verifier(s->ctx_, client.substr(client.size() - 8).c_str());
    if (t.uid >= 0) nfs_set_uid(s->ctx_, t.uid);
    if (t.gid >= 0) nfs_set_gid(s->ctx_, t.gid);
    nfs_url* url = nfs_parse_url_dir(s->ctx_, t.url.c_str());
    if (url == nullptr) {
      return Status::Invalid("bad NFS URL '" + t.url + "': " + nfs_get_error(s->ctx_));
    }
    int rc = nfs_mount(s->ctx_, url->server, url->path);
    std::string where = std::string(url->server) + ":" + url->path;
    nfs_destroy_url(url);
    if (rc != 0) {
      int err = -rc;
      std::string msg = nfs_get_error(s->ctx_);
      if (err == ENOENT) return Status(ENOENT, "nfs: export " + where + " does not exist");
      if (err == EACCES || err == EPERM)
        return Status(EACCES, "nfs: permission denied mounting " + where);
      if (msg.find("nfs_service") != std::string::npos ||
          msg.find("connect") != std::string::npos) {
        return Status(EHOSTUNREACH,
                      "nfs: cannot reach the server for " + where + " (is it running?)");
      }
      return Status(err ? err : EIO, "nfs: cannot mount " + where + ": " + msg);
    }
    return s;
  }

  nfs_context* ctx() { return ctx_; }

  // An open handle for `key` and its version at open time (handles are kept, LRU).
  Result<std::pair<nfsfh*, std::string>> Handle(const std::string& key) {
    auto it = handles_.find(key);
    if (it != handles_.end()) {
      lru_.splice(lru_.begin(), lru_, it->second.lru);
      return std::make_pair(it->second.fh, it->second.version);
    }
    nfsfh* fh = nullptr;
    int rc = nfs_open(ctx_, PathFor(key).c_str(), O_RDONLY, &fh);
    if (rc != 0) return Status(-rc, "nfs open '" + key + "': " + nfs_get_error(ctx_));
    nfs_stat_64 st;
    rc = nfs_fstat64(ctx_, fh, &st);
    if (rc != 0) {
      nfs_close(ctx_, fh);
      return Status(-rc, "nfs stat '" + key + "': " + nfs_get_error(ctx_));
    }
    std::string version =
        VersionOf(st.nfs_size, static_cast<int64_t>(st.nfs_mtime * 1000000000 + st.nfs_mtime_nsec));
    lru_.push_front(key);
    handles_[key] = OpenHandle{fh, version, lru_.begin()};
    if (handles_.size() > 64) {
      auto victim = handles_.find(lru_.back());
      nfs_close(ctx_, victim->second.fh);
      handles_.erase(victim);
      lru_.pop_back();
    }
    return std::make_pair(fh, version);
  }

  void Forget(const std::string& key) {
    auto it = handles_.find(key);
    if (it == handles_.end()) return;
    nfs_close(ctx_, it->second.fh);
    lru_.erase(it->second.lru);
    handles_.erase(it);
  }

 private:
  struct OpenHandle {
    nfsfh* fh;
    std::string version;
    std::list<std::string>::iterator lru;
  };
  nfs_context* ctx_ = nullptr;
  std::unordered_map<std::string, OpenHandle> handles_;
  std::list<std::string> lru_;
};

class NfsStore::Pool {
 public:
  explicit Pool(NfsTarget target) : target_(std::move(target)) {}

  // Borrows a session (mounting a new one if none is idle). Return it with Give().
  Result<std::unique_ptr<Session>> Take() {
    {
      MutexLock lock(mu_);
      if (!idle_.empty()) {
        auto s = std::move(idle_.back());
        idle_.pop_back();
        return s;
      }
    }
    return Session::Mount(target_);
  }
  // `healthy` false drops the session, and every idle one with it (a server restart
  // breaks them all): the next Take() reconnects.
  void Give(std::unique_ptr<Session> s, bool healthy) {
    std::vector<std::unique_ptr<Session>> dropped;  // destroyed outside the lock
    MutexLock lock(mu_);
    if (!healthy) {
      dropped.swap(idle_);
      return;
    }
    if (idle_.size() < 32) idle_.push_back(std::move(s));
  }

 private:
  const NfsTarget target_;
  Mutex mu_;
  std::vector<std::unique_ptr<Session>> idle_ GUARDED_BY(mu_);
};

NfsStore::NfsStore(std::string url, std::unique_ptr<Pool> pool)
    : url_(std::move(url)), pool_(std::move(pool)) {}

NfsStore::~NfsStore() = default;

Result<std::unique_ptr<Store>> NfsStore::Open(const std::string& url, const StoreOptions& options) {
  NfsTarget t;
  t.url = url;
  t.uid = options.nfs_uid;
  t.gid = options.nfs_gid;
  t.timeout_ms = static_cast<int>(std::min<long>(options.http.request_timeout_ms, 600000));
  auto pool = std::make_unique<Pool>(t);
  if (!options.allow_offline) {
    auto s = pool->Take();  // fail now, with a clear error, if the export is unusable
    if (!s.ok()) return s.status();
    pool->Give(std::move(*s), true);
  }
  return std::unique_ptr<Store>(new NfsStore(url, std::move(pool)));
}

Result<ObjectInfo> NfsStore::Stat(const std::string& key) {
  auto s = pool_->Take();
  if (!s.ok()) return s.status();
  nfs_stat_64 st;
  int rc = nfs_lstat64((*s)->ctx(), PathFor(key).c_str(), &st);
  if (rc != 0) {
    Status err(-rc, "nfs stat '" + key + "': " + nfs_get_error((*s)->ctx()));
    pool_->Give(std::move(*s), !SessionBroken(-rc));
    return err;
  }
  pool_->Give(std::move(*s), true);
  ObjectInfo info;
  size_t slash = key.rfind('/');
  info.name = slash == std::string::npos ? key : key.substr(slash + 1);
  info.mode = static_cast<uint32_t>(st.nfs_mode & 07777);
  info.mtime_ns = static_cast<int64_t>(st.nfs_mtime * 1000000000 + st.nfs_mtime_nsec);
  if (S_ISDIR(st.nfs_mode)) {
    info.type = ObjectType::kDirectory;
  } else if (S_ISLNK(st.nfs_mode)) {
    info.type = ObjectType::kSymlink;
  } else {
    info.size = st.nfs_size;
    info.version = VersionOf(info.size, info.mtime_ns);
  }
  return info;
}

Status NfsStore::List(const std::string& key, const ListSink& sink) {
  auto s = pool_->Take();
  if (!s.ok()) return s.status();
  nfs_context* ctx = (*s)->ctx();
  nfsdir* dir = nullptr;
  const std::string path = PathFor(key);
  int rc = nfs_opendir(ctx, path.c_str(), &dir);
  if (rc != 0) {
    Status err(-rc, "nfs list '" + key + "': " + nfs_get_error(ctx));
    pool_->Give(std::move(*s), !SessionBroken(-rc));
    return err;
  }
  // Collect first: the sink may take long, and readlink needs the context.
  std::vector<ObjectInfo> entries;
  for (nfsdirent* e = nfs_readdir(ctx, dir); e != nullptr; e = nfs_readdir(ctx, dir)) {
    std::string name = e->name;
    if (name == "." || name == "..") continue;
    ObjectInfo info;
    info.name = name;
    info.mode = e->mode & 07777;
    info.mtime_ns = static_cast<int64_t>(e->mtime.tv_sec) * 1000000000 + e->mtime_nsec;
    uint32_t fmt = e->mode & S_IFMT;
    if (e->type == NF3DIR || fmt == S_IFDIR) {
      info.type = ObjectType::kDirectory;
    } else if (e->type == NF3LNK || fmt == S_IFLNK) {
      info.type = ObjectType::kSymlink;
      char target[4096];
      std::string child = JoinKey(key, name);
      if (nfs_readlink(ctx, PathFor(child).c_str(), target, sizeof target) != 0) {
        TLOG_WARN("index: skipping symlink '{}': {}", child, nfs_get_error(ctx));
        continue;
      }
      target[sizeof target - 1] = '\0';
      info.link_target = target;
      info.size = info.link_target.size();
    } else if (e->type == NF3REG || fmt == S_IFREG) {
      info.type = ObjectType::kFile;
      info.size = e->size;
      info.version = VersionOf(info.size, info.mtime_ns);
    } else {
      continue;  // devices, sockets, fifos
    }
    entries.push_back(std::move(info));
  }
  nfs_closedir(ctx, dir);
  pool_->Give(std::move(*s), true);
  for (auto& e : entries) TIERFS_RETURN_IF_ERROR(sink(std::move(e)));
  return Status::Ok();
}

Result<size_t> NfsStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                   ReadVia* via) {
  if (via != nullptr) *via = ReadVia::kOrigin;
  // A session broken by a server restart fails once; a fresh one is tried right away.
  Result<size_t> r = ReadOnce(ref, offset, length, buf);
  if (!r.ok() && SessionBroken(r.status().error())) r = ReadOnce(ref, offset, length, buf);
  return r;
}

Result<size_t> NfsStore::ReadOnce(const ObjectRef& ref, uint64_t offset, size_t length, char* buf) {
  auto s = pool_->Take();
  if (!s.ok()) return Status(EIO, s.status().message());
  auto h = (*s)->Handle(ref.key);
  if (!h.ok()) {
    pool_->Give(std::move(*s), !SessionBroken(h.status().error()));
    return h.status();
  }
  if (!ref.version.empty() && h->second != ref.version) {
    (*s)->Forget(ref.key);
    pool_->Give(std::move(*s), true);
    TLOG_WARN("'{}' changed on the NFS server since it was indexed", ref.key);
    return Status::Io("'" + ref.key + "' changed since it was indexed");
  }
  size_t done = 0;
  while (done < length) {
    int n = nfs_pread((*s)->ctx(), h->first, offset + done, length - done, buf + done);
    if (n < 0) {
      Status err(-n, "nfs read '" + ref.key + "': " + nfs_get_error((*s)->ctx()));
      pool_->Give(std::move(*s), !SessionBroken(-n));
      return err;
    }
    if (n == 0) break;
    done += static_cast<size_t>(n);
  }
  pool_->Give(std::move(*s), true);
  return done;
}

}  // namespace tierfs
