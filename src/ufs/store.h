// Store: the remote (or local) source of a data set, as tierfs sees it.
//
// Keys are '/'-separated paths relative to the store's root, with no leading '/'; the
// root itself is "". A store is only asked about keys it listed itself (via the index),
// but implementations must still refuse keys that would leave the root.
//
// Thread safety: every method may be called from many threads at once.
// Errors: every call returns a Status whose errno is what a reader should see (ENOENT,
// EACCES, EIO, ESTALE when the object changed since it was indexed).
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"
#include "ufs/http_client.h"
#include "ufs/read_via.h"

namespace tierfs {

enum class ObjectType : uint8_t { kFile = 1, kDirectory = 2, kSymlink = 3 };

// What a listing or Stat tells about one object.
struct ObjectInfo {
  std::string name;  // last path component (empty for the root)
  ObjectType type = ObjectType::kFile;
  uint64_t size = 0;
  int64_t mtime_ns = 0;
  uint32_t mode = 0;        // permission bits (0 = store has none; the index picks defaults)
  std::string version;      // ETag, change attribute or "mtime-size": changes when bytes do
  std::string link_target;  // for symlinks
};

// A small object read whole by Store::Fetch.
struct FetchedObject {
  bool not_modified = false;  // the object still has the validator given: no body
  std::string body;
  std::string validator;  // give it to the next Fetch of the same key
};

// Names one immutable version of an object. Reads check `version` where the store can.
struct ObjectRef {
  std::string key;
  std::string version;
};

class Store {
 public:
  virtual ~Store() = default;

  // The source URL this store reads, without credentials. Recorded in the index.
  virtual std::string Url() const = 0;

  virtual Result<ObjectInfo> Stat(const std::string& key) = 0;

  // Streams the entries of directory `key` to `sink`, in no particular order. Returning
  // a non-OK Status from `sink` stops the listing and is returned.
  using ListSink = std::function<Status(ObjectInfo&&)>;
  virtual Status List(const std::string& key, const ListSink& sink) = 0;

  // Streams every object under the root in key order, `name` holding its whole key
  // (directories are what the keys imply). Stores whose listing is flat by nature (S3:
  // ~1,000 keys a request instead of a request or more per directory) implement it;
  // ENOTSUP from the others, which are walked with List.
  virtual Status ListFlat(const ListSink& sink);

  // The routes reads take (cluster caches, DIRECT) and their counters, as a JSON array;
  // empty for stores that are not read over HTTP.
  virtual nlohmann::json RoutesJson() const;

  // The key prefixes of the sources of a namespace (namespace_store.h), in key order;
  // empty for a store that is one source.
  virtual std::vector<std::string> SourcePrefixes() const { return {}; }

  // Reads up to `length` bytes at `offset` into `buf`. Returns the bytes read, which is
  // less than `length` only at the end of the object. If `via` is not null it is set to
  // where the bytes came from (kOrigin unless a cluster cache served them).
  virtual Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                   ReadVia* via) = 0;

  // Reads a small object (at most `max_bytes`) whole and fresh: through cluster caches it
  // is never answered from a cached copy. Given the validator of an earlier fetch, an
  // unchanged object answers not_modified (HTTP: a conditional GET, 304).
  virtual Result<FetchedObject> Fetch(const std::string& key, const std::string& validator,
                                      size_t max_bytes);

  // Writes the local file `path` as object `key`, replacing any object there at once
  // (readers see the old or the new object, whole). ENOTSUP where the store is read-only.
  virtual Status PutFile(const std::string& key, const std::string& path);
};

struct StoreOptions {
  // Open even if the source cannot be reached now (a mount with an index and a warm
  // cache serves what it has); calls fail until the source is back.
  bool allow_offline = false;
  HttpOptions http;      // timeouts, retries, TLS (http://, https://, s3://)
  std::string manifest;  // file or URL listing the data set: no crawl (see manifest_store.h)
  // s3:// only.
  std::string s3_endpoint;          // e.g. http://127.0.0.1:4568; default AWS for the region
  std::string s3_region;            // default: $AWS_REGION, ~/.aws/config, us-east-1
  bool s3_path_style = false;       // endpoint/bucket/key instead of bucket.endpoint/key
  bool s3_no_sign = false;          // anonymous requests
  std::string s3_credentials_file;  // an AWS credentials file (e.g. a Kubernetes secret)
  bool s3_imds_v1 = false;          // let the EC2 metadata lookup fall back to IMDSv1
  // Keys of this source only (a Fluid mount's secret); set, no credential chain is asked.
  // Never on a command line, in a log line or an error.
  std::string s3_access_key_id, s3_secret_access_key, s3_session_token;
  // Signed (private) S3 reads may go through --http-proxy caches: whoever reaches a cache
  // can then read what it holds. Off: such a mount is refused.
  bool s3_through_proxy = false;
  // Index builds: archives served as directories of their members (a mask of
  // ArchiveMask(ArchiveKind), metadata/archive.h), and whether "x.tar" stays a file with
  // its members under "x" (else "x.tar" is the directory).
  unsigned archives = 0;
  bool archive_strip_suffix = false;
  // nfs:// only: the uid/gid presented to the server (-1: the caller's).
  int nfs_uid = -1;
  int nfs_gid = -1;
};

// Opens the store for `url`: "/path" or "file:///path" (PosixStore), http(s):// (HttpStore:
// listings or a manifest), s3:// (S3Store), nfs:// (NfsStore); any other scheme is refused
// with one line naming it. Checks options and, unless `options.allow_offline`, that the
// source answers.
Result<std::unique_ptr<Store>> OpenStore(const std::string& url, const StoreOptions& options);

// Joins a directory key and a child name into the child's key.
std::string JoinKey(std::string_view dir, std::string_view name);

}  // namespace tierfs
