// NfsStore: nfs://host/export[/path][?version=3|4] as a Store, through libnfs — no kernel
// NFS client, no root, no mount on the node.
//
// Each calling thread borrows an NFS session (a libnfs context mounted on the export)
// from a pool, so reads from many threads (readers and prefetch workers) run as several
// outstanding requests. A session that fails at the transport level (server restarted,
// connection reset, timeout) is discarded and a new one is mounted on next use, so the
// store reconnects by itself. Files are read with READDIRPLUS listings, LSTAT, and
// pread on handles kept open per session; a file's version is its mtime and size.
#pragma once

#include <memory>
#include <string>

#include "ufs/store.h"

namespace tierfs {

class NfsStore : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& url, const StoreOptions& options);
  ~NfsStore() override;

  std::string Url() const override { return url_; }
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;

 private:
  class Session;
  class Pool;
  NfsStore(std::string url, std::unique_ptr<Pool> pool);
  Result<size_t> ReadOnce(const ObjectRef& ref, uint64_t offset, size_t length, char* buf);

  const std::string url_;
  std::unique_ptr<Pool> pool_;
};

}  // namespace tierfs
