// HttpStore: an http:// or https:// directory tree as a Store.
//
// Listings (index build only) come from the server's directory index pages (Apache,
// nginx html/json, python http.server) or from a manifest. Sizes and versions come from
// the listing when it gives them exactly (nginx json), otherwise from a HEAD per file,
// 16 at a time. An object's version is its strong ETag ("etag:...") or, without one, its
// Last-Modified date ("lm:..."); reads send If-Match / If-Unmodified-Since, so a file
// changed after indexing fails with EIO instead of mixing bytes of two versions.
// Nothing outside the base URL is ever requested: keys are percent-encoded per segment
// and redirects are not followed.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "ufs/http_client.h"
#include "ufs/store.h"

namespace tierfs {

class HttpStore : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& url, const StoreOptions& options);

  std::string Url() const override { return base_; }
  nlohmann::json RoutesJson() const override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;
  Result<FetchedObject> Fetch(const std::string& key, const std::string& validator,
                              size_t max_bytes) override;

 private:
  HttpStore(std::string base, HttpOptions http, int head_parallelism);
  std::string UrlFor(const std::string& key, bool dir) const;
  Result<ObjectInfo> Head(const std::string& key, const std::string& name);
  Result<uint64_t> SizeByRangeProbe(const std::string& key);

  const std::string base_;  // ends with '/'
  HttpClient http_;
  const int head_parallelism_;
};

// Builds the version tag from response headers (strong ETag, else Last-Modified + size).
std::string HttpVersion(const std::string& etag, const std::string& last_modified, uint64_t size);

// A conditional GET of a whole small object (HttpStore and S3Store share it): `validator`
// is an earlier answer's "etag:..." or "lm:..." (sent as If-None-Match / If-Modified-Since).
using SendFn = std::function<Result<HttpResponse>(const HttpRequest&)>;
Result<FetchedObject> FetchWhole(const SendFn& send, HttpRequest req, const std::string& what,
                                 const std::string& validator, size_t max_bytes);

// Marks `req`, a read of `ref` from `offset`, as one block: cacheable by cluster caches,
// placed by (key, version, offset) or by the object (HttpOptions::place_by_object), and
// checked against the version the index recorded.
void ExpectVersion(const ObjectRef& ref, uint64_t offset, HttpRequest* req);

}  // namespace tierfs
