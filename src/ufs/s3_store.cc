#include "ufs/s3_store.h"

#include <time.h>

#include <algorithm>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <fstream>
#include <mutex>
#include <nlohmann/json.hpp>
#include <pugixml.hpp>
#include <thread>

#include "common/log.h"
#include "common/mutex.h"
#include "common/names.h"
#include "ufs/http_store.h"
#include "ufs/proxy_router.h"

namespace tierfs {
S3Store::S3Store(std::string url, std::string bucket_url, std::string prefix, HttpOptions http,
                 std::vector<std::string> headers, std::shared_ptr<CredentialCache> credentials)
    : url_(std::move(url)),
      bucket_url_(std::move(bucket_url)),
      prefix_(std::move(prefix)),
      http_(std::move(http)),
      headers_(std::move(headers)),
      credentials_(std::move(credentials)) {}

Result<HttpResponse> S3Store::SendSigned(HttpRequest req) {
  if (credentials_ == nullptr) return http_.Send(req);
  const size_t base_headers = req.headers.size();
  for (int attempt = 0;; ++attempt) {
    auto creds = credentials_->Get();
    if (!creds.ok()) return creds.status();
    req.headers.resize(base_headers);
    if (!creds->session_token.empty()) {
      req.headers.push_back("x-amz-security-token: " + creds->session_token);
    }
    req.aws_credentials = creds->access_key + ":" + creds->secret_key;
    auto resp = http_.Send(req);
    if (attempt == 0 && resp.ok() && IsExpiredCredentialsAnswer(resp->status, resp->body)) {
      credentials_->Refused(creds->access_key);
      continue;
    }
    return resp;
  }
}

Result<std::unique_ptr<Store>> S3Store::Open(const std::string& url, const StoreOptions& options) {
  std::string rest = url.substr(5);  // after "s3://"
  size_t slash = rest.find('/');
  std::string bucket = rest.substr(0, slash);
  std::string prefix = slash == std::string::npos ? "" : rest.substr(slash + 1);
  while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
  if (bucket.empty() || bucket.size() > 63 || bucket.find_first_of("?#@:") != std::string::npos) {
    return Status::Invalid("'" + url + "' does not name a bucket (s3://bucket/prefix)");
  }
  std::string region = ResolveAwsRegion(options.s3_region);
  std::string endpoint = options.s3_endpoint;
  bool path_style = options.s3_path_style;
  if (endpoint.empty()) endpoint = "https://s3." + region + ".amazonaws.com";
  while (!endpoint.empty() && endpoint.back() == '/') endpoint.pop_back();
  if (endpoint.find("://") == std::string::npos) {
    return Status::Invalid("--s3-endpoint '" + endpoint + "' is not a URL (http://host:port)");
  }
  std::string bucket_url;
  if (path_style) {
    bucket_url = endpoint + "/" + bucket + "/";
  } else {
    size_t host = endpoint.find("://") + 3;
    bucket_url = endpoint.substr(0, host) + bucket + "." + endpoint.substr(host) + "/";
  }
  HttpOptions http = options.http;
  std::vector<std::string> headers = {"x-amz-content-sha256: UNSIGNED-PAYLOAD"};
  if (auto spec = ParseProxyList(http.proxy_list); !spec.ok()) {
    return spec.status();
  } else if (!options.s3_no_sign && !options.s3_through_proxy && spec->has_caches()) {
    return Status(EPERM,
                  "--http-proxy with a private bucket: the caches would keep its blocks and "
                  "serve them to anyone who can reach them; add --s3-through-proxy to accept "
                  "that (keep the caches behind a network policy: docs/cluster.md), or use "
                  "--no-sign-request for a public bucket");
  }
  std::shared_ptr<CredentialCache> credentials;
  if (!options.s3_no_sign) {
    CredentialChainOptions chain;
    chain.credentials_file = options.s3_credentials_file;
    chain.given.access_key = options.s3_access_key_id;
    chain.given.secret_key = options.s3_secret_access_key;
    chain.given.session_token = options.s3_session_token;
    chain.region = region;
    chain.imds_v1 = options.s3_imds_v1;
    chain.http = options.http;
    AwsCredentials first;
    auto provider = ResolveCredentialChain(chain, &first);
    if (!provider.ok()) return provider.status();
    credentials = std::make_shared<CredentialCache>(std::move(*provider), std::move(first));
    http.aws_sigv4 = "aws:amz:" + region + ":s3";
  }
  std::string clean_url = "s3://" + bucket + (prefix.empty() ? "" : "/" + prefix);
  return std::unique_ptr<Store>(new S3Store(clean_url, bucket_url,
                                            prefix.empty() ? "" : prefix + "/", std::move(http),
                                            std::move(headers), std::move(credentials)));
}

std::string S3Store::FullKey(const std::string& key) const { return prefix_ + key; }

std::string S3Store::ObjectUrl(const std::string& key) const {
  return bucket_url_ + PercentEncode(FullKey(key), /*keep_slash=*/true);
}

Result<ObjectInfo> S3Store::Stat(const std::string& key) {
  if (key.empty()) {
    // The root exists if the bucket answers a listing; this also checks the credentials.
    HttpRequest req;
    req.url = bucket_url_ + "?list-type=2&max-keys=1&prefix=" + PercentEncode(prefix_, false);
    req.headers = headers_;
    auto resp = SendSigned(req);
    if (!resp.ok()) return resp.status();
    if (resp->status == 403 || resp->status == 401) {
      return Status(EACCES, url_ + ": access denied (HTTP " + std::to_string(resp->status) +
                                "); check the credentials and region");
    }
    if (resp->status != 200) {
      return Status(ErrnoForHttpStatus(resp->status),
                    url_ + ": HTTP " + std::to_string(resp->status));
    }
    ObjectInfo root;
    root.type = ObjectType::kDirectory;
    return root;
  }
  HttpRequest req;
  req.head = true;
  req.url = ObjectUrl(key);
  req.headers = headers_;
  auto resp = SendSigned(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "HEAD " + key + ": HTTP " + std::to_string(resp->status));
  }
  ObjectInfo info;
  size_t slash = key.rfind('/');
  info.name = slash == std::string::npos ? key : key.substr(slash + 1);
  try {
    info.size = std::stoull(resp->header("content-length"));
  } catch (...) {
    return Status::Io("HEAD " + key + ": bad Content-Length");
  }
  info.version = "etag:" + resp->header("etag");
  return info;
}

Result<S3ListPage> ParseListObjectsV2(std::string_view xml, const std::string& list_prefix) {
  pugi::xml_document doc;
  if (!doc.load_buffer(xml.data(), xml.size())) return Status::Io("malformed XML");
  pugi::xml_node result = doc.child("ListBucketResult");
  if (!result) return Status::Io("not a ListBucketResult");
  S3ListPage page;
  for (pugi::xml_node p : result.children("CommonPrefixes")) {
    std::string full = p.child_value("Prefix");
    if (full.size() <= list_prefix.size() || full.rfind(list_prefix, 0) != 0) continue;
    std::string name = full.substr(list_prefix.size());
    if (!name.empty() && name.back() == '/') name.pop_back();
    if (name.empty()) continue;
    ObjectInfo info;
    info.name = std::move(name);
    info.type = ObjectType::kDirectory;
    page.entries.push_back(std::move(info));
  }
  for (pugi::xml_node c : result.children("Contents")) {
    std::string full = c.child_value("Key");
    if (full.size() <= list_prefix.size() || full.rfind(list_prefix, 0) != 0) continue;
    ObjectInfo info;
    info.name = full.substr(list_prefix.size());
    if (info.name.back() == '/') continue;  // a "directory marker" object
    info.type = ObjectType::kFile;
    const char* size = c.child_value("Size");
    char* end = nullptr;
    errno = 0;
    unsigned long long n = std::strtoull(size, &end, 10);
    if (*size < '0' || *size > '9' || *end != '\0' || errno == ERANGE || n > (1ULL << 53)) {
      return Status::Io("object '" + full + "' has a bad Size '" + size + "'");
    }
    info.size = n;
    info.mtime_ns = ParseIso8601(c.child_value("LastModified")).value_or(0);
    info.version = "etag:" + std::string(c.child_value("ETag"));
    page.entries.push_back(std::move(info));
  }
  if (std::string(result.child_value("IsTruncated")) == "true") {
    page.next_token = result.child_value("NextContinuationToken");
    if (page.next_token.empty()) return Status::Io("truncated without a continuation token");
  }
  return page;
}

Result<S3ListPage> S3Store::ListPage(const std::string& prefix, bool delimited,
                                     const std::string& token, const std::string& start_after) {
  // Query parameters in sorted order, values encoded: curl signs the query as given.
  std::string query;
  if (!token.empty()) query += "continuation-token=" + PercentEncode(token, false) + "&";
  if (delimited) query += "delimiter=%2F&";
  query += "list-type=2&prefix=" + PercentEncode(prefix, false);
  if (!start_after.empty()) query += "&start-after=" + PercentEncode(start_after, false);
  HttpRequest req;
  req.url = bucket_url_ + "?" + query;
  req.headers = headers_;
  auto resp = SendSigned(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "list " + url_ + " (" + prefix + "): HTTP " + std::to_string(resp->status));
  }
  auto page = ParseListObjectsV2(resp->body, prefix);
  if (!page.ok()) return Status::Io("list " + url_ + ": " + page.status().message());
  return page;
}

Status S3Store::List(const std::string& key, const ListSink& sink) {
  const std::string list_prefix = key.empty() ? prefix_ : FullKey(key) + "/";
  std::string token;
  do {
    auto page = ListPage(list_prefix, /*delimited=*/true, token, "");
    if (!page.ok()) return page.status();
    for (ObjectInfo& info : page->entries) TIERFS_RETURN_IF_ERROR(sink(std::move(info)));
    token = std::move(page->next_token);
  } while (!token.empty());
  return Status::Ok();
}

std::vector<std::string> S3Store::RangeBoundaries(size_t want) {
  // Common prefixes of the first page at the root, then one level down while there are
  // too few: enough to keep `want` listings busy.
  std::vector<std::string> cuts;
  std::vector<std::string> level{prefix_};
  for (int depth = 0; depth < 3 && cuts.size() < want; ++depth) {
    std::vector<std::string> next;
    for (const std::string& p : level) {
      auto page = ListPage(p, /*delimited=*/true, "", "");
      if (!page.ok()) return cuts;  // only a hint: list in one range
      for (const ObjectInfo& e : page->entries) {
        if (e.type == ObjectType::kDirectory) next.push_back(p + e.name + "/");
      }
      if (next.size() >= 4 * want) break;
    }
    if (next.empty()) break;
    cuts = next;
    level = std::move(next);
  }
  std::sort(cuts.begin(), cuts.end());
  if (!cuts.empty()) cuts.erase(cuts.begin());  // the first range starts at the beginning
  // At most 2 ranges per listing (every k-th cut): each range's last page may hold keys of
  // the next one, which the server lists for nothing.
  const size_t max_ranges = 2 * want;
  if (cuts.size() + 1 > max_ranges) {
    std::vector<std::string> thinned;
    const double step = static_cast<double>(cuts.size()) / static_cast<double>(max_ranges - 1);
    for (size_t i = 1; i < max_ranges; ++i) {
      thinned.push_back(cuts[static_cast<size_t>(static_cast<double>(i) * step) - 1]);
    }
    thinned.erase(std::unique(thinned.begin(), thinned.end()), thinned.end());
    cuts = std::move(thinned);
  }
  return cuts;
}

Status S3Store::ListFlat(const ListSink& sink) {
  constexpr size_t kStreams = 4;
  constexpr size_t kPagesAhead = 8;  // per range: bounds the memory a fast lister takes
  const std::vector<std::string> cuts = RangeBoundaries(kStreams);
  struct Range {
    std::string from, to;  // [from, to) in full keys; empty: open
    std::deque<std::vector<ObjectInfo>> pages;
    bool done = false;
    Status error = Status::Ok();
  };
  std::vector<Range> ranges(cuts.size() + 1);
  for (size_t i = 0; i < cuts.size(); ++i) {
    ranges[i].to = cuts[i];
    ranges[i + 1].from = cuts[i];
  }
  Mutex mu;
  std::condition_variable cv;
  bool stop = false;
  size_t next_range = 0;
  auto lister = [&] {
    while (true) {
      size_t r;
      {
        MutexLock lock(mu);
        if (stop || next_range == ranges.size()) return;
        r = next_range++;
      }
      Range& range = ranges[r];
      std::string token;
      Status status = Status::Ok();
      bool end = false;
      while (!end) {
        auto page = ListPage(prefix_, /*delimited=*/false, token, token.empty() ? range.from : "");
        if (!page.ok()) {
          status = page.status();
          break;
        }
        std::vector<ObjectInfo> keep;
        for (ObjectInfo& e : page->entries) {
          if (!range.to.empty() && prefix_ + e.name >= range.to) {
            end = true;
            break;
          }
          keep.push_back(std::move(e));
        }
        token = std::move(page->next_token);
        if (token.empty()) end = true;
        MutexLock lock(mu);
        cv.wait(lock.native(),
                [&]() REQUIRES(mu) { return stop || range.pages.size() < kPagesAhead; });
        if (stop) return;
        range.pages.push_back(std::move(keep));
        cv.notify_all();
      }
      MutexLock lock(mu);
      range.error = status;
      range.done = true;
      cv.notify_all();
    }
  };
  std::vector<std::thread> threads;
  for (size_t i = 0; i < std::min(kStreams, ranges.size()); ++i) threads.emplace_back(lister);
  Status result = Status::Ok();
  for (Range& range : ranges) {
    while (result.ok()) {
      std::vector<ObjectInfo> page;
      {
        MutexLock lock(mu);
        cv.wait(lock.native(), [&]() REQUIRES(mu) { return !range.pages.empty() || range.done; });
        if (range.pages.empty()) {
          result = range.error;
          break;
        }
        page = std::move(range.pages.front());
        range.pages.pop_front();
        cv.notify_all();
      }
      for (ObjectInfo& e : page) {
        result = sink(std::move(e));
        if (!result.ok()) break;
      }
    }
    if (!result.ok()) break;
  }
  {
    MutexLock lock(mu);
    stop = true;
  }
  cv.notify_all();
  for (auto& t : threads) t.join();
  return result;
}

Result<FetchedObject> S3Store::Fetch(const std::string& key, const std::string& validator,
                                     size_t max_bytes) {
  HttpRequest req;
  req.url = ObjectUrl(key);
  req.headers = headers_;
  return FetchWhole([this](const HttpRequest& r) { return SendSigned(r); }, std::move(req),
                    url_ + "/" + key, validator, max_bytes);
}

Status S3Store::PutFile(const std::string& key, const std::string& path) {
  HttpRequest req;
  req.url = ObjectUrl(key);
  req.headers = headers_;
  req.upload_path = path;
  auto resp = SendSigned(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "PUT " + url_ + "/" + key + ": HTTP " + std::to_string(resp->status));
  }
  return Status::Ok();
}

Result<size_t> S3Store::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                  ReadVia* via) {
  if (length == 0) return size_t{0};
  HttpRequest req;
  req.url = ObjectUrl(ref.key);
  req.range = std::make_pair(offset, offset + length - 1);
  req.headers = headers_;
  if (ref.version.rfind("etag:", 0) == 0 && ref.version.size() > 5) {
    req.headers.push_back("If-Match: " + ref.version.substr(5));
  }
  req.sink = buf;
  req.capacity = length;
  ExpectVersion(ref, offset, &req);
  auto resp = SendSigned(req);
  if (resp.ok() && via != nullptr) *via = resp->via;
  return BytesFromRangedRead(resp, ref.key);
}

nlohmann::json S3Store::RoutesJson() const { return http_.RoutesJson(); }

}  // namespace tierfs
