// HttpClient: HTTP(S) requests through libcurl with timeouts, bounded retries and a pool
// of reusable connections. Used by HttpStore and S3Store; the only users of curl.
//
// Retries (exponential backoff with full jitter, capped) happen on transport errors
// (refused, reset, timeout, truncated body) and on 5xx/429 answers; 4xx answers are
// returned at once. Thread-safe: any number of threads may Send() at once.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/status.h"

namespace tierfs {

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
};

struct HttpRequest {
  bool head = false;
  std::string url;
  std::vector<std::string> headers;                    // "Name: value"
  std::optional<std::pair<uint64_t, uint64_t>> range;  // [first, last], inclusive
  // Ranged reads write the body straight into this buffer (up to `capacity` bytes); a
  // server that ignores Range is handled by skipping to the range's start.
  char* sink = nullptr;
  size_t capacity = 0;
  size_t max_body = 64 << 20;  // for bodies kept in HttpResponse::body
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  size_t sink_bytes = 0;
  int attempts = 0;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
  }
};

class HttpClient {
 public:
  explicit HttpClient(HttpOptions options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Sends with retries. A non-OK Status means no answer could be had (transport errors,
  // or 5xx/429 after every attempt); other statuses are in the response for the caller.
  Result<HttpResponse> Send(const HttpRequest& request);

  // Total requests sent (each attempt counts) and failures, for metrics.
  uint64_t requests() const;
  uint64_t failures() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

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
