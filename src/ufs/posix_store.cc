#include "ufs/posix_store.h"

#include <dirent.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <list>
#include <mutex>
#include <unordered_map>

#include "common/fd.h"
#include "common/log.h"
#include "common/mutex.h"

namespace tierfs {
namespace {

int OpenBeneath(int root_fd, const std::string& key, int flags) {
  struct open_how how = {};
  how.flags = static_cast<uint64_t>(flags | O_CLOEXEC | O_NOFOLLOW);
  how.resolve = RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_SYMLINKS;
  const char* path = key.empty() ? "." : key.c_str();
  long fd = syscall(SYS_openat2, root_fd, path, &how, sizeof how);
  return static_cast<int>(fd);
}

int64_t MtimeNs(const struct stat& st) {
  return static_cast<int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

ObjectInfo InfoFromStat(std::string name, const struct stat& st) {
  ObjectInfo info;
  info.name = std::move(name);
  info.mtime_ns = MtimeNs(st);
  info.mode = st.st_mode & 07777;
  if (S_ISDIR(st.st_mode)) {
    info.type = ObjectType::kDirectory;
  } else if (S_ISLNK(st.st_mode)) {
    info.type = ObjectType::kSymlink;
    info.size = static_cast<uint64_t>(st.st_size);
  } else {
    info.type = ObjectType::kFile;
    info.size = static_cast<uint64_t>(st.st_size);
    info.version = PosixStore::VersionOf(info.size, info.mtime_ns);
  }
  return info;
}

}  // namespace

// An open file and the version it had when opened.
struct OpenFile {
  int fd = -1;
  std::string version;
  ~OpenFile() {
    if (fd >= 0) ::close(fd);
  }
};

// Bounded LRU of open files. Readers hold a shared_ptr, so eviction never closes an fd
// that a pread is still using.
class PosixStore::FdCache {
 public:
  explicit FdCache(size_t capacity) : capacity_(capacity) {}

  std::shared_ptr<OpenFile> Get(const std::string& key) {
    MutexLock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return nullptr;
    lru_.splice(lru_.begin(), lru_, it->second.second);
    return it->second.first;
  }

  void Put(const std::string& key, std::shared_ptr<OpenFile> file) {
    std::shared_ptr<OpenFile> evicted;  // closed outside the lock
    MutexLock lock(mu_);
    if (map_.count(key)) return;
    lru_.push_front(key);
    map_.emplace(key, std::make_pair(std::move(file), lru_.begin()));
    if (map_.size() > capacity_) {
      auto victim = map_.find(lru_.back());
      evicted = std::move(victim->second.first);
      map_.erase(victim);
      lru_.pop_back();
    }
  }

  void Erase(const std::string& key) {
    MutexLock lock(mu_);
    auto it = map_.find(key);
    if (it == map_.end()) return;
    lru_.erase(it->second.second);
    map_.erase(it);
  }

 private:
  const size_t capacity_;
  Mutex mu_;
  std::list<std::string> lru_ GUARDED_BY(mu_);
  std::unordered_map<std::string,
                     std::pair<std::shared_ptr<OpenFile>, std::list<std::string>::iterator>>
      map_ GUARDED_BY(mu_);
};

PosixStore::PosixStore(std::string root, int root_fd)
    : root_(std::move(root)), root_fd_(root_fd), fds_(std::make_unique<FdCache>(512)) {}

PosixStore::~PosixStore() {
  if (root_fd_ >= 0) ::close(root_fd_);
}

Result<std::unique_ptr<Store>> PosixStore::Open(const std::string& root, bool allow_offline) {
  std::string clean = root;
  while (clean.size() > 1 && clean.back() == '/') clean.pop_back();
  int fd = ::open(root.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0 && !allow_offline) {
    return Status::FromErrno(errno, "cannot open source directory '" + root + "'");
  }
  return std::unique_ptr<Store>(new PosixStore(clean, fd));
}

Result<int> PosixStore::RootFd() {
  int fd = root_fd_.load();
  if (fd >= 0) return fd;
  MutexLock lock(root_mu_);
  fd = root_fd_.load();
  if (fd >= 0) return fd;
  fd = ::open(root_.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return Status::FromErrno(errno, "source directory '" + root_ + "' is unreachable");
  root_fd_ = fd;
  return fd;
}

std::string PosixStore::Url() const { return "file://" + root_; }

std::string PosixStore::VersionOf(uint64_t size, int64_t mtime_ns) {
  return std::to_string(mtime_ns) + "-" + std::to_string(size);
}

Result<ObjectInfo> PosixStore::Stat(const std::string& key) {
  auto root_fd = RootFd();
  if (!root_fd.ok()) return root_fd.status();
  struct stat st;
  int rc = key.empty() ? ::fstat(*root_fd, &st) : -1;
  if (!key.empty()) {
    // Stat the parent directory beneath the root, then the last component without
    // following it, so a symlink is reported as a symlink.
    size_t slash = key.rfind('/');
    std::string dir = slash == std::string::npos ? "" : key.substr(0, slash);
    std::string name = slash == std::string::npos ? key : key.substr(slash + 1);
    int dfd = OpenBeneath(*root_fd, dir, O_RDONLY | O_DIRECTORY);
    if (dfd < 0) return Status::FromErrno(errno, "stat '" + key + "'");
    rc = ::fstatat(dfd, name.c_str(), &st, AT_SYMLINK_NOFOLLOW);
    int err = errno;
    ::close(dfd);
    errno = err;
  }
  if (rc != 0) return Status::FromErrno(errno, "stat '" + key + "'");
  size_t slash = key.rfind('/');
  return InfoFromStat(slash == std::string::npos ? key : key.substr(slash + 1), st);
}

Status PosixStore::List(const std::string& key, const ListSink& sink) {
  auto root_fd = RootFd();
  if (!root_fd.ok()) return root_fd.status();
  int dfd = OpenBeneath(*root_fd, key, O_RDONLY | O_DIRECTORY);
  if (dfd < 0) return Status::FromErrno(errno, "list '" + key + "'");
  DIR* dir = ::fdopendir(dfd);
  if (dir == nullptr) {
    int err = errno;
    ::close(dfd);
    return Status::FromErrno(err, "list '" + key + "'");
  }
  Status status;
  while (true) {
    errno = 0;
    struct dirent* de = ::readdir(dir);
    if (de == nullptr) {
      if (errno != 0) status = Status::FromErrno(errno, "list '" + key + "'");
      break;
    }
    std::string_view name = de->d_name;
    if (name == "." || name == "..") continue;
    struct stat st;
    if (::fstatat(dfd, de->d_name, &st, AT_SYMLINK_NOFOLLOW) != 0) {
      TLOG_WARN("skipping '{}': {}", JoinKey(key, name), std::strerror(errno));
      continue;
    }
    if (!S_ISREG(st.st_mode) && !S_ISDIR(st.st_mode) && !S_ISLNK(st.st_mode)) continue;
    ObjectInfo info = InfoFromStat(std::string(name), st);
    if (info.type == ObjectType::kSymlink) {
      std::string target(static_cast<size_t>(st.st_size) + 1, '\0');
      ssize_t n = ::readlinkat(dfd, de->d_name, target.data(), target.size());
      if (n < 0 || static_cast<size_t>(n) >= target.size()) {
        TLOG_WARN("skipping symlink '{}': cannot read its target", JoinKey(key, name));
        continue;
      }
      target.resize(static_cast<size_t>(n));
      info.link_target = std::move(target);
    }
    status = sink(std::move(info));
    if (!status.ok()) break;
  }
  ::closedir(dir);
  return status;
}

Result<FetchedObject> PosixStore::Fetch(const std::string& key, const std::string& validator,
                                        size_t max_bytes) {
  auto root_fd = RootFd();
  if (!root_fd.ok()) return root_fd.status();
  int fd = OpenBeneath(*root_fd, key, O_RDONLY);
  if (fd < 0) return Status::FromErrno(errno, "open '" + key + "'");
  OpenFile file;  // closes fd
  file.fd = fd;
  struct stat st;
  if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat '" + key + "'");
  FetchedObject out;
  out.validator = VersionOf(static_cast<uint64_t>(st.st_size), MtimeNs(st));
  if (!validator.empty() && validator == out.validator) {
    out.not_modified = true;
    return out;
  }
  if (static_cast<uint64_t>(st.st_size) > max_bytes) {
    return Status::Io("'" + key + "' is larger than " + std::to_string(max_bytes) + " bytes");
  }
  out.body.resize(static_cast<size_t>(st.st_size));
  auto n = PreadFull(fd, out.body.data(), out.body.size(), 0, key);
  if (!n.ok()) return n.status();
  out.body.resize(*n);
  return out;
}

Result<size_t> PosixStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length,
                                     char* buf, ReadVia* via) {
  if (via != nullptr) *via = ReadVia::kOrigin;
  std::shared_ptr<OpenFile> file = fds_->Get(ref.key);
  if (file != nullptr) {
    // A file rewritten in place (or replaced) since it was opened: open it afresh.
    struct stat st;
    if (::fstat(file->fd, &st) != 0 ||
        VersionOf(static_cast<uint64_t>(st.st_size), MtimeNs(st)) != file->version) {
      fds_->Erase(ref.key);
      file = nullptr;
    }
  }
  if (file == nullptr) {
    auto root_fd = RootFd();
    if (!root_fd.ok()) return root_fd.status();
    int fd = OpenBeneath(*root_fd, ref.key, O_RDONLY);
    if (fd < 0) return Status::FromErrno(errno, "open '" + ref.key + "'");
    file = std::make_shared<OpenFile>();
    file->fd = fd;
    struct stat st;
    if (::fstat(fd, &st) != 0) return Status::FromErrno(errno, "stat '" + ref.key + "'");
    file->version = VersionOf(static_cast<uint64_t>(st.st_size), MtimeNs(st));
    if (!ref.version.empty() && file->version != ref.version) {
      return Status::Io("'" + ref.key + "' changed since it was indexed (version " + ref.version +
                        ", now " + file->version + ")");
    }
    fds_->Put(ref.key, file);
  }
  if (!ref.version.empty() && file->version != ref.version) {
    fds_->Erase(ref.key);
    return Status::Io("'" + ref.key + "' changed since it was indexed (version " + ref.version +
                      ", now " + file->version + ")");
  }
  return PreadFull(file->fd, buf, length, offset, ref.key);
}

}  // namespace tierfs
