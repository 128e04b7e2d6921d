// CurlTransport: HttpClient's transport (http_client.h) on libcurl: one easy handle per
// attempt from a pool of idle ones (each keeping its connections), DNS and TLS sessions
// shared between them, and the body written straight into the request's sink.
#include <curl/curl.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <mutex>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "ufs/http_client.h"
#include "ufs/proxy_router.h"

namespace tierfs {
namespace {

std::once_flag curl_init_once;

struct Transfer {
  const HttpRequest* request;
  CURL* easy;
  HttpResponse* response;
  bool status_checked = false;
  uint64_t skip = 0;       // bytes to drop first (server ignored Range)
  uint64_t remaining = 0;  // bytes still wanted into the sink
  bool overflow = false;
  int upload_fd = -1;  // the body of a PUT
};

size_t OnUpload(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  while (true) {
    ssize_t r = ::read(t->upload_fd, data, size * n);
    if (r >= 0) return static_cast<size_t>(r);
    if (errno != EINTR) return CURL_READFUNC_ABORT;
  }
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  std::string_view line(data, size * n);
  if (line.rfind("HTTP/", 0) == 0) t->response->headers.clear();  // a new response (redirect, 100)
  size_t colon = line.find(':');
  if (colon != std::string_view::npos) {
    std::string name(line.substr(0, colon));
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && (value.front() == ' ' || value.front() == '\t'))
      value.remove_prefix(1);
    while (!value.empty() &&
           (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
      value.remove_suffix(1);
    }
    t->response->headers[name] = std::string(value);
  }
  return size * n;
}

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* t = static_cast<Transfer*>(user);
  size_t len = size * n;
  const HttpRequest& req = *t->request;
  if (!t->status_checked) {
    t->status_checked = true;
    long code = 0;
    curl_easy_getinfo(t->easy, CURLINFO_RESPONSE_CODE, &code);
    t->response->status = code;
    if (req.sink != nullptr) {
      t->remaining = code == 206 || code == 200 ? req.capacity : 0;
      if (code == 200 && req.range) t->skip = req.range->first;  // Range ignored
    }
  }
  if (req.sink == nullptr || (t->response->status != 200 && t->response->status != 206)) {
    if (t->response->body.size() + len > req.max_body) {
      t->overflow = true;
      return 0;  // abort: more than we will ever keep
    }
    t->response->body.append(data, len);
    return len;
  }
  size_t skip = static_cast<size_t>(std::min<uint64_t>(t->skip, len));
  t->skip -= skip;
  size_t take = static_cast<size_t>(std::min<uint64_t>(len - skip, t->remaining));
  std::memcpy(req.sink + t->response->sink_bytes, data + skip, take);
  t->response->sink_bytes += take;
  t->remaining -= take;
  if (t->remaining == 0 && take < len - skip && t->response->status == 200) {
    return 0;  // got our range out of a full body: stop the download
  }
  return len;
}

// No connection, or no answer in time: what marks a route down (see RouteHealth).
bool Unreachable(CURLcode code) {
  return code == CURLE_COULDNT_CONNECT || code == CURLE_COULDNT_RESOLVE_HOST ||
         code == CURLE_COULDNT_RESOLVE_PROXY || code == CURLE_OPERATION_TIMEDOUT;
}

bool Retryable(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_GOT_NOTHING:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

}  // namespace

class CurlTransport : public HttpTransport {
 public:
  explicit CurlTransport(HttpOptions options);
  ~CurlTransport() override;
  Result<HttpResponse> Perform(const HttpRequest& request, const Route& route,
                               TransportFailure* failure) override;

 private:
  CURL* Take() {
    {
      MutexLock lock(pool_mu_);
      if (!pool_.empty()) {
        CURL* e = pool_.back();
        pool_.pop_back();
        return e;
      }
    }
    return curl_easy_init();
  }
  void Give(CURL* e) {
    MutexLock lock(pool_mu_);
    if (pool_.size() < 64) {
      pool_.push_back(e);
      return;
    }
    curl_easy_cleanup(e);
  }

  const HttpOptions options_;
  CURLSH* share_ = nullptr;
  // One per kind of shared data, locked and unlocked by curl's callbacks (its contract).
  std::mutex share_mu_[CURL_LOCK_DATA_LAST];
  Mutex pool_mu_;
  std::vector<CURL*> pool_ GUARDED_BY(pool_mu_);  // idle handles, each keeping its connections
};

CurlTransport::CurlTransport(HttpOptions options) : options_(std::move(options)) {
  std::call_once(curl_init_once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
  share_ = curl_share_init();
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
  curl_share_setopt(share_, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
  curl_share_setopt(share_, CURLSHOPT_USERDATA, this);
  curl_share_setopt(
      share_, CURLSHOPT_LOCKFUNC, +[](CURL*, curl_lock_data data, curl_lock_access, void* user) {
        static_cast<CurlTransport*>(user)->share_mu_[data].lock();
      });
  curl_share_setopt(
      share_, CURLSHOPT_UNLOCKFUNC, +[](CURL*, curl_lock_data data, void* user) {
        static_cast<CurlTransport*>(user)->share_mu_[data].unlock();
      });
}

CurlTransport::~CurlTransport() {
  for (CURL* e : pool_) curl_easy_cleanup(e);
  curl_share_cleanup(share_);
}

Result<HttpResponse> CurlTransport::Perform(const HttpRequest& request, const Route& route,
                                            TransportFailure* failure) {
  const HttpOptions& o = options_;
  HttpResponse response;
  CURL* e = Take();
  curl_easy_reset(e);
  Transfer t{&request, e, &response};
  // Through a cache, an https:// origin is asked for as http:// with X-Origin-Scheme:
  // https: a forward proxy cannot cache inside a CONNECT tunnel, so the cache makes the TLS
  // connection to the origin itself (and verifies it: docs/cluster.md).
  std::string url = request.url;
  const bool tls_by_cache = !route.direct() && url.rfind("https://", 0) == 0;
  if (tls_by_cache) url = "http://" + url.substr(8);
  curl_easy_setopt(e, CURLOPT_URL, url.c_str());
  if (!route.direct()) {
    curl_easy_setopt(e, CURLOPT_PROXY, route.proxy.c_str());
    curl_easy_setopt(e, CURLOPT_NOPROXY, "");  // the list decides, not $no_proxy
  }
  curl_easy_setopt(e, CURLOPT_SHARE, share_);
  curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, o.connect_timeout_ms);
  curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, o.request_timeout_ms);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_LIMIT, 1024L);
  curl_easy_setopt(e, CURLOPT_LOW_SPEED_TIME, o.low_speed_seconds);
  curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
  curl_easy_setopt(e, CURLOPT_HTTP_VERSION, CURL_HTTP_VERSION_2TLS);
  curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);  // redirects could leave the source
  curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
  if (!o.ca_file.empty()) curl_easy_setopt(e, CURLOPT_CAINFO, o.ca_file.c_str());
  if (o.insecure) {
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (!o.aws_sigv4.empty()) {
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, o.aws_sigv4.c_str());
    curl_easy_setopt(e, CURLOPT_USERPWD,
                     request.aws_credentials.empty() ? o.aws_credentials.c_str()
                                                     : request.aws_credentials.c_str());
  }
  if (!request.post_body.empty()) {
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, request.post_body.data());
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE,
                     static_cast<curl_off_t>(request.post_body.size()));
  }
  if (!request.method.empty()) curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, request.method.c_str());
  if (request.head) curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
  if (!request.upload_path.empty()) {
    // Each attempt reads the file from its start.
    t.upload_fd = ::open(request.upload_path.c_str(), O_RDONLY | O_CLOEXEC);
    struct stat st {};
    if (t.upload_fd < 0 || ::fstat(t.upload_fd, &st) != 0) {
      const int err = errno;
      if (t.upload_fd >= 0) ::close(t.upload_fd);
      Give(e);
      *failure = TransportFailure::kFatal;
      return Status::FromErrno(err, "cannot read '" + request.upload_path + "'");
    }
    curl_easy_setopt(e, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(e, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(st.st_size));
    curl_easy_setopt(e, CURLOPT_READFUNCTION, OnUpload);
    curl_easy_setopt(e, CURLOPT_READDATA, &t);
  }
  std::string range;
  if (request.range) {
    range = std::to_string(request.range->first) + "-" + std::to_string(request.range->second);
    curl_easy_setopt(e, CURLOPT_RANGE, range.c_str());
  }
  curl_slist* headers = nullptr;
  for (const auto& h : request.headers) headers = curl_slist_append(headers, h.c_str());
  if (tls_by_cache) headers = curl_slist_append(headers, "X-Origin-Scheme: https");
  if (!request.upload_path.empty()) headers = curl_slist_append(headers, "Expect:");
  // Listings and HEADs pass through caches without being kept (the shipped config
  // bypasses its cache for requests that carry Cache-Control).
  if (!route.direct() && !request.cacheable) {
    headers = curl_slist_append(headers, "Cache-Control: no-cache");
  }
  curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(e, CURLOPT_HEADERDATA, &t);
  // Reads from the socket as large as the range (up to 1 MiB): a 1 MiB block then takes
  // a few recv calls instead of dozens. Small ranges keep a small buffer, so idle pooled
  // handles do not hold much memory.
  long buffer = 64L << 10;
  if (request.range) {
    const uint64_t length = request.range->second - request.range->first + 1;
    buffer = static_cast<long>(std::clamp<uint64_t>(std::bit_ceil(length), 64 << 10, 1 << 20));
  }
  curl_easy_setopt(e, CURLOPT_BUFFERSIZE, buffer);
  curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(e, CURLOPT_WRITEDATA, &t);
  CURLcode rc = curl_easy_perform(e);
  curl_slist_free_all(headers);
  if (t.upload_fd >= 0) ::close(t.upload_fd);
  long code = 0;
  curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &code);
  response.status = code;
  Give(e);
  // A write callback that stopped a full (Range-ignoring) body early is a success.
  bool early_stop =
      rc == CURLE_WRITE_ERROR && request.sink && code == 200 && t.remaining == 0 && !t.overflow;
  const bool answered = rc == CURLE_OK || early_stop;
  const char* method = !request.method.empty()        ? request.method.c_str()
                       : request.head                 ? "HEAD"
                       : !request.upload_path.empty() ? "PUT"
                       : !request.post_body.empty()   ? "POST"
                                                      : "GET";
  MetricsRegistry::Global()
      .GetCounter("tierfs_http_requests_total",
                  "HTTP requests sent to the source, each retry counted, by method and status "
                  "(\"error\": no answer)",
                  {{"method", method}, {"code", answered ? std::to_string(code) : "error"}})
      .Add();
  TLOG_DEBUG("{} {}{} via {}: {}", method, RedactUrl(request.url),
             range.empty() ? "" : " bytes=" + range, route.name,
             answered ? "HTTP " + std::to_string(code) : curl_easy_strerror(rc));
  *failure = answered                       ? TransportFailure::kNone
             : Unreachable(rc)              ? TransportFailure::kUnreachable
             : Retryable(rc) && !t.overflow ? TransportFailure::kBroken
                                            : TransportFailure::kFatal;
  if (answered) return response;
  if (t.overflow) return Status::Io(RedactUrl(request.url) + ": response too large");
  return Status(rc == CURLE_OPERATION_TIMEDOUT ? ETIMEDOUT : EIO,
                RedactUrl(request.url) + (route.direct() ? "" : " via " + route.name) + ": " +
                    curl_easy_strerror(rc));
}

std::unique_ptr<HttpTransport> MakeCurlTransport(const HttpOptions& options) {
  return std::make_unique<CurlTransport>(options);
}

}  // namespace tierfs
