// S3Store: s3://bucket/prefix as a Store, through the S3 REST API.
//
// Listing is ListObjectsV2 with '/' as delimiter (common prefixes become directories) and
// continuation tokens; reads are ranged GETs with If-Match on the ETag captured at index
// time. Requests are signed with SigV4 by curl (CURLOPT_AWS_SIGV4), with the payload hash
// header and the canonical query string built here as curl 7.88 needs. Credentials come
// from the default chain (aws_credentials.h), are renewed while mounted, and never reach a
// log line, a URL, ps or /proc/mounts.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "ufs/aws_credentials.h"
#include "ufs/http_client.h"
#include "ufs/store.h"

namespace tierfs {

// One page of a ListObjectsV2 answer for `list_prefix` (the listed directory's full key
// prefix, ending in '/' unless it is the bucket root): its direct children, and the
// continuation token if the listing goes on. Keys outside the prefix are dropped; sizes
// must be plain decimal numbers up to 2^53.
struct S3ListPage {
  std::vector<ObjectInfo> entries;
  std::string next_token;  // empty: last page
};
Result<S3ListPage> ParseListObjectsV2(std::string_view xml, const std::string& list_prefix);

class S3Store : public Store {
 public:
  static Result<std::unique_ptr<Store>> Open(const std::string& url, const StoreOptions& options);

  std::string Url() const override { return url_; }
  nlohmann::json RoutesJson() const override;
  Result<ObjectInfo> Stat(const std::string& key) override;
  Status List(const std::string& key, const ListSink& sink) override;
  // No delimiter: pages of up to 1,000 keys of every level. The key space is cut into
  // ranges at the first levels' common prefixes (only a hint: the ranges cover every key
  // whatever the server reports) and the ranges are listed in parallel, in order.
  Status ListFlat(const ListSink& sink) override;
  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override;
  Result<FetchedObject> Fetch(const std::string& key, const std::string& validator,
                              size_t max_bytes) override;
  Status PutFile(const std::string& key, const std::string& path) override;

 private:
  S3Store(std::string url, std::string bucket_url, std::string prefix, HttpOptions http,
          std::vector<std::string> headers, std::shared_ptr<CredentialCache> credentials);
  // Signs `req` with the credentials in use (none: anonymous) and sends it; an answer that
  // says they expired renews them and sends it once more.
  Result<HttpResponse> SendSigned(HttpRequest req);
  std::string ObjectUrl(const std::string& key) const;
  // One ListObjectsV2 page under `prefix` (a full key prefix).
  Result<S3ListPage> ListPage(const std::string& prefix, bool delimited, const std::string& token,
                              const std::string& start_after);
  // Where to cut the key space for parallel flat listing (sorted full keys).
  std::vector<std::string> RangeBoundaries(size_t want);
  std::string FullKey(const std::string& key) const;

  const std::string url_;         // s3://bucket/prefix (no trailing slash)
  const std::string bucket_url_;  // endpoint URL addressing the bucket, ending in '/'
  const std::string prefix_;      // "" or "some/prefix/"
  HttpClient http_;
  const std::vector<std::string> headers_;              // x-amz-content-sha256
  const std::shared_ptr<CredentialCache> credentials_;  // null: unsigned requests
};

}  // namespace tierfs
