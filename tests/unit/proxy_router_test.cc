// The cluster tier's client side without a network: the --http-proxy list, rendezvous
// placement, route health, and the checks every ranged answer must pass.
#include "ufs/proxy_router.h"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <map>
#include <set>
#include <thread>

#include "ufs/http_client.h"

namespace tierfs {
namespace {

using std::chrono::milliseconds;

TEST(ProxyList, ParsesGroupsEntriesAndDirect) {
  auto spec = ParseProxyList("http://c1:3128|http://10.0.0.2|http://[::1]:8080/ ; DIRECT");
  ASSERT_TRUE(spec.ok()) << spec.status().message();
  ASSERT_EQ(spec->groups.size(), 2u);
  ASSERT_EQ(spec->groups[0].size(), 3u);
  EXPECT_EQ(spec->groups[0][0].host, "c1");
  EXPECT_EQ(spec->groups[0][0].port, 3128);
  EXPECT_EQ(spec->groups[0][1].host, "10.0.0.2");
  EXPECT_EQ(spec->groups[0][1].port, 3128);  // the default
  EXPECT_EQ(spec->groups[0][2].host, "::1");
  EXPECT_EQ(spec->groups[0][2].port, 8080);
  EXPECT_TRUE(spec->groups[1][0].direct);
  EXPECT_TRUE(spec->has_direct());
  EXPECT_TRUE(spec->has_caches());
  EXPECT_TRUE(ParseProxyList("")->empty());
  EXPECT_FALSE(ParseProxyList("http://c1:3128")->has_direct());
}

TEST(ProxyList, RefusesWhatIsNotAForwardProxyWithOneLine) {
  for (const char* bad :
       {"c1:3128", "https://c1:3128", "http://c1:3128/path", "http://u:p@c1", "http://c1:99999",
        "http://c1:", "http://c1|", "http://:80", "direct", "http://::1:80", "http://[::1"}) {
    auto spec = ParseProxyList(bad);
    EXPECT_FALSE(spec.ok()) << bad;
    if (!spec.ok()) {
      EXPECT_EQ(spec.status().message().find('\n'), std::string::npos);
      EXPECT_EQ(spec.status().message().rfind("http-proxy: ", 0), 0u) << spec.status().message();
    }
  }
}

std::vector<std::string> Names(const std::vector<std::shared_ptr<Route>>& plan) {
  std::vector<std::string> out;
  for (const auto& r : plan) out.push_back(r->name);
  return out;
}

ProxySpec Spec(const std::string& text) {
  auto spec = ParseProxyList(text);
  EXPECT_TRUE(spec.ok()) << spec.status().message();
  return spec.ok() ? *spec : ProxySpec{};
}

TEST(ProxyRouter, RanksEveryCacheOfAGroupThenTheNextGroupThenDirect) {
  ProxyRouter router(Spec("http://127.0.0.2:1|http://127.0.0.3:1;http://127.0.0.9:1;DIRECT"), {});
  auto plan = Names(router.Plan(42, "http://origin:80"));
  ASSERT_EQ(plan.size(), 4u);
  EXPECT_EQ(std::set<std::string>(plan.begin(), plan.begin() + 2),
            (std::set<std::string>{"http://127.0.0.2:1", "http://127.0.0.3:1"}));
  EXPECT_EQ(plan[2], "http://127.0.0.9:1");
  EXPECT_EQ(plan[3], "DIRECT");
  // The same key always gets the same order, on any node (no state involved).
  ProxyRouter other(Spec("http://127.0.0.2:1|http://127.0.0.3:1;http://127.0.0.9:1;DIRECT"), {});
  EXPECT_EQ(Names(other.Plan(42, "http://origin:80")), plan);
  // No list: the origin alone.
  ProxyRouter none(ProxySpec{}, {});
  EXPECT_EQ(Names(none.Plan(42, "http://origin:80")), std::vector<std::string>{"DIRECT"});
}

TEST(ProxyRouter, SpreadsBlocksEvenlyAndMovesAboutOneKthWhenACacheLeaves) {
  const std::string four =
      "http://127.0.0.2:1|http://127.0.0.3:1|http://127.0.0.4:1|http://127.0.0.5:1";
  const std::string three = "http://127.0.0.2:1|http://127.0.0.3:1|http://127.0.0.4:1";
  ProxyRouter r4(Spec(four), {}), r3(Spec(three), {});
  constexpr int kBlocks = 20000;
  std::map<std::string, int> share;
  int moved = 0;
  for (uint64_t k = 1; k <= kBlocks; ++k) {
    const uint64_t key = k * 0x9E3779B97F4A7C15ULL;
    const std::string owner4 = r4.Plan(key, "o")[0]->name;
    ++share[owner4];
    if (r3.Plan(key, "o")[0]->name != owner4) ++moved;
  }
  for (const auto& [name, n] : share) {
    EXPECT_NEAR(n, kBlocks / 4, kBlocks / 4 * 0.1) << name;
  }
  // Only the blocks of the cache that left move (1/4 of them), each to a survivor.
  EXPECT_EQ(moved, share["http://127.0.0.5:1"]);
}

TEST(ProxyRouter, ANameStandsForEveryAddressItResolvesTo) {
  auto names = ProxyRouter::Resolve("localhost", 3128);
  ASSERT_FALSE(names.empty());
  for (const auto& n : names) EXPECT_NE(n.find(":3128"), std::string::npos) << n;
  EXPECT_EQ(ProxyRouter::Resolve("127.0.0.7", 80), std::vector<std::string>{"http://127.0.0.7:80"});
  EXPECT_TRUE(ProxyRouter::Resolve("no-such-host.invalid", 80).empty());
  // A name that does not resolve leaves its group empty; the next group takes over.
  ProxyRouter router(Spec("http://no-such-host.invalid:1;http://127.0.0.9:1"), {});
  EXPECT_EQ(Names(router.Plan(7, "o")), std::vector<std::string>{"http://127.0.0.9:1"});
}

TEST(RouteHealth, DownAfterTheThresholdThenOneProbeAtATimeWithBackoff) {
  RouteHealth h({3, milliseconds(1000), milliseconds(4000)});
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(h.Try(t0), RouteHealth::Admit::kUse);
  h.Failed(t0);
  h.Failed(t0);
  EXPECT_TRUE(h.up());  // two failures: still up
  h.Failed(t0);
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.downs(), 1u);
  // Down: everyone is turned away at once until the backoff has passed.
  EXPECT_EQ(h.Try(t0 + milliseconds(999)), RouteHealth::Admit::kSkip);
  // Then exactly one probe; the others are still turned away while it runs.
  EXPECT_EQ(h.Try(t0 + milliseconds(1000)), RouteHealth::Admit::kProbe);
  EXPECT_EQ(h.Try(t0 + milliseconds(1001)), RouteHealth::Admit::kSkip);
  // The probe fails: the backoff doubles (2 s), then 4 s, and stays at the cap.
  const auto t1 = t0 + milliseconds(1000);
  h.Failed(t1);
  EXPECT_EQ(h.Try(t1 + milliseconds(1999)), RouteHealth::Admit::kSkip);
  EXPECT_EQ(h.Try(t1 + milliseconds(2000)), RouteHealth::Admit::kProbe);
  const auto t2 = t1 + milliseconds(2000);
  h.Failed(t2);
  EXPECT_EQ(h.retry_at(), t2 + milliseconds(4000));
  EXPECT_EQ(h.Try(t2 + milliseconds(4000)), RouteHealth::Admit::kProbe);
  const auto t3 = t2 + milliseconds(4000);
  h.Failed(t3);
  EXPECT_EQ(h.retry_at(), t3 + milliseconds(4000));
  // An answer puts it back up for everyone, and the next outage starts from 1 s again.
  EXPECT_EQ(h.Try(t3 + milliseconds(4000)), RouteHealth::Admit::kProbe);
  h.Answered();
  EXPECT_TRUE(h.up());
  EXPECT_EQ(h.Try(t3 + milliseconds(4001)), RouteHealth::Admit::kUse);
  const auto t4 = t3 + milliseconds(5000);
  for (int i = 0; i < 3; ++i) h.Failed(t4);
  EXPECT_EQ(h.retry_at(), t4 + milliseconds(1000));
  EXPECT_EQ(h.downs(), 2u);
}

// A stopped server refuses at once: its route is probed again 100 ms later, however
// long the outage, so the first read after it is back works; only failures that cost
// time (timeouts) back off.
TEST(RouteHealth, ARefusedRouteIsProbedEvery100msAndATimeoutBacksOff) {
  RouteHealth h({3, milliseconds(1000), milliseconds(4000)});
  const auto quick = milliseconds(1), slow = milliseconds(2000);
  const auto t0 = std::chrono::steady_clock::now();
  for (int i = 0; i < 3; ++i) h.Failed(t0, quick);
  EXPECT_FALSE(h.up());
  EXPECT_EQ(h.Try(t0 + milliseconds(99)), RouteHealth::Admit::kSkip);
  EXPECT_EQ(h.Try(t0 + milliseconds(100)), RouteHealth::Admit::kProbe);
  // An hour of refusals: still 100 ms between probes, never a growing back-off.
  auto t = t0 + milliseconds(100);
  for (int i = 0; i < 36000; ++i) {
    h.Failed(t, quick);
    ASSERT_EQ(h.retry_at(), t + milliseconds(100));
    t += milliseconds(100);
    ASSERT_EQ(h.Try(t), RouteHealth::Admit::kProbe);
  }
  // The server answers: up at once for everyone.
  h.Answered();
  EXPECT_EQ(h.Try(t), RouteHealth::Admit::kUse);
  // A black-holed route (each attempt a 2 s timeout) backs off: 1 s, then 2 s.
  for (int i = 0; i < 3; ++i) h.Failed(t, slow);
  EXPECT_EQ(h.retry_at(), t + milliseconds(1000));
  EXPECT_EQ(h.Try(t + milliseconds(1000)), RouteHealth::Admit::kProbe);
  h.Failed(t + milliseconds(1000), slow);
  EXPECT_EQ(h.retry_at(), t + milliseconds(3000));
}

// A route's limit grows by one per answer and halves when a connection fails while
// others are in flight; a failure with nothing else in flight (the server may be down)
// leaves it alone, and it never goes below one.
TEST(RouteLimit, GrowsWithAnswersAndHalvesWhenBusy) {
  RouteLimit l(8, 20);
  for (int i = 0; i < 8; ++i) l.Acquire();
  EXPECT_EQ(l.in_flight(), 8);
  std::atomic<bool> ninth{false};
  std::thread waiter([&] {
    l.Acquire();  // the ninth waits for a slot
    ninth = true;
  });
  std::this_thread::sleep_for(milliseconds(50));
  EXPECT_FALSE(ninth.load());
  EXPECT_EQ(l.Release(true), 7);  // an answer: a slot freed and the limit is 9
  waiter.join();
  EXPECT_TRUE(ninth.load());
  EXPECT_EQ(l.limit(), 9);
  EXPECT_EQ(l.in_flight(), 8);
  // A refused connection with 7 others in flight: busy, the limit halves to 4.
  EXPECT_EQ(l.Release(false), 7);
  EXPECT_EQ(l.limit(), 4);
  for (int i = 0; i < 7; ++i) l.Release(true);  // answers: 4 + 7, capped at 20 later
  EXPECT_EQ(l.limit(), 11);
  l.Acquire();
  EXPECT_EQ(l.Release(false), 0);  // alone: no verdict on the limit
  EXPECT_EQ(l.limit(), 11);
  for (int i = 0; i < 30; ++i) {
    l.Acquire();
    l.Release(true);
  }
  EXPECT_EQ(l.limit(), 20);
  // Refused with 2 others in flight: at most what was in flight, halved (3 / 2 = 1).
  for (int i = 0; i < 3; ++i) l.Acquire();
  EXPECT_EQ(l.Release(false), 2);
  EXPECT_EQ(l.limit(), 1);
  l.Release(true);
  l.Release(true);  // answers again: one slot each
  EXPECT_EQ(l.limit(), 3);
  EXPECT_EQ(l.in_flight(), 0);
}

HttpRequest Ranged(uint64_t first, uint64_t last) {
  static char buf[1];
  HttpRequest req;
  req.url = "http://origin/f";
  req.range = std::make_pair(first, last);
  req.sink = buf;
  req.capacity = last - first + 1;
  req.expect_etag = "\"v1\"";
  return req;
}

HttpResponse Answer(long status, std::string content_range, size_t bytes,
                    std::string etag = "\"v1\"") {
  HttpResponse r;
  r.status = status;
  if (!content_range.empty()) r.headers["content-range"] = std::move(content_range);
  if (!etag.empty()) r.headers["etag"] = std::move(etag);
  r.sink_bytes = bytes;
  return r;
}

TEST(RangedAnswer, AcceptsTheBlockAskedForAndTheShortLastBlock) {
  bool not_slicing = true;
  EXPECT_TRUE(CheckRangedAnswer(Ranged(1048576, 2097151),
                                Answer(206, "bytes 1048576-2097151/5000000", 1048576), &not_slicing)
                  .ok());
  EXPECT_FALSE(not_slicing);
  EXPECT_TRUE(CheckRangedAnswer(Ranged(4194304, 5242879),
                                Answer(206, "bytes 4194304-4999999/5000000", 805696), &not_slicing)
                  .ok());
  // A weak ETag of the same value (a cache that re-encoded nothing but said W/) is the same.
  EXPECT_TRUE(
      CheckRangedAnswer(Ranged(0, 9), Answer(206, "bytes 0-9/10", 10, "W/\"v1\""), &not_slicing)
          .ok());
}

TEST(RangedAnswer, RefusesAnotherBlockAStaleVersionOrAShortBody) {
  bool not_slicing = false;
  // Another block's bytes (a cache keyed wrongly).
  Status s = CheckRangedAnswer(Ranged(1048576, 2097151),
                               Answer(206, "bytes 0-1048575/5000000", 1048576), &not_slicing);
  EXPECT_FALSE(s.ok());
  EXPECT_TRUE(not_slicing);
  // Short but not at the end of the object.
  EXPECT_FALSE(
      CheckRangedAnswer(Ranged(0, 1048575), Answer(206, "bytes 0-1000/5000000", 1001), &not_slicing)
          .ok());
  // A stale copy: the ETag of an older version.
  s = CheckRangedAnswer(Ranged(0, 9), Answer(206, "bytes 0-9/10", 10, "\"v0\""), &not_slicing);
  EXPECT_EQ(s.error(), ESTALE);
  // Fewer bytes than Content-Range promises (truncated on the way).
  EXPECT_FALSE(CheckRangedAnswer(Ranged(0, 9), Answer(206, "bytes 0-9/10", 7), &not_slicing).ok());
  EXPECT_FALSE(CheckRangedAnswer(Ranged(0, 9), Answer(206, "", 10), &not_slicing).ok());
  EXPECT_FALSE(CheckRangedAnswer(Ranged(0, 9), Answer(206, "bytes 9-0/10", 10), &not_slicing).ok());
  // Last-Modified for servers without ETags.
  HttpRequest lm = Ranged(0, 9);
  lm.expect_etag.clear();
  lm.expect_last_modified = "Mon, 02 Jan 2023 10:00:00 GMT";
  HttpResponse old = Answer(206, "bytes 0-9/10", 10, "");
  old.headers["last-modified"] = "Sun, 01 Jan 2023 10:00:00 GMT";
  EXPECT_EQ(CheckRangedAnswer(lm, old, &not_slicing).error(), ESTALE);
}

TEST(RangedAnswer, AWholeObjectIsUsableButShowsACacheThatDoesNotSlice) {
  bool not_slicing = false;
  HttpResponse whole = Answer(200, "", 10);
  whole.headers["content-length"] = "5000000";
  EXPECT_TRUE(CheckRangedAnswer(Ranged(100, 109), whole, &not_slicing).ok());
  EXPECT_TRUE(not_slicing);
  whole.sink_bytes = 3;
  EXPECT_FALSE(CheckRangedAnswer(Ranged(100, 109), whole, &not_slicing).ok());
  // 416 is the end of the object, unless its size says the range starts inside it.
  EXPECT_TRUE(
      CheckRangedAnswer(Ranged(100, 109), Answer(416, "bytes */100", 0), &not_slicing).ok());
  EXPECT_FALSE(
      CheckRangedAnswer(Ranged(100, 109), Answer(416, "bytes */5000", 0), &not_slicing).ok());
  // Statuses that are not data are left to the caller (404 = ENOENT, 412 = changed).
  EXPECT_TRUE(CheckRangedAnswer(Ranged(0, 9), Answer(404, "", 0), &not_slicing).ok());
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// A loopback HTTP server that answers every request with 200 "ok" (keep-alive).
class OkServer {
 public:
  explicit OkServer(int port) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok_ = ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0 && ::listen(fd_, 16) == 0;
    if (ok_) thread_ = std::thread([this] { Serve(); });
  }
  ~OkServer() {
    ::shutdown(fd_, SHUT_RDWR);
    if (thread_.joinable()) thread_.join();
    ::close(fd_);
    for (int c : conn_fds_) ::shutdown(c, SHUT_RDWR);  // clients may keep them open
    for (auto& t : conns_) t.join();
    for (int c : conn_fds_) ::close(c);
  }
  bool ok() const { return ok_; }

  // A port nothing listens on (bound, then released).
  static int FreePort() {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
    socklen_t len = sizeof a;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
    ::close(fd);
    return ntohs(a.sin_port);
  }

 private:
  void Serve() {
    while (true) {
      int c = ::accept(fd_, nullptr, nullptr);
      if (c < 0) return;
      conn_fds_.push_back(c);
      conns_.emplace_back([c] {
        std::string in;
        char buf[4096];
        while (true) {
          ssize_t n = ::recv(c, buf, sizeof buf, 0);
          if (n <= 0) break;
          in.append(buf, static_cast<size_t>(n));
          size_t end;
          while ((end = in.find("\r\n\r\n")) != std::string::npos) {
            in.erase(0, end + 4);
            const char reply[] = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
            (void)!::send(c, reply, sizeof reply - 1, MSG_NOSIGNAL);
          }
        }
      });
    }
  }
  int fd_ = -1;
  bool ok_ = false;
  std::thread thread_;
  std::vector<std::thread> conns_;  // conns_ and conn_fds_: touched by thread_ only, then
  std::vector<int> conn_fds_;       // by the destructor after joining it
};

HttpOptions FastOptions() {
  HttpOptions o;
  o.connect_timeout_ms = 1000;
  o.request_timeout_ms = 5000;
  o.backoff_base_ms = 1;
  o.backoff_max_ms = 5;
  return o;
}

TEST(OriginHealth, ADeadOriginFailsFastAfterAFewTriesAndIsBackAfterOneProbe) {
  const int port = OkServer::FreePort();
  HttpClient http(FastOptions());
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/f";
  // 400 reads of a dead origin: the first few try (3 failures mark it down), the rest
  // are refused without a connection attempt.
  int failed = 0;
  for (int i = 0; i < 400; ++i) failed += http.Send(req).ok() ? 0 : 1;
  EXPECT_EQ(failed, 400);
  EXPECT_LE(http.requests(), 6u) << "requests sent to a dead origin";
  // The origin comes back: after the backoff (1 s) one probe finds it, then all succeed.
  OkServer server(port);
  ASSERT_TRUE(server.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(1100));
  for (int i = 0; i < 5; ++i) {
    auto r = http.Send(req);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->body, "ok");
  }
}

// The origin stopped (refusing connections) for a while, then started again: the first
// read after it is back works (it is the probe), with no wait for a back-off.
TEST(OriginHealth, TheFirstReadAfterTheOriginIsBackWorks) {
  const int port = OkServer::FreePort();
  HttpClient http(FastOptions());
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/f";
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(http.Send(req).ok());
    std::this_thread::sleep_for(std::chrono::milliseconds(50));  // a 1 s outage
  }
  OkServer server(port);
  ASSERT_TRUE(server.ok());
  std::this_thread::sleep_for(std::chrono::milliseconds(110));  // one probe interval
  auto r = http.Send(req);
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "ok");
}

TEST(OriginHealth, WaitModeBlocksUntilTheOriginAnswers) {
  const int port = OkServer::FreePort();
  HttpOptions o = FastOptions();
  o.wait_while_unreachable = true;
  HttpClient http(o);
  HttpRequest req;
  req.url = "http://127.0.0.1:" + std::to_string(port) + "/f";
  std::unique_ptr<OkServer> server;
  std::thread later([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(1500));
    server = std::make_unique<OkServer>(port);
  });
  auto r = http.Send(req);  // no server yet: waits instead of failing
  later.join();
  ASSERT_TRUE(r.ok()) << r.status().message();
  EXPECT_EQ(r->body, "ok");
}

TEST(CacheFailover, ADeadCacheSendsItsBlocksToTheNextRankedOneWithoutDirect) {
  // Two caches: one listening, one dead; no DIRECT: nothing may reach the origin itself.
  const int dead = OkServer::FreePort();
  const int up = OkServer::FreePort();
  OkServer cache(up);
  ASSERT_TRUE(cache.ok());
  HttpOptions o = FastOptions();
  o.proxy_list =
      "http://127.0.0.1:" + std::to_string(dead) + "|http://127.0.0.1:" + std::to_string(up);
  HttpClient http(o);
  for (uint64_t k = 1; k <= 50; ++k) {
    HttpRequest req;
    req.url = "http://origin.invalid/f";  // only a proxy can answer for this host
    req.placement = k;
    auto r = http.Send(req);
    ASSERT_TRUE(r.ok()) << r.status().message();
    EXPECT_EQ(r->body, "ok");
  }
  // The dead cache was tried once, then skipped while down.
  EXPECT_LE(http.requests(), 51u);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// Many readers at once: plans, re-resolutions (every second) and health changes race;
// every plan still ranks the group's members and nothing is lost (run under TSan in CI).
TEST(ProxyRouter, ConcurrentPlansRefreshesAndHealthChanges) {
  RouterOptions options;
  options.refresh = std::chrono::seconds(1);
  ProxyRouter router(Spec("http://localhost:1|http://127.0.0.9:1;DIRECT"), options);
  std::atomic<int> bad{0};
  std::vector<std::thread> threads;
  const auto until = std::chrono::steady_clock::now() + std::chrono::milliseconds(1500);
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      uint64_t k = static_cast<uint64_t>(t) << 32;
      while (std::chrono::steady_clock::now() < until) {
        auto plan = router.Plan(++k, "http://origin:80");
        // Never a partial plan, not even while the first resolution runs.
        if (plan.size() < 3 || plan.back()->name != "DIRECT") {
          ++bad;
          continue;
        }
        Route& first = *plan.front();
        const auto now = std::chrono::steady_clock::now();
        if (first.health.Try(now) != RouteHealth::Admit::kSkip) {
          if (k % 3 == 0) {
            first.health.Failed(now);
          } else {
            first.health.Answered();
          }
        }
        first.Requests("hit").Add();
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(bad.load(), 0);
  EXPECT_GE(router.Routes().size(), 3u);
}

}  // namespace
}  // namespace tierfs
