// HttpClient: HTTP(S) requests through libcurl with timeouts, bounded retries and a pool
// of reusable connections. Used by HttpStore and S3Store; the only users of curl.
//
// Routing: every request goes where a ProxyRouter (see proxy_router.h) sends it: through
// the cluster caches of --http-proxy, ranked per placement key, or straight to the origin.
// A cache that cannot be reached, answers 5xx, or fails the checks below is skipped and
// the next-ranked route is tried at once; the origin is retried with backoff (exponential,
// full jitter, capped) on transport errors (refused, reset, timeout, truncated body) and
// on 5xx/429. 4xx answers are returned at once: through a cache they are the origin's
// answer. Routes that keep failing are marked down and then skipped in milliseconds
// (fail fast), or waited for (wait_while_unreachable, like an NFS hard mount).
//
// Checks on every ranged read into a sink, direct or cached: the status (206, or 200 from
// a server that ignores Range), Content-Range = the range asked for (shorter only at the
// end of the object), the byte count, and the ETag / Last-Modified the index recorded. An
// answer that fails them is refused (logged, counted), never returned.
//
// Thread-safe: any number of threads may Send() at once.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <nlohmann/json_fwd.hpp>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"
#include "ufs/read_via.h"

namespace tierfs {

struct Route;  // proxy_router.h

struct HttpOptions {
  long connect_timeout_ms = 5000;
  long request_timeout_ms = 60000;  // whole request
  long low_speed_seconds = 15;      // abort a transfer slower than 1 KiB/s for this long
  int max_attempts = 5;
  long backoff_base_ms = 100;
  long backoff_max_ms = 2000;
  std::string ca_file;
  bool insecure = false;  // skip TLS verification (explicit opt-in only)
  // SigV4 signing (S3): "aws:amz:REGION:s3" and "ACCESS:SECRET"; empty = unsigned.
  std::string aws_sigv4;
  std::string aws_credentials;
  // Cluster caches, ProxyRouter's syntax ("http://c1:3128|http://c2:3128;DIRECT"); empty:
  // straight to the origin. Checked by ParseProxyList before a client is made.
  std::string proxy_list;
  long proxy_refresh_seconds = 60;  // re-resolve cache names this often
  // Block reads through caches: true places every block of an object on one cache and
  // sends an object's first read alone (a stock nginx cache fetches the whole object on a
  // miss, once per miss in flight); false places each block by itself (caches that keep
  // ranges per block, nginx's slice module: one large file's blocks spread over them).
  bool place_by_object = true;
  // While every route is down: false = fail at once (EIO), true = wait until one answers.
  bool wait_while_unreachable = false;
};

struct HttpRequest {
  bool head = false;
  // PUT this local file as the body (publishing). Never through the cluster caches' store.
  std::string upload_path;
  std::string method;     // another method than GET/HEAD (e.g. "PUT" with no body)
  std::string post_body;  // POST this (form-encoded) body
  // SigV4 credentials "ACCESS:SECRET" for this request, instead of HttpOptions' (which may
  // be temporary and refreshed between requests).
  std::string aws_credentials;
  std::string url;
  std::vector<std::string> headers;                    // "Name: value"
  std::optional<std::pair<uint64_t, uint64_t>> range;  // [first, last], inclusive
  // Ranged reads write the body straight into this buffer (up to `capacity` bytes); a
  // server that ignores Range is handled by skipping to the range's start.
  char* sink = nullptr;
  size_t capacity = 0;
  size_t max_body = 64 << 20;  // for bodies kept in HttpResponse::body
  // A block read a cache may keep, placed by `placement` (same key, same cache on every
  // node). Other requests (listings, HEAD) go straight to the origin when the route list
  // has DIRECT, else through the caches with Cache-Control: no-cache, placed by their URL.
  bool cacheable = false;
  uint64_t placement = 0;
  std::string object;  // a block read: the object (key and version) it is a block of
  // Validators the index recorded for the object; an answer that shows others is refused.
  std::string expect_etag;           // as the server sends it, quotes included
  std::string expect_last_modified;  // an HTTP date
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  size_t sink_bytes = 0;
  int attempts = 0;
  ReadVia via = ReadVia::kOrigin;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

// How one attempt failed to get an answer.
enum class TransportFailure {
  kNone,         // it got one
  kUnreachable,  // no connection, or no answer in time: marks the route down; retried
  kBroken,       // reached, then the transfer broke (reset, truncated body): retried
  kFatal,        // not worth another try (TLS refused, body too large, unreadable upload)
};

// The seam under HttpClient: one attempt of one request on one route, no retries, no
// checks. Production uses libcurl's (MakeCurlTransport); tests script one to drive the
// retry, health, routing and answer-checking logic without a network. Thread-safe.
class HttpTransport {
 public:
  virtual ~HttpTransport() = default;
  virtual Result<HttpResponse> Perform(const HttpRequest& request, const Route& route,
                                       TransportFailure* failure) = 0;
};
std::unique_ptr<HttpTransport> MakeCurlTransport(const HttpOptions& options);

class HttpClient {
 public:
  // `transport`: null for libcurl's.
  explicit HttpClient(HttpOptions options, std::unique_ptr<HttpTransport> transport = nullptr);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends with retries. A non-OK Status means no answer could be had (transport errors,
  // or 5xx/429 after every attempt); other statuses are in the response for the caller.
  Result<HttpResponse> Send(const HttpRequest& request);

  // Total requests sent (each attempt counts) and failures, for metrics.
  uint64_t requests() const;
  uint64_t failures() const;

  // The routes known now and their health, as JSON (for `tierfs stats`).
  nlohmann::json RoutesJson() const;

 private:
  void FillCache(const HttpRequest& first, const HttpResponse& answer);
  struct Impl;
  struct Attempts;  // one Send's routes and their state
  // Send's steps. PickRoute: the best route that takes the request now (plan.size(): none).
  // WaitForARoute: with none, whether to try again (after waiting, in wait mode).
  // NoAnswer / Answered: account for one attempt; true when Send is finished.
  size_t PickRoute(Attempts* a);
  bool WaitForARoute(Attempts* a);
  // `busy`: other requests to the route were in flight when this one's connection failed.
  bool NoAnswer(Attempts* a, size_t pick, TransportFailure failure, const Status& why,
                std::chrono::steady_clock::time_point started, bool busy);
  bool Answered(Attempts* a, size_t pick, HttpResponse* response);
  std::unique_ptr<Impl> impl_;
};

// Whether a ranged answer holds the range and version asked for (see the checks above).
// `not_slicing`: the answer was a whole object or another range.
Status CheckRangedAnswer(const HttpRequest& request, const HttpResponse& response,
                         bool* not_slicing);

// The outcome of a ranged GET into a sink: the bytes read, or the error a reader should
// see (412 = the object changed since it was indexed: EIO and a log line).
Result<size_t> BytesFromRangedRead(const Result<HttpResponse>& response, const std::string& key);

// The URL without its query string (it may hold signatures) or user:password@, for
// messages and anything else a person or another process can see.
std::string RedactUrl(const std::string& url);

// Maps an HTTP status to an errno: 404/410 → ENOENT, 401/403 → EACCES, 412 → ESTALE, else EIO.
int ErrnoForHttpStatus(long status);

// Percent-encodes everything but unreserved characters (RFC 3986); keeps '/' if asked.
std::string PercentEncode(std::string_view s, bool keep_slash);
// Decodes %XX escapes; false on a malformed escape.
bool PercentDecode(std::string_view s, std::string* out);

}  // namespace tierfs
