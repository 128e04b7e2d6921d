#include "ufs/http_store.h"

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <vector>

#include "common/checksum.h"
#include "common/log.h"
#include "ufs/listing.h"
#include "ufs/proxy_router.h"

namespace tierfs {
namespace {

// Conditional headers that make a read fail (412) if the object is no longer `version`.
std::vector<std::string> ConditionalHeaders(const std::string& version) {
  if (version.rfind("etag:", 0) == 0) return {"If-Match: " + version.substr(5)};
  if (version.rfind("lm:", 0) == 0) {
    std::string date = version.substr(3, version.rfind('|') - 3);
    return {"If-Unmodified-Since: " + date};
  }
  return {};
}

std::string Basename(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}

}  // namespace

void ExpectVersion(const ObjectRef& ref, uint64_t offset, HttpRequest* req) {
  req->cacheable = true;
  // The block's identity: object, version and where the range starts.
  req->object = ref.key + '\0' + ref.version;
  req->placement = Xxh3(req->object + '\0' + std::to_string(offset));
  if (req->placement == 0) req->placement = 1;
  if (ref.version.rfind("etag:", 0) == 0) {
    req->expect_etag = ref.version.substr(5);
  } else if (ref.version.rfind("lm:", 0) == 0) {
    req->expect_last_modified = ref.version.substr(3, ref.version.rfind('|') - 3);
  }
}

std::string HttpVersion(const std::string& etag, const std::string& last_modified, uint64_t size) {
  if (!etag.empty() && etag.rfind("W/", 0) != 0) return "etag:" + etag;
  if (!last_modified.empty()) return "lm:" + last_modified + "|" + std::to_string(size);
  return "size:" + std::to_string(size);
}

Result<FetchedObject> FetchWhole(const SendFn& send, HttpRequest req, const std::string& what,
                                 const std::string& validator, size_t max_bytes) {
  if (validator.rfind("etag:", 0) == 0) {
    req.headers.push_back("If-None-Match: " + validator.substr(5));
  } else if (validator.rfind("lm:", 0) == 0) {
    req.headers.push_back("If-Modified-Since: " + validator.substr(3, validator.rfind('|') - 3));
  }
  req.max_body = max_bytes;
  auto resp = send(req);
  if (!resp.ok()) return resp.status();
  FetchedObject out;
  if (resp->status == 304 && !validator.empty()) {
    out.not_modified = true;
    out.validator = validator;
    return out;
  }
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "GET " + what + ": HTTP " + std::to_string(resp->status));
  }
  out.body = std::move(resp->body);
  out.validator = HttpVersion(resp->header("etag"), resp->header("last-modified"), out.body.size());
  return out;
}

HttpStore::HttpStore(std::string base, HttpOptions http, int head_parallelism)
    : base_(std::move(base)), http_(std::move(http)), head_parallelism_(head_parallelism) {}

Result<std::unique_ptr<Store>> HttpStore::Open(const std::string& url,
                                               const StoreOptions& options) {
  std::string base = url;
  if (size_t q = base.find_first_of("?#"); q != std::string::npos) base.resize(q);
  size_t scheme = base.find("://");
  if (scheme == std::string::npos || base.find('/', scheme + 3) == scheme + 3) {
    return Status::Invalid("'" + url + "' has no host");
  }
  if (base.find('@', scheme) != std::string::npos &&
      base.find('@', scheme) < base.find('/', scheme + 3)) {
    return Status::Invalid(
        "credentials in the URL are not supported (they would show in ps and /proc/mounts)");
  }
  if (base.find('/', scheme + 3) == std::string::npos) base += "/";
  if (base.back() != '/') base += "/";
  if (auto spec = ParseProxyList(options.http.proxy_list); !spec.ok()) return spec.status();
  HttpOptions http = options.http;
  return std::unique_ptr<Store>(new HttpStore(base, http, 16));
}

std::string HttpStore::UrlFor(const std::string& key, bool dir) const {
  std::string url = base_ + PercentEncode(key, /*keep_slash=*/true);
  if (dir && !key.empty()) url += "/";
  return url;
}

// The size of `key` from a one-byte ranged GET: Content-Range's total, or (from a server
// that ignores Range) the length of a small body.
Result<uint64_t> HttpStore::SizeByRangeProbe(const std::string& key) {
  HttpRequest req;
  req.url = UrlFor(key, false);
  req.range = std::make_pair(uint64_t{0}, uint64_t{0});
  req.max_body = 1 << 20;
  auto resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  std::string range = resp->header("content-range");  // "bytes 0-0/1234" or "bytes */0"
  size_t slash = range.rfind('/');
  if ((resp->status == 206 || resp->status == 416) && slash != std::string::npos) {
    try {
      return static_cast<uint64_t>(std::stoull(range.substr(slash + 1)));
    } catch (...) {
    }
  }
  if (resp->status == 200) return static_cast<uint64_t>(resp->body.size());
  return Status::Io("cannot tell the size of '" + key + "' (HTTP " + std::to_string(resp->status) +
                    ")");
}

Result<ObjectInfo> HttpStore::Head(const std::string& key, const std::string& name) {
  HttpRequest req;
  req.head = true;
  req.url = UrlFor(key, false);
  auto resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "HEAD " + key + ": HTTP " + std::to_string(resp->status));
  }
  ObjectInfo info;
  info.name = name;
  info.type = ObjectType::kFile;
  std::string length = resp->header("content-length");
  if (!length.empty()) {
    try {
      info.size = std::stoull(length);
    } catch (...) {
      return Status::Io("HEAD " + key + ": bad Content-Length");
    }
  } else {
    auto size = SizeByRangeProbe(key);  // some servers (Apache, for empty files) omit it
    if (!size.ok()) return size.status();
    info.size = *size;
  }
  std::string lm = resp->header("last-modified");
  if (auto t = ParseHttpDate(lm)) info.mtime_ns = *t;
  info.version = HttpVersion(resp->header("etag"), lm, info.size);
  return info;
}

Result<ObjectInfo> HttpStore::Stat(const std::string& key) {
  if (key.empty()) {
    // The root exists if its listing answers; HEAD spares fetching it (List does that).
    HttpRequest req;
    req.head = true;
    req.url = base_;
    auto resp = http_.Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return Status(ErrnoForHttpStatus(resp->status),
                    base_ + ": HTTP " + std::to_string(resp->status));
    }
    ObjectInfo root;
    root.type = ObjectType::kDirectory;
    return root;
  }
  return Head(key, Basename(key));
}

Result<FetchedObject> HttpStore::Fetch(const std::string& key, const std::string& validator,
                                       size_t max_bytes) {
  HttpRequest req;
  req.url = UrlFor(key, false);
  const std::string what = RedactUrl(req.url);
  return FetchWhole([this](const HttpRequest& r) { return http_.Send(r); }, std::move(req), what,
                    validator, max_bytes);
}

Status HttpStore::List(const std::string& key, const ListSink& sink) {
  HttpRequest req;
  req.url = UrlFor(key, true);
  req.headers = {"Accept: application/json, text/html;q=0.9, */*;q=0.5"};
  auto resp = http_.Send(req);
  if (!resp.ok()) return resp.status();
  if (resp->status >= 300 && resp->status < 400) {
    return Status(EIO, "list " + RedactUrl(req.url) + ": HTTP " + std::to_string(resp->status) +
                           " redirect not followed (tierfs never leaves the source URL)");
  }
  if (resp->status != 200) {
    return Status(ErrnoForHttpStatus(resp->status),
                  "list " + RedactUrl(req.url) + ": HTTP " + std::to_string(resp->status));
  }
  const std::string type = resp->header("content-type");
  Result<std::vector<ListingEntry>> entries =
      type.find("json") != std::string::npos || (!resp->body.empty() && resp->body[0] == '[')
          ? ParseNginxJsonListing(resp->body)
          : ParseHtmlListing(resp->body, req.url);
  if (!entries.ok()) return entries.status();

  // Entries the listing describes exactly go out at once; the rest need a HEAD each.
  std::vector<const ListingEntry*> need_head;
  for (const ListingEntry& e : *entries) {
    if (e.is_dir) {
      ObjectInfo info;
      info.name = e.name;
      info.type = ObjectType::kDirectory;
      if (e.mtime) info.mtime_ns = ParseHttpDate(*e.mtime).value_or(0);
      TIERFS_RETURN_IF_ERROR(sink(std::move(info)));
    } else if (e.size && e.mtime) {
      ObjectInfo info;
      info.name = e.name;
      info.size = *e.size;
      info.mtime_ns = ParseHttpDate(*e.mtime).value_or(0);
      info.version = HttpVersion("", *e.mtime, *e.size);
      TIERFS_RETURN_IF_ERROR(sink(std::move(info)));
    } else {
      need_head.push_back(&e);
    }
  }
  if (need_head.empty()) return Status::Ok();
  std::vector<Result<ObjectInfo>> results(need_head.size(), Status::Io("not fetched"));
  std::atomic<size_t> next{0};
  std::vector<std::thread> workers;
  int n = std::min<int>(head_parallelism_, static_cast<int>(need_head.size()));
  workers.reserve(n);
  for (int w = 0; w < n; ++w) {
    workers.emplace_back([&] {
      for (size_t i = next++; i < need_head.size(); i = next++) {
        results[i] = Head(JoinKey(key, need_head[i]->name), need_head[i]->name);
      }
    });
  }
  for (auto& t : workers) t.join();
  for (size_t i = 0; i < results.size(); ++i) {
    if (!results[i].ok()) {
      // A listed name that cannot be HEADed (e.g. a link the server does not serve) is
      // skipped; an unreachable server fails the listing.
      if (results[i].status().error() == ENOENT || results[i].status().error() == EACCES) {
        TLOG_WARN("index: skipping '{}': {}", JoinKey(key, need_head[i]->name),
                  results[i].status().message());
        continue;
      }
      return results[i].status();
    }
    TIERFS_RETURN_IF_ERROR(sink(std::move(*results[i])));
  }
  return Status::Ok();
}

Result<size_t> HttpStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                    ReadVia* via) {
  if (length == 0) return size_t{0};
  HttpRequest req;
  req.url = UrlFor(ref.key, false);
  req.range = std::make_pair(offset, offset + length - 1);
  req.headers = ConditionalHeaders(ref.version);
  req.sink = buf;
  req.capacity = length;
  ExpectVersion(ref, offset, &req);
  auto resp = http_.Send(req);
  if (resp.ok() && via != nullptr) *via = resp->via;
  return BytesFromRangedRead(resp, ref.key);
}

nlohmann::json HttpStore::RoutesJson() const { return http_.RoutesJson(); }

}  // namespace tierfs
