#include "ufs/http_client.h"

#include <algorithm>
#include <atomic>
#include <cctype>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <mutex>
#include <nlohmann/json.hpp>
#include <random>
#include <thread>
#include <unordered_set>

#include "common/blocking.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "ufs/proxy_router.h"

namespace tierfs {
// The first read of each object through caches goes alone; reads of the object that come
// meanwhile wait for its answer (HttpOptions::place_by_object). Objects by hash; the set
// of objects read once is bounded (forgetting one costs one wait).
class FirstTouch {
 public:
  // True if this is the object's first read (the caller must call Done).
  bool Enter(uint64_t id) {
    MutexLock lock(mu_);
    if (touched_.count(id)) return false;
    if (in_flight_.count(id)) {
      AboutToBlock();
      cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return in_flight_.count(id) == 0; });
      return false;
    }
    in_flight_.insert(id);
    return true;
  }
  void Done(uint64_t id) {
    {
      MutexLock lock(mu_);
      in_flight_.erase(id);
      if (touched_.size() >= 100000) touched_.clear();
      touched_.insert(id);
    }
    cv_.notify_all();
  }

 private:
  Mutex mu_;
  std::condition_variable cv_;
  std::unordered_set<uint64_t> in_flight_ GUARDED_BY(mu_), touched_ GUARDED_BY(mu_);
};

struct HttpClient::Impl {
  HttpOptions options;
  FirstTouch first_touch;
  std::unique_ptr<HttpTransport> transport;
  std::atomic<uint64_t> requests{0}, failures{0}, fast_failures{0}, refused{0};
  std::unique_ptr<ProxyRouter> router;  // null if the proxy list did not parse
  std::string router_error;
  LogLimiter route_log{10, std::chrono::seconds(10)};
};

HttpClient::HttpClient(HttpOptions options, std::unique_ptr<HttpTransport> transport)
    : impl_(std::make_unique<Impl>()) {
  impl_->transport = transport != nullptr ? std::move(transport) : MakeCurlTransport(options);
  impl_->options = std::move(options);
  auto spec = ParseProxyList(impl_->options.proxy_list);
  if (spec.ok()) {
    RouterOptions ro;
    ro.refresh = std::chrono::seconds(std::max(1L, impl_->options.proxy_refresh_seconds));
    impl_->router = std::make_unique<ProxyRouter>(std::move(*spec), ro);
  } else {
    impl_->router_error = spec.status().message();
  }
}

HttpClient::~HttpClient() = default;

uint64_t HttpClient::requests() const { return impl_->requests; }
uint64_t HttpClient::failures() const { return impl_->failures; }

nlohmann::json HttpClient::RoutesJson() const {
  nlohmann::json routes = nlohmann::json::array();
  if (impl_->router == nullptr) return routes;
  for (const auto& r : impl_->router->Routes()) {
    nlohmann::json j = {{"via", r->name}, {"up", r->health.up()}, {"downs", r->health.downs()}};
    for (const char* result : {"hit", "miss", "answered", "refused", "error"}) {
      j["requests"][result] = r->Requests(result).value();
      j["bytes"][result] = r->Bytes(result).value();
    }
    routes.push_back(std::move(j));
  }
  return routes;
}

namespace {

// "scheme://host[:port]" of a URL: the origin, whose health DIRECT routes track.
std::string OriginOf(const std::string& url) {
  size_t scheme = url.find("://");
  if (scheme == std::string::npos) return url;
  size_t end = url.find_first_of("/?#", scheme + 3);
  return url.substr(0, end);
}

std::string StripWeak(std::string etag) {
  if (etag.rfind("W/", 0) == 0) etag.erase(0, 2);
  return etag;
}

// What a cache said of an answer (nginx: X-Cache-Status; Squid, Traffic Server: X-Cache).
ReadVia CacheVerdict(const HttpResponse& response) {
  std::string v = response.header("x-cache-status");
  if (v.empty()) v = response.header("x-cache");
  for (char& c : v) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  if (v.rfind("HIT", 0) == 0 || v.rfind("STALE", 0) == 0 || v.rfind("UPDATING", 0) == 0 ||
      v.rfind("REVALIDATED", 0) == 0 || v.find("TCP_HIT") != std::string::npos ||
      v.find("TCP_MEM_HIT") != std::string::npos) {
    return ReadVia::kCacheHit;
  }
  if (v.rfind("MISS", 0) == 0 || v.rfind("EXPIRED", 0) == 0 || v.rfind("BYPASS", 0) == 0 ||
      v.find("TCP_MISS") != std::string::npos) {
    return ReadVia::kCacheMiss;
  }
  return ReadVia::kCache;
}

// Parses "bytes FIRST-LAST/TOTAL" (TOTAL may be '*').
bool ParseContentRange(const std::string& v, uint64_t* first, uint64_t* last, uint64_t* total) {
  unsigned long long a = 0, b = 0, t = 0;
  char star = 0;
  if (std::sscanf(v.c_str(), "bytes %llu-%llu/%llu", &a, &b, &t) == 3) {
    *total = t;
  } else if (std::sscanf(v.c_str(), "bytes %llu-%llu/%c", &a, &b, &star) == 3 && star == '*') {
    *total = 0;
  } else {
    return false;
  }
  *first = a;
  *last = b;
  return b >= a;
}

}  // namespace

// Whether a ranged answer is the range asked for, of the version asked for. `not_slicing`
// is set when the answer shows a cache that does not keep ranges per block.
Status CheckRangedAnswer(const HttpRequest& request, const HttpResponse& response,
                         bool* not_slicing) {
  *not_slicing = false;
  if (!request.range || request.sink == nullptr) return Status::Ok();
  const long code = response.status;
  const std::string what = RedactUrl(request.url);
  if (code == 416) {
    // "Not satisfiable" is the end of the object, unless the answer's own size says the
    // range starts inside it (another object's answer).
    unsigned long long total = 0;
    if (std::sscanf(response.header("content-range").c_str(), "bytes */%llu", &total) == 1 &&
        total > request.range->first) {
      return Status::Io(what + ": 416 for bytes from " + std::to_string(request.range->first) +
                        " of a " + std::to_string(total) + "-byte object");
    }
    return Status::Ok();
  }
  if (code != 200 && code != 206) return Status::Ok();  // the caller maps the status
  const std::string etag = response.header("etag");
  if (!request.expect_etag.empty() && !etag.empty() &&
      StripWeak(etag) != StripWeak(request.expect_etag)) {
    return Status(ESTALE, what + ": answer has ETag " + etag + ", the index has " +
                              request.expect_etag + " (stale or wrong copy)");
  }
  const std::string lm = response.header("last-modified");
  if (!request.expect_last_modified.empty() && !lm.empty() && lm != request.expect_last_modified) {
    return Status(ESTALE, what + ": answer is Last-Modified " + lm + ", the index has " +
                              request.expect_last_modified + " (stale or wrong copy)");
  }
  const uint64_t want_first = request.range->first, want_last = request.range->second;
  uint64_t got = response.sink_bytes;
  if (code == 206) {
    uint64_t first = 0, last = 0, total = 0;
    if (!ParseContentRange(response.header("content-range"), &first, &last, &total)) {
      return Status::Io(what + ": 206 without a usable Content-Range");
    }
    const bool whole = first == want_first && last == want_last;
    const bool tail = first == want_first && last < want_last && total != 0 && last + 1 == total;
    if (!whole && !tail) {
      *not_slicing = true;
      return Status::Io(what + ": asked for bytes " + std::to_string(want_first) + "-" +
                        std::to_string(want_last) + ", answer is " +
                        response.header("content-range"));
    }
    if (got != last - first + 1) {
      return Status::Io(what + ": " + std::to_string(got) + " bytes for range " +
                        response.header("content-range"));
    }
    return Status::Ok();
  }
  // 200: the whole object (Range ignored); the client skipped to our range.
  *not_slicing = true;
  const std::string length = response.header("content-length");
  if (!length.empty()) {
    uint64_t total = 0;
    try {
      total = std::stoull(length);
    } catch (...) {
      return Status::Io(what + ": bad Content-Length");
    }
    const uint64_t want = want_last - want_first + 1;
    const uint64_t expect = total <= want_first ? 0 : std::min<uint64_t>(want, total - want_first);
    if (got != expect) {
      return Status::Io(what + ": " + std::to_string(got) + " bytes of a " + length +
                        "-byte answer for our range");
    }
  }
  return Status::Ok();
}

// One Send: the routes planned for the request and what each has done so far.
struct HttpClient::Attempts {
  const HttpRequest& request;
  std::vector<std::shared_ptr<Route>> plan;
  // Why a route is out of this request: kIn = still in; kGone = failed to connect (a wait
  // may bring it back); kDone = answered wrongly or with 5xx (not tried again).
  enum : uint8_t { kIn = 0, kGone = 1, kDone = 2 };
  std::vector<uint8_t> out;
  Status last = Status(EHOSTUNREACH, "no route to the source (empty --http-proxy group?)");
  int origin_attempts = 0;
  bool backoff = false;  // sleep before the next try of the origin
  size_t count(uint8_t state) const { return std::count(out.begin(), out.end(), state); }
};

Result<HttpResponse> HttpClient::Send(const HttpRequest& request) {
  const HttpOptions& o = impl_->options;
  if (impl_->router == nullptr) return Status::Invalid(impl_->router_error);
  thread_local std::mt19937_64 rng(std::random_device{}());
  const bool by_object = o.place_by_object && request.cacheable && !request.object.empty();
  const uint64_t placement = by_object                ? Xxh3(request.object)
                             : request.placement != 0 ? request.placement
                                                      : Xxh3(request.url);
  Attempts a{request, impl_->router->Plan(placement, OriginOf(request.url)), {}};
  // A stock cache fetches the whole object on each miss in flight at once: the first
  // read of an object goes alone, the others then find it cached.
  struct Touch {
    FirstTouch* gate;
    uint64_t id;
    bool first;
    ~Touch() {
      if (first) gate->Done(id);
    }
  };
  const bool via_cache = by_object && std::any_of(a.plan.begin(), a.plan.end(),
                                                  [](const auto& r) { return !r->direct(); });
  Touch touch{&impl_->first_touch, placement, via_cache && impl_->first_touch.Enter(placement)};
  // What a cache should not keep (listings, HEADs) goes around the caches when the origin
  // may be asked directly: a stock cache turns a HEAD into a GET of the whole object
  // (proxy_cache_convert_head) and ignores the request's Cache-Control, so each HEAD
  // through it would cost the origin the whole file.
  if (!request.cacheable &&
      std::any_of(a.plan.begin(), a.plan.end(), [](const auto& r) { return r->direct(); })) {
    std::erase_if(a.plan, [](const auto& r) { return !r->direct(); });
  }
  a.out.assign(a.plan.size(), Attempts::kIn);
  Result<HttpResponse> result = [&]() -> Result<HttpResponse> {
    while (true) {
      if (o.wait_while_unreachable && ShutdownRequested()) return a.last;
      const size_t pick = PickRoute(&a);
      if (pick == a.plan.size()) {
        if (WaitForARoute(&a)) continue;
        return a.last;
      }
      Route& route = *a.plan[pick];
      if (a.backoff) {
        const long cap =
            std::min(o.backoff_max_ms, o.backoff_base_ms << std::min(a.origin_attempts - 1, 10));
        std::this_thread::sleep_for(std::chrono::milliseconds(rng() % (cap + 1)));
        a.backoff = false;
      }
      if (route.direct()) ++a.origin_attempts;
      TransportFailure failure = TransportFailure::kNone;
      Result<HttpResponse> sent = Status::Io("not sent");
      route.limit.Acquire();
      const auto started = std::chrono::steady_clock::now();
      try {
        ++impl_->requests;
        sent = impl_->transport->Perform(request, route, &failure);
      } catch (...) {
        route.limit.Release(true);
        route.health.Answered();  // a probe must not stay taken (out of memory, ...)
        throw;
      }
      const int others =
          route.limit.Release(sent.ok() || failure != TransportFailure::kUnreachable);
      const bool finished = sent.ok()
                                ? Answered(&a, pick, &*sent)
                                : NoAnswer(&a, pick, failure, sent.status(), started, others > 0);
      if (finished) return sent.ok() ? std::move(sent) : Result<HttpResponse>(a.last);
    }
  }();
  if (touch.first && result.ok() && result->via != ReadVia::kOrigin) FillCache(request, *result);
  return result;
}

// A stock cache answers a range as soon as its bytes arrive while it goes on fetching
// the whole object, and each miss meanwhile fetches it again. A read of the object's
// last byte is answered once the whole object is in, so the first read's gate opens then.
void HttpClient::FillCache(const HttpRequest& first, const HttpResponse& answer) {
  const std::string range = answer.header("content-range");
  const size_t slash = range.rfind('/');
  if (answer.status != 206 || slash == std::string::npos || !first.range) return;
  uint64_t total = 0;
  try {
    total = std::stoull(range.substr(slash + 1));
  } catch (const std::exception&) {
    return;
  }
  if (total == 0 || first.range->second + 1 >= total) return;
  HttpRequest last;
  last.url = first.url;
  last.headers = first.headers;
  last.aws_credentials = first.aws_credentials;
  last.cacheable = true;
  last.placement = Xxh3(first.object);  // the same cache, without the gate
  last.expect_etag = first.expect_etag;
  last.expect_last_modified = first.expect_last_modified;
  last.range = std::make_pair(total - 1, total - 1);
  char byte;
  last.sink = &byte;
  last.capacity = 1;
  (void)Send(last);
}

size_t HttpClient::PickRoute(Attempts* a) {
  const auto now = std::chrono::steady_clock::now();
  for (size_t i = 0; i < a->plan.size(); ++i) {
    if (a->out[i] == Attempts::kIn && a->plan[i]->health.Try(now) != RouteHealth::Admit::kSkip) {
      return i;
    }
  }
  return a->plan.size();
}

bool HttpClient::WaitForARoute(Attempts* a) {
  const HttpOptions& o = impl_->options;
  if (a->count(Attempts::kIn) == 0 &&
      !(a->count(Attempts::kGone) > 0 && o.wait_while_unreachable)) {
    return false;  // every route answered or was tried: `last` says how
  }
  if (o.wait_while_unreachable && !ShutdownRequested()) {
    // Like an NFS hard mount: wait for the first route's next probe, then try again.
    for (auto& x : a->out) {
      if (x == Attempts::kGone) x = Attempts::kIn;
    }
    const auto now = std::chrono::steady_clock::now();
    auto soonest = now + std::chrono::seconds(1);
    for (size_t i = 0; i < a->plan.size(); ++i) {
      if (a->out[i] == Attempts::kIn) soonest = std::min(soonest, a->plan[i]->health.retry_at());
    }
    AboutToBlock();
    std::this_thread::sleep_until(std::max(soonest, now + std::chrono::milliseconds(20)));
    return true;
  }
  ++impl_->failures;
  ++impl_->fast_failures;
  std::string down;
  for (const auto& r : a->plan) down += (down.empty() ? "" : ", ") + r->name;
  a->last = Status(EIO, RedactUrl(a->request.url) + ": source unreachable (" + down +
                            " down; failing fast until a probe gets an answer)");
  return false;
}

bool HttpClient::NoAnswer(Attempts* a, size_t pick, TransportFailure failure, const Status& why,
                          std::chrono::steady_clock::time_point started, bool busy) {
  const HttpOptions& o = impl_->options;
  Route& route = *a->plan[pick];
  ++impl_->failures;
  route.Requests("error").Add();
  a->last = why;
  if (failure == TransportFailure::kFatal) {
    route.health.Answered();  // it was reached (TLS refused, body too large, ...)
    return true;
  }
  if (failure == TransportFailure::kUnreachable && busy) {
    // Refused while other requests to it are in flight: busy (its limit just halved), not
    // down. Retried like a 503, it does not count toward marking the route down.
    route.health.Busy();
  } else if (failure == TransportFailure::kUnreachable) {
    const auto now = std::chrono::steady_clock::now();
    route.health.Failed(now, now - started);
  } else {
    route.health.Answered();  // reached, then the transfer broke: retried, not down
  }
  if (!route.direct()) {
    TLOG_WARN_LIMITED(impl_->route_log, "cache {} failed: {}; trying the next route", route.name,
                      why.message());
    a->out[pick] = Attempts::kGone;  // the next-ranked route, at once
  } else if (a->origin_attempts >= o.max_attempts && !o.wait_while_unreachable) {
    a->out[pick] = Attempts::kGone;
  } else {
    a->backoff = true;
  }
  return false;
}

bool HttpClient::Answered(Attempts* a, size_t pick, HttpResponse* response) {
  const HttpOptions& o = impl_->options;
  const HttpRequest& request = a->request;
  Route& route = *a->plan[pick];
  route.health.Answered();
  const long code = response->status;
  if (code >= 500 || code == 429) {
    ++impl_->failures;
    route.Requests("answered").Add();
    a->last = Status::Io(RedactUrl(request.url) + ": HTTP " + std::to_string(code) +
                         (route.direct() ? "" : " from cache " + route.name));
    if (!route.direct() || a->origin_attempts >= o.max_attempts) {
      a->out[pick] = Attempts::kDone;
    } else {
      a->backoff = true;
    }
    return false;
  }
  bool not_slicing = false;
  const Status check = CheckRangedAnswer(request, *response, &not_slicing);
  if (not_slicing && !route.direct() && !route.warned_not_slicing.exchange(true)) {
    TLOG_WARN(
        "cache {} is not keeping ranges per block (answered {} to bytes={}-{}): configure "
        "its slice size to tierfs's block size (docs/cluster.md)",
        route.name, code == 200 ? "the whole object" : response->header("content-range"),
        request.range->first, request.range->second);
  }
  if (!check.ok()) {
    ++impl_->refused;
    route.Requests("refused").Add();
    route.Bytes("refused").Add(response->sink_bytes);
    TLOG_WARN_LIMITED(impl_->route_log, "refused an answer {}: {}",
                      route.direct() ? std::string("from the origin") : "from cache " + route.name,
                      check.message());
    a->last = Status(EIO, check.message());
    a->out[pick] = Attempts::kDone;
    return false;
  }
  response->via = route.direct() ? ReadVia::kOrigin : CacheVerdict(*response);
  const char* result = response->via == ReadVia::kCacheHit    ? "hit"
                       : response->via == ReadVia::kCacheMiss ? "miss"
                                                              : "answered";
  route.Requests(result).Add();
  if (request.sink != nullptr) route.Bytes(result).Add(response->sink_bytes);
  return true;
}

Result<size_t> BytesFromRangedRead(const Result<HttpResponse>& response, const std::string& key) {
  if (!response.ok()) return response.status();
  const long status = response->status;
  if (status == 412) {
    TLOG_WARN(
        "'{}' changed at the source since it was indexed; its reads fail until the index is "
        "rebuilt",
        key);
    return Status::Io("'" + key + "' changed since it was indexed");
  }
  if (status == 416) return size_t{0};
  if (status != 200 && status != 206) {
    return Status(ErrnoForHttpStatus(status), "GET " + key + ": HTTP " + std::to_string(status));
  }
  return response->sink_bytes;
}

std::string RedactUrl(const std::string& url) {
  std::string s = url.substr(0, url.find('?'));
  if (size_t scheme = s.find("://"); scheme != std::string::npos) {
    size_t host = scheme + 3;
    size_t slash = s.find('/', host);
    size_t at = s.rfind('@', slash == std::string::npos ? s.size() : slash);
    if (at != std::string::npos && at >= host) s.erase(host, at + 1 - host);
  }
  return s;
}

int ErrnoForHttpStatus(long status) {
  switch (status) {
    case 404:
    case 410:
      return ENOENT;
    case 401:
    case 403:
      return EACCES;
    case 412:
      return ESTALE;
    default:
      return EIO;
  }
}

std::string PercentEncode(std::string_view s, bool keep_slash) {
  static const char* kHex = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size() * 3);
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' ||
        (keep_slash && c == '/')) {
      out.push_back(static_cast<char>(c));
    } else {
      out.push_back('%');
      out.push_back(kHex[c >> 4]);
      out.push_back(kHex[c & 15]);
    }
  }
  return out;
}

bool PercentDecode(std::string_view s, std::string* out) {
  out->clear();
  auto hex = [](char c) -> int {
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
  };
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] != '%') {
      out->push_back(s[i]);
      continue;
    }
    if (i + 2 >= s.size()) return false;
    int hi = hex(s[i + 1]), lo = hex(s[i + 2]);
    if (hi < 0 || lo < 0) return false;
    out->push_back(static_cast<char>(hi * 16 + lo));
    i += 2;
  }
  return true;
}

}  // namespace tierfs
