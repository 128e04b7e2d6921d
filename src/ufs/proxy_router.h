// ProxyRouter: where each HTTP request goes — to which cluster cache, in what order, or
// straight to the origin — and which of those places are up.
//
// The list has CernVM-FS's syntax: "http://c1:3128|http://c2:3128;http://regional:3128;DIRECT".
// '|' separates the caches of one group, which share the load: a request goes to the cache
// with the highest rendezvous (HRW) score of hash(placement key, cache), so every node
// sends a block to the same cache with no coordination, and adding or removing one of K
// caches moves about 1/K of the blocks. ';' separates failover groups, tried in order.
// DIRECT is the origin itself; without it nothing goes to the origin around the caches.
// An empty list is DIRECT alone.
//
// A cache given by host name stands for every address the name resolves to (a Kubernetes
// headless Service is one name for all cache pods). Names are resolved on first use (the
// requests that come meanwhile wait for it) and again once `refresh` has passed, by the one
// request that finds them stale (the others go on with the addresses they have); a route
// keeps its health across re-resolutions.
//
// Health (RouteHealth): a place that refuses connections or times out `failures_to_down`
// times in a row (1 for a cache, 3 for the origin) is down: requests skip it at once
// (caches: the next-ranked one takes its blocks; the origin: reads fail fast) until its
// retry time; then one request at a time is let through as a probe, and the first answer
// puts it back up. A failure that cost time (a timeout: the place is black-holed or
// stalled) backs off 1 s, doubling to 10 s, so readers do not each wait it out; a failure
// that cost nothing (connection refused: the server is stopped) is probed again 100 ms
// later, so the first read after the source comes back works.
//
// Thread-safe. Makes no network calls except the name resolution described above.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/log.h"
#include "common/metrics.h"
#include "common/mutex.h"
#include "common/status.h"

namespace tierfs {

struct ProxyEntry {
  bool direct = false;
  std::string host;  // a name, an IPv4 address, or an IPv6 address without brackets
  int port = 3128;
  std::string text;  // as written
};

struct ProxySpec {
  std::vector<std::vector<ProxyEntry>> groups;
  bool empty() const { return groups.empty(); }
  bool has_direct() const;
  bool has_caches() const;
};

// Parses a --http-proxy list. Entries are "http://HOST[:PORT]" (port 3128 by default) or
// DIRECT; an empty string is an empty spec (DIRECT alone).
Result<ProxySpec> ParseProxyList(const std::string& text);

using SteadyTime = std::chrono::steady_clock::time_point;

// The up/down state of one route. Every request that Try() let through must end with
// exactly one Answered() or Failed().
class RouteHealth {
 public:
  struct Policy {
    int failures_to_down = 1;
    std::chrono::milliseconds first_backoff{1000};
    std::chrono::milliseconds max_backoff{10000};
    // A failure faster than this (refused) is retried after `quick_retry`, not backed off.
    std::chrono::milliseconds quick_failure{200};
    std::chrono::milliseconds quick_retry{100};
  };
  enum class Admit { kUse, kProbe, kSkip };

  explicit RouteHealth(Policy policy) : policy_(policy) {}

  // kUse: up, go ahead. kProbe: down and due for a probe; the caller is the only one.
  // kSkip: down (or another request is probing): do not send.
  Admit Try(SteadyTime now);
  void Answered();  // the route answered (any HTTP status)
  // The attempt ended without a verdict (a connection refused while other requests to
  // the route were being answered: busy, not down).
  void Busy();
  // No connection, or no answer in time; `took`: how long the attempt took.
  void Failed(SteadyTime now, std::chrono::nanoseconds took = std::chrono::hours(1));
  bool up() const;
  SteadyTime retry_at() const;  // when a down route may be probed
  uint64_t downs() const;       // times it went down

 private:
  const Policy policy_;
  mutable Mutex mu_;
  bool down_ GUARDED_BY(mu_) = false;
  bool probing_ GUARDED_BY(mu_) = false;
  int consecutive_failures_ GUARDED_BY(mu_) = 0;
  std::chrono::milliseconds backoff_ GUARDED_BY(mu_){0};
  SteadyTime retry_at_ GUARDED_BY(mu_){};
  uint64_t downs_ GUARDED_BY(mu_) = 0;
};

// How many requests one route may have at once, learnt as TCP learns a window: it
// starts at `initial`, grows by one with each answer (up to `max`), and halves when a
// connection fails while other requests to the route are in flight (the server is busy
// or its listen queue overflowed, not down: such a failure is retried, and does not count
// toward marking the route down). A far origin reaches the fetch budget within a few
// round trips; a small server (python's http.server closes each connection and accepts
// five at a time) is never sent more connections at once than it can take.
class RouteLimit {
 public:
  explicit RouteLimit(int initial = 8, int max = 1024) : limit_(initial), max_(max) {}
  // Waits for a slot (AboutToBlock first when it must wait).
  void Acquire();
  // Ends a request: answered (any HTTP status), or a failed connection; returns the
  // number of other requests that were in flight then (for a failure: > 0 = overload).
  int Release(bool answered);
  int limit() const;
  int in_flight() const;

 private:
  mutable Mutex mu_;
  std::condition_variable cv_;
  int limit_ GUARDED_BY(mu_);
  const int max_;
  int in_flight_ GUARDED_BY(mu_) = 0;
};

// One place a request can be sent: a cache (by address) or the origin (DIRECT).
struct Route {
  Route(std::string name, std::string proxy, RouteHealth::Policy policy);
  const std::string name;   // "http://127.0.0.2:3128", or "DIRECT"
  const std::string proxy;  // for CURLOPT_PROXY; empty: straight to the origin
  bool direct() const { return proxy.empty(); }
  RouteHealth health;
  RouteLimit limit;
  std::atomic<bool> warned_not_slicing{false};
  // Answers and bytes by what the route said: "hit", "miss", "answered" (a cache that does
  // not say, or the origin), "refused" (failed the checks), "error" (no answer).
  Counter& Requests(const std::string& result);
  Counter& Bytes(const std::string& result);
};

struct RouterOptions {
  std::chrono::seconds refresh{60};  // re-resolve cache names this often
  RouteHealth::Policy cache_policy{1, std::chrono::milliseconds(1000),
                                   std::chrono::milliseconds(10000)};
  RouteHealth::Policy origin_policy{3, std::chrono::milliseconds(1000),
                                    std::chrono::milliseconds(10000)};
};

class ProxyRouter {
 public:
  ProxyRouter(ProxySpec spec, RouterOptions options);
  ~ProxyRouter();
  ProxyRouter(const ProxyRouter&) = delete;
  ProxyRouter& operator=(const ProxyRouter&) = delete;

  // The routes for a request, best first: each group's routes ranked by HRW score of
  // `placement`, groups in order. `origin` ("scheme://host:port") names the origin's
  // health record for DIRECT. Routes that are down are included: ask their health.
  std::vector<std::shared_ptr<Route>> Plan(uint64_t placement, const std::string& origin);

  // Every route known now (caches by address, then origins), for metrics and stats.
  std::vector<std::shared_ptr<Route>> Routes() const;

  // Resolves `host` to the cache routes it stands for, as Plan would (for tests and for
  // checking a list at mount time). Empty when it does not resolve.
  static std::vector<std::string> Resolve(const std::string& host, int port);

 private:
  struct Member {
    bool direct = false;
    std::shared_ptr<Route> route;  // null for direct
  };
  // Re-resolves names if `refresh` has passed and no other thread is at it.
  void MaybeRefresh();
  std::shared_ptr<Route> CacheRoute(const std::string& name);  // requires mu_
  std::shared_ptr<Route> OriginRoute(const std::string& origin);

  const ProxySpec spec_;
  const bool has_direct_;  // spec_.has_direct(), asked once instead of per request
  const RouterOptions options_;
  // Held by the thread resolving names; the first resolution is waited for by all.
  Mutex resolve_mu_;
  std::atomic<int64_t> resolved_at_ns_{0};  // steady clock; 0: never
  mutable Mutex mu_;
  std::vector<std::vector<Member>> groups_ GUARDED_BY(mu_);
  std::map<std::string, std::shared_ptr<Route>> caches_
      GUARDED_BY(mu_);  // by name; kept while listed
  std::map<std::string, std::shared_ptr<Route>> origins_ GUARDED_BY(mu_);  // by origin
  int collector_ = 0;
  LogLimiter resolve_log_{5, std::chrono::seconds(60)};
};

}  // namespace tierfs
