// HttpClient's retry, health, routing and answer checks over a scripted transport: no
// network, no sleeping beyond the 1-5 ms backoff of FastOptions.
#include "ufs/http_client.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <thread>

#include "ufs/proxy_router.h"

namespace tierfs {
namespace {

// One scripted answer: a response (status, headers, body bytes into the sink), or a
// failure with no response.
struct Step {
  long status = 200;
  std::map<std::string, std::string> headers;
  std::string body;
  TransportFailure failure = TransportFailure::kNone;
};

class ScriptedTransport : public HttpTransport {
 public:
  // `answer` decides each attempt; `routes` records which route each attempt took.
  explicit ScriptedTransport(std::function<Step(const HttpRequest&, const Route&)> answer)
      : answer_(std::move(answer)) {}

  Result<HttpResponse> Perform(const HttpRequest& request, const Route& route,
                               TransportFailure* failure) override {
    Step step;
    {
      std::lock_guard lock(mu_);
      routes_.push_back(route.name);
      step = answer_(request, route);
    }
    *failure = step.failure;
    if (step.failure != TransportFailure::kNone) return Status::Io("scripted failure");
    HttpResponse r;
    r.status = step.status;
    r.headers = step.headers;
    if (request.sink != nullptr) {
      r.sink_bytes = std::min(step.body.size(), request.capacity);
      std::memcpy(request.sink, step.body.data(), r.sink_bytes);
    } else {
      r.body = step.body;
    }
    return r;
  }

  std::vector<std::string> routes() {
    std::lock_guard lock(mu_);
    return routes_;
  }

 private:
  std::function<Step(const HttpRequest&, const Route&)> answer_;
  std::mutex mu_;
  std::vector<std::string> routes_;
};

// A transport that answers with `steps` in order (the last one again once they run out).
std::unique_ptr<ScriptedTransport> Steps(std::vector<Step> steps, ScriptedTransport** raw) {
  auto queue = std::make_shared<std::deque<Step>>(steps.begin(), steps.end());
  auto t = std::make_unique<ScriptedTransport>([queue](const HttpRequest&, const Route&) {
    Step s = queue->front();
    if (queue->size() > 1) queue->pop_front();
    return s;
  });
  *raw = t.get();
  return t;
}

HttpOptions FastOptions() {
  HttpOptions o;
  o.max_attempts = 4;
  o.backoff_base_ms = 1;
  o.backoff_max_ms = 5;
  return o;
}

HttpRequest Get(const std::string& url = "http://origin.test/f") {
  HttpRequest r;
  r.url = url;
  return r;
}

TEST(HttpClientRetries, FiveHundredsAndTooManyRequestsAreRetriedUntilAnAnswer) {
  ScriptedTransport* t = nullptr;
  HttpClient http(FastOptions(), Steps({{503}, {429}, {200, {}, "ok"}}, &t));
  auto r = http.Send(Get());
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(t->routes().size(), 3u);
  EXPECT_EQ(http.requests(), 3u);
}

TEST(HttpClientRetries, AServerErrorThatLastsFailsAfterMaxAttempts) {
  ScriptedTransport* t = nullptr;
  HttpClient http(FastOptions(), Steps({{502}}, &t));
  auto r = http.Send(Get());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error(), EIO);
  EXPECT_NE(r.status().message().find("HTTP 502"), std::string::npos) << r.status().message();
  EXPECT_EQ(t->routes().size(), 4u);  // max_attempts
}

TEST(HttpClientRetries, ClientErrorsAndRedirectsAreAnswersNotRetried) {
  for (long status : {404L, 403L, 301L, 302L, 412L}) {
    ScriptedTransport* t = nullptr;
    HttpClient http(FastOptions(),
                    Steps({{status, {{"location", "http://elsewhere.test/f"}}}}, &t));
    auto r = http.Send(Get());
    ASSERT_TRUE(r.ok()) << status;
    EXPECT_EQ(r->status, status);
    EXPECT_EQ(t->routes().size(), 1u) << status << " was retried";
  }
  // A redirect is never followed (the transport is asked once, for the original URL) and
  // a reader sees it as an error, never the other host's bytes.
  HttpResponse redirect;
  redirect.status = 301;
  auto bytes = BytesFromRangedRead(Result<HttpResponse>(redirect), "f");
  EXPECT_FALSE(bytes.ok());
  EXPECT_EQ(ErrnoForHttpStatus(404), ENOENT);
  EXPECT_EQ(ErrnoForHttpStatus(403), EACCES);
  EXPECT_EQ(ErrnoForHttpStatus(301), EIO);
}

TEST(HttpClientRetries, BrokenTransfersAreRetriedFatalOnesAreNot) {
  ScriptedTransport* t = nullptr;
  HttpClient http(FastOptions(), Steps({{0, {}, "", TransportFailure::kBroken},
                                        {0, {}, "", TransportFailure::kBroken},
                                        {200, {}, "ok"}},
                                       &t));
  ASSERT_TRUE(http.Send(Get()).ok());
  EXPECT_EQ(t->routes().size(), 3u);

  HttpClient fatal(FastOptions(), Steps({{0, {}, "", TransportFailure::kFatal}}, &t));
  EXPECT_FALSE(fatal.Send(Get()).ok());
  EXPECT_EQ(t->routes().size(), 1u);
}

TEST(HttpClientHealth, AnUnreachableOriginIsTriedThenSkippedWithoutAnAttempt) {
  ScriptedTransport* t = nullptr;
  HttpClient http(FastOptions(), Steps({{0, {}, "", TransportFailure::kUnreachable}}, &t));
  for (int i = 0; i < 50; ++i) EXPECT_FALSE(http.Send(Get()).ok());
  // A few attempts mark the origin down; the other requests fail fast.
  EXPECT_LE(t->routes().size(), 6u);
  auto r = http.Send(Get());
  EXPECT_NE(r.status().message().find("unreachable"), std::string::npos) << r.status().message();
}

// Ranged reads into a sink: a 416 for a range inside the object, a Content-Range that is
// not the range asked for, a short body and another version are refused, never returned.
TEST(HttpClientChecks, WrongRangedAnswersAreRefused) {
  struct Case {
    const char* what;
    Step step;
    bool refused;
  };
  const std::string block(100, 'x');
  const Case cases[] = {
      {"exact 206", {206, {{"content-range", "bytes 100-199/1000"}}, block}, false},
      {"tail 206", {206, {{"content-range", "bytes 100-149/150"}}, block.substr(0, 50)}, false},
      {"416 past the end", {416, {{"content-range", "bytes */100"}}, ""}, false},
      {"416 inside", {416, {{"content-range", "bytes */1000"}}, ""}, true},
      {"shifted 206", {206, {{"content-range", "bytes 0-99/1000"}}, block}, true},
      {"short 206", {206, {{"content-range", "bytes 100-199/1000"}}, block.substr(0, 60)}, true},
      {"no Content-Range", {206, {}, block}, true},
      {"other ETag",
       {206, {{"content-range", "bytes 100-199/1000"}, {"etag", "\"b\""}}, block},
       true},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.what);
    ScriptedTransport* t = nullptr;
    HttpClient http(FastOptions(), Steps({c.step}, &t));
    std::string sink(100, '\0');
    HttpRequest req = Get();
    req.range = {{100, 199}};
    req.sink = sink.data();
    req.capacity = sink.size();
    req.expect_etag = "\"a\"";
    auto r = http.Send(req);
    EXPECT_EQ(!r.ok(), c.refused) << (r.ok() ? "returned" : r.status().message());
    EXPECT_EQ(t->routes().size(), 1u) << "a refused answer from the origin is not asked again";
  }
}

TEST(HttpClientChecks, AChangedObjectReadsAsEio) {
  HttpResponse changed;
  changed.status = 412;
  auto r = BytesFromRangedRead(Result<HttpResponse>(changed), "train/a.jpg");
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error(), EIO);
  HttpResponse past_end;
  past_end.status = 416;
  EXPECT_EQ(*BytesFromRangedRead(Result<HttpResponse>(past_end), "f"), 0u);
}

// A HEAD or a listing (not a block a cache should keep) goes straight to the origin when
// the list has DIRECT: a stock cache would turn a HEAD into a GET of the whole object.
// Without DIRECT it goes through the cache.
TEST(HttpClientRouting, WhatACacheShouldNotKeepGoesAroundTheCachesWhenDirectIsAllowed) {
  HttpOptions o = FastOptions();
  o.proxy_list = "http://127.0.0.9:3128|http://127.0.0.10:3128;DIRECT";
  auto transport =
      std::make_unique<ScriptedTransport>([](const HttpRequest&, const Route&) { return Step{}; });
  ScriptedTransport* t = transport.get();
  HttpClient http(o, std::move(transport));
  for (int i = 0; i < 10; ++i) {
    HttpRequest head = Get();
    head.head = true;
    head.url += std::to_string(i);
    ASSERT_TRUE(http.Send(head).ok());
  }
  ASSERT_EQ(t->routes().size(), 10u);
  for (const auto& route : t->routes()) EXPECT_EQ(route, "DIRECT");
  HttpRequest block = Get();
  block.cacheable = true;
  ASSERT_TRUE(http.Send(block).ok());
  EXPECT_NE(t->routes().back(), "DIRECT");

  o.proxy_list = "http://127.0.0.9:3128";
  auto only_cache =
      std::make_unique<ScriptedTransport>([](const HttpRequest&, const Route&) { return Step{}; });
  t = only_cache.get();
  HttpClient through(o, std::move(only_cache));
  HttpRequest head = Get();
  head.head = true;
  ASSERT_TRUE(through.Send(head).ok());
  ASSERT_EQ(t->routes().size(), 1u);
  EXPECT_NE(t->routes()[0], "DIRECT");
}

// Through a cluster cache: a cache that cannot be reached sends the request on to the
// next route at once (no backoff, no retry of the cache); without DIRECT nothing goes to
// the origin.
TEST(HttpClientRouting, ADeadCacheHandsTheRequestToTheNextRoute) {
  HttpOptions o = FastOptions();
  o.proxy_list = "http://127.0.0.9:3128;DIRECT";
  auto transport = std::make_unique<ScriptedTransport>([](const HttpRequest&, const Route& r) {
    Step s;
    if (!r.direct()) s.failure = TransportFailure::kUnreachable;
    s.body = "from the origin";
    return s;
  });
  ScriptedTransport* t = transport.get();
  HttpClient http(o, std::move(transport));
  HttpRequest block = Get();
  block.cacheable = true;  // a block read: caches first
  auto r = http.Send(block);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "from the origin");
  ASSERT_EQ(t->routes().size(), 2u);
  EXPECT_NE(t->routes()[0], "DIRECT");
  EXPECT_EQ(t->routes()[1], "DIRECT");

  o.proxy_list = "http://127.0.0.9:3128";
  auto only_cache = std::make_unique<ScriptedTransport>([](const HttpRequest&, const Route& r) {
    Step s;
    s.failure = r.direct() ? TransportFailure::kNone : TransportFailure::kUnreachable;
    return s;
  });
  t = only_cache.get();
  HttpClient no_direct(o, std::move(only_cache));
  EXPECT_FALSE(no_direct.Send(Get()).ok());
  for (const std::string& route : t->routes()) EXPECT_NE(route, "DIRECT");
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// Block reads of one object through three caches, 16 at once: by object (the default) they
// all go to one cache and the object's first read goes alone (a stock cache would fetch
// the whole object once per miss in flight); by block they spread over the caches and go
// at once.
TEST(HttpClientRouting, AnObjectsBlocksGoToOneCacheAndItsFirstReadGoesAlone) {
  for (bool by_object : {true, false}) {
    SCOPED_TRACE(by_object ? "by object" : "by block");
    HttpOptions o = FastOptions();
    o.proxy_list = "http://127.0.0.9:3128|http://127.0.0.10:3128|http://127.0.0.11:3128";
    o.place_by_object = by_object;
    std::mutex mu;
    int in_flight = 0, beside_first = 0,
        started = 0;  // beside_first: reads started while the first ran
    auto transport = std::make_unique<ScriptedTransport>([](const HttpRequest&, const Route&) {
      return Step{206, {{"content-range", "bytes 0-0/100"}}, "x"};
    });
    // The scripted transport answers under its lock; time the first answer around it.
    struct Slow : HttpTransport {
      std::unique_ptr<ScriptedTransport> inner;
      std::mutex* mu;
      int *in_flight, *beside_first, *started;
      Result<HttpResponse> Perform(const HttpRequest& r, const Route& route,
                                   TransportFailure* f) override {
        bool first;
        {
          std::lock_guard lock(*mu);
          first = (*started)++ == 0;
          if (first) {
            *in_flight = 1;  // the first is running
          } else if (*in_flight == 1) {
            ++*beside_first;  // another read started while the first was running
          }
        }
        if (first) {
          std::this_thread::sleep_for(std::chrono::milliseconds(100));
          std::lock_guard lock(*mu);
          *in_flight = 0;
        }
        return inner->Perform(r, route, f);
      }
    };
    ScriptedTransport* t = transport.get();
    auto slow = std::make_unique<Slow>();
    slow->inner = std::move(transport);
    slow->mu = &mu;
    slow->in_flight = &in_flight;
    slow->beside_first = &beside_first;
    slow->started = &started;
    HttpClient http(o, std::move(slow));
    std::vector<std::thread> readers;
    for (int i = 0; i < 16; ++i) {
      readers.emplace_back([&, i] {
        HttpRequest block = Get();
        block.cacheable = true;
        block.object = std::string("big.bin") + '\0' + "v1";
        block.placement = 1000 + static_cast<uint64_t>(i);  // the block's own placement
        if (i > 0) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        (void)http.Send(block);
      });
    }
    for (auto& r : readers) r.join();
    const auto routes = t->routes();
    ASSERT_EQ(routes.size(), 16u);
    const std::set<std::string> distinct(routes.begin(), routes.end());
    if (by_object) {
      EXPECT_EQ(distinct.size(), 1u);
      EXPECT_EQ(beside_first, 0);
    } else {
      EXPECT_GE(distinct.size(), 2u);
      EXPECT_GT(beside_first, 0);
    }
  }
}

// A stock cache fetching the whole object answers the object's last byte once it holds
// all of it: the first read of an object larger than its range then reads that byte from
// the same cache, signed as the first read was (a private bucket's cache would refuse an
// unsigned one), before the object's other reads go.
TEST(HttpClientRouting, TheFirstReadOfALargeObjectReadsItsLastByteFromTheSameCache) {
  HttpOptions o = FastOptions();
  o.proxy_list = "http://127.0.0.9:3128|http://127.0.0.10:3128|http://127.0.0.11:3128";
  std::vector<HttpRequest> seen;
  auto transport = std::make_unique<ScriptedTransport>([&](const HttpRequest& r, const Route&) {
    seen.push_back(r);
    const auto [a, b] = *r.range;
    return Step{
        206,
        {{"content-range", "bytes " + std::to_string(a) + "-" + std::to_string(b) + "/1000"}},
        std::string(b - a + 1, 'x')};
  });
  ScriptedTransport* t = transport.get();
  HttpClient http(o, std::move(transport));
  HttpRequest first = Get();
  first.cacheable = true;
  first.object = std::string("big.bin") + '\0' + "v1";
  first.range = std::make_pair(uint64_t{0}, uint64_t{9});
  first.aws_credentials = "AKID:secret";
  first.headers = {"x-amz-security-token: token"};
  char buf[10];
  first.sink = buf;
  first.capacity = sizeof buf;
  ASSERT_TRUE(http.Send(first).ok());
  ASSERT_EQ(seen.size(), 2u);
  ASSERT_TRUE(seen[1].range.has_value());
  EXPECT_EQ(seen[1].range->first, 999u);
  EXPECT_EQ(seen[1].range->second, 999u);
  EXPECT_EQ(seen[1].aws_credentials, "AKID:secret");
  EXPECT_EQ(seen[1].headers, first.headers);
  EXPECT_EQ(t->routes()[0], t->routes()[1]);
  ASSERT_TRUE(http.Send(first).ok());  // touched: no second fill
  EXPECT_EQ(seen.size(), 3u);
}

}  // namespace
}  // namespace tierfs
