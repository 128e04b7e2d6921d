// PosixStore: a local directory (or a kernel NFS/Lustre/BeeGFS mount) as a Store.
//
// All opens are relative to a directory fd taken at Open() and use openat2 with
// RESOLVE_BENEATH, so no key — even a hostile one — reaches outside the root. Open file
// descriptors are kept in a small bounded cache, since training reads the same files
// block after block.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <string>

#include "common/mutex.h"
#include "ufs/store.h"

namespace tierfs {

class PosixStore : public Store {
 public:
  // Fails with ENOENT/ENOTDIR/EACCES if `root` is not a readable directory, unless
  // `allow_offline`: then calls fail until the directory can be opened (a mount serving
  // from its cache while the source is away).
  static Result<std::unique_ptr<Store>> Open(const std::string& root, bool allow_offline = false);
  ~PosixStore() override;

  PosixStore(const PosixStore&) = delete;
  PosixStore& operator=(const PosixStore&) = delete;

  std::string Url() const override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  // One open file: its size, version and bytes agree even while it is being replaced.
  Result<FetchedObject> Fetch(const std::string& key, const std::string& validator,
                              size_t max_bytes) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;

  // The version tag PosixStore gives a file: changes when its size or mtime does.
  static std::string VersionOf(uint64_t size, int64_t mtime_ns);

 private:
  class FdCache;
  PosixStore(std::string root, int root_fd);
  Result<int> RootFd();

  std::string root_;
  Mutex root_mu_;  // serializes reopening the root
  std::atomic<int> root_fd_;
  std::unique_ptr<FdCache> fds_;
};

}  // namespace tierfs
