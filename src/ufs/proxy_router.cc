#include "ufs/proxy_router.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>

#include "common/blocking.h"
#include "common/checksum.h"
#include "common/log.h"
#include "common/names.h"

namespace tierfs {
namespace {

constexpr const char* kRouteRequests = "tierfs_proxy_requests_total";
constexpr const char* kRouteRequestsHelp =
    "block and listing requests by route (a cache's address, or DIRECT for the origin) and "
    "result: hit/miss (the cache said), answered (no cache status), refused (failed the "
    "range/ETag checks), error (no answer)";
constexpr const char* kRouteBytes = "tierfs_proxy_bytes_total";
constexpr const char* kRouteBytesHelp = "bytes of block reads by route and result";
constexpr const char* kRouteResults[] = {"hit", "miss", "answered", "refused", "error"};

std::vector<std::string> Split(const std::string& s, char sep) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    size_t at = s.find(sep, start);
    out.push_back(s.substr(start, at == std::string::npos ? std::string::npos : at - start));
    if (at == std::string::npos) return out;
    start = at + 1;
  }
}

bool IsIpLiteral(const std::string& host) {
  unsigned char buf[sizeof(in6_addr)];
  return ::inet_pton(AF_INET, host.c_str(), buf) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), buf) == 1;
}

std::string RouteName(const std::string& host, int port) {
  const bool v6 = host.find(':') != std::string::npos;
  return "http://" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

Result<ProxyEntry> ParseEntry(const std::string& raw) {
  ProxyEntry e;
  e.text = TrimBlanks(raw);
  if (e.text == "DIRECT") {
    e.direct = true;
    return e;
  }
  const std::string bad = "http-proxy: '" + e.text + "' ";
  if (e.text.empty()) return Status::Invalid("http-proxy: empty entry (check '|' and ';')");
  if (e.text.rfind("http://", 0) != 0) {
    return Status::Invalid(bad +
                           "is not http://HOST[:PORT] or DIRECT (caches are spoken to "
                           "in plain HTTP as forward proxies)");
  }
  std::string rest = e.text.substr(7);
  if (!rest.empty() && rest.back() == '/') rest.pop_back();
  if (rest.find_first_of("/?#@ ") != std::string::npos) {
    return Status::Invalid(bad + "must be just http://HOST[:PORT] (no path, query or user)");
  }
  std::string port;
  if (!rest.empty() && rest[0] == '[') {
    size_t close = rest.find(']');
    if (close == std::string::npos) return Status::Invalid(bad + "has an unclosed '['");
    e.host = rest.substr(1, close - 1);
    if (close + 1 < rest.size()) {
      if (rest[close + 1] != ':') return Status::Invalid(bad + "has junk after ']'");
      port = rest.substr(close + 2);
    }
  } else {
    size_t colon = rest.find(':');
    e.host = rest.substr(0, colon);
    if (colon != std::string::npos) port = rest.substr(colon + 1);
  }
  if (e.host.empty()) return Status::Invalid(bad + "has no host (IPv6 addresses go in [])");
  if (!port.empty() || rest.back() == ':') {
    if (port.empty() || port.size() > 5 ||
        port.find_first_not_of("0123456789") != std::string::npos || std::stoi(port) < 1 ||
        std::stoi(port) > 65535) {
      return Status::Invalid(bad + "has a bad port");
    }
    e.port = std::stoi(port);
  }
  return e;
}

}  // namespace

bool ProxySpec::has_direct() const {
  for (const auto& g : groups) {
    for (const auto& e : g) {
      if (e.direct) return true;
    }
  }
  return false;
}

bool ProxySpec::has_caches() const {
  for (const auto& g : groups) {
    for (const auto& e : g) {
      if (!e.direct) return true;
    }
  }
  return false;
}

Result<ProxySpec> ParseProxyList(const std::string& text) {
  ProxySpec spec;
  if (TrimBlanks(text).empty()) return spec;
  if (text.size() > 8192) return Status::Invalid("http-proxy: list too long");
  for (const std::string& group : Split(text, ';')) {
    std::vector<ProxyEntry> entries;
    for (const std::string& raw : Split(group, '|')) {
      auto e = ParseEntry(raw);
      if (!e.ok()) return e.status();
      entries.push_back(std::move(*e));
    }
    spec.groups.push_back(std::move(entries));
  }
  return spec;
}

// --- RouteHealth ---

RouteHealth::Admit RouteHealth::Try(SteadyTime now) {
  MutexLock lock(mu_);
  if (!down_) return Admit::kUse;
  if (probing_ || now < retry_at_) return Admit::kSkip;
  probing_ = true;
  return Admit::kProbe;
}

void RouteHealth::Answered() {
  MutexLock lock(mu_);
  down_ = false;
  probing_ = false;
  consecutive_failures_ = 0;
  backoff_ = std::chrono::milliseconds(0);
}

void RouteHealth::Busy() {
  MutexLock lock(mu_);
  probing_ = false;
}

void RouteHealth::Failed(SteadyTime now, std::chrono::nanoseconds took) {
  MutexLock lock(mu_);
  probing_ = false;
  ++consecutive_failures_;
  if (!down_ && consecutive_failures_ < policy_.failures_to_down) return;
  if (!down_) ++downs_;
  down_ = true;
  if (took < policy_.quick_failure) {
    // Refused at once: probing again costs nothing, and it is how a read finds the
    // source back the moment it is.
    retry_at_ = now + policy_.quick_retry;
    return;
  }
  backoff_ =
      backoff_.count() == 0 ? policy_.first_backoff : std::min(backoff_ * 2, policy_.max_backoff);
  retry_at_ = now + backoff_;
}

bool RouteHealth::up() const {
  MutexLock lock(mu_);
  return !down_;
}

SteadyTime RouteHealth::retry_at() const {
  MutexLock lock(mu_);
  return retry_at_;
}

uint64_t RouteHealth::downs() const {
  MutexLock lock(mu_);
  return downs_;
}

// --- RouteLimit ---

void RouteLimit::Acquire() {
  MutexLock lock(mu_);
  if (in_flight_ >= limit_) {
    lock.Unlock();
    AboutToBlock();
    lock.Lock();
    cv_.wait(lock.native(), [&]() REQUIRES(mu_) { return in_flight_ < limit_; });
  }
  ++in_flight_;
}

int RouteLimit::Release(bool answered) {
  int others = 0;
  {
    MutexLock lock(mu_);
    --in_flight_;
    others = in_flight_;
    if (answered) {
      limit_ = std::min(max_, limit_ + 1);
    } else if (others > 0) {
      limit_ = std::max(1, std::min(limit_, others + 1) / 2);
    }
  }
  cv_.notify_all();
  return others;
}

int RouteLimit::limit() const {
  MutexLock lock(mu_);
  return limit_;
}

int RouteLimit::in_flight() const {
  MutexLock lock(mu_);
  return in_flight_;
}

// --- Route ---

Route::Route(std::string name_in, std::string proxy_in, RouteHealth::Policy policy)
    : name(std::move(name_in)), proxy(std::move(proxy_in)), health(policy) {
  // Created once per label set so every result shows (as 0) from the first scrape.
  for (const char* r : kRouteResults) {
    (void)Requests(r);
    (void)Bytes(r);
  }
}

Counter& Route::Requests(const std::string& result) {
  return MetricsRegistry::Global().GetCounter(kRouteRequests, kRouteRequestsHelp,
                                              {{"via", name}, {"result", result}});
}

Counter& Route::Bytes(const std::string& result) {
  return MetricsRegistry::Global().GetCounter(kRouteBytes, kRouteBytesHelp,
                                              {{"via", name}, {"result", result}});
}

// --- ProxyRouter ---

ProxyRouter::ProxyRouter(ProxySpec spec, RouterOptions options)
    : spec_(std::move(spec)), has_direct_(spec_.has_direct()), options_(options) {
  collector_ = MetricsRegistry::Global().AddCollector([this](MetricsWriter& w) {
    for (const auto& r : Routes()) {
      w.Gauge("tierfs_proxy_up", "1 while a route (cache or DIRECT) is up, 0 while it is down",
              {{"via", r->name}}, r->health.up() ? 1 : 0);
    }
  });
}

ProxyRouter::~ProxyRouter() { MetricsRegistry::Global().RemoveCollector(collector_); }

std::vector<std::string> ProxyRouter::Resolve(const std::string& host, int port) {
  if (IsIpLiteral(host)) return {RouteName(host, port)};
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  if (::getaddrinfo(host.c_str(), nullptr, &hints, &res) != 0) return {};
  std::set<std::string> names;
  for (addrinfo* a = res; a != nullptr; a = a->ai_next) {
    char buf[INET6_ADDRSTRLEN] = {};
    const void* addr =
        a->ai_family == AF_INET
            ? static_cast<const void*>(&reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr)
            : static_cast<const void*>(&reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr);
    if (::inet_ntop(a->ai_family, addr, buf, sizeof buf) != nullptr)
      names.insert(RouteName(buf, port));
  }
  ::freeaddrinfo(res);
  return {names.begin(), names.end()};
}

void ProxyRouter::MaybeRefresh() {
  const int64_t now = std::chrono::steady_clock::now().time_since_epoch().count();
  const int64_t at = resolved_at_ns_.load(std::memory_order_acquire);
  const int64_t period = std::chrono::nanoseconds(options_.refresh).count();
  if (at != 0 && now - at < period) return;
  std::unique_lock<Mutex> resolving(resolve_mu_, std::defer_lock);  // guards no field
  if (at == 0) {
    resolving.lock();  // first use: every request waits for the addresses
  } else if (!resolving.try_lock()) {
    return;  // another thread re-resolves; go on with the addresses we have
  }
  if (resolved_at_ns_.load(std::memory_order_acquire) != at) return;  // done meanwhile
  // Names first, without the lock (getaddrinfo may wait on DNS).
  std::vector<std::vector<std::pair<bool, std::vector<std::string>>>> resolved;
  for (const auto& g : spec_.groups) {
    auto& rg = resolved.emplace_back();
    for (const auto& e : g) {
      if (e.direct) {
        rg.emplace_back(true, std::vector<std::string>{});
        continue;
      }
      std::vector<std::string> names = Resolve(e.host, e.port);
      if (names.empty()) {
        TLOG_WARN_LIMITED(resolve_log_,
                          "http-proxy: '{}' does not resolve; its group goes on without it",
                          e.text);
      }
      rg.emplace_back(false, std::move(names));
    }
  }
  // Routes for new addresses are made outside mu_: making one registers metrics, and a
  // scrape holds the registry's lock while it asks this router for its routes.
  std::map<std::string, std::shared_ptr<Route>> fresh;
  {
    MutexLock lock(mu_);
    for (const auto& rg : resolved) {
      for (const auto& [direct, names] : rg) {
        for (const auto& n : names) {
          if (!caches_.count(n)) fresh[n] = nullptr;
        }
      }
    }
  }
  for (auto& [n, r] : fresh) r = std::make_shared<Route>(n, n, options_.cache_policy);
  {
    MutexLock lock(mu_);
    for (auto& [n, r] : fresh) caches_.emplace(n, std::move(r));
    groups_.clear();
    for (const auto& rg : resolved) {
      auto& g = groups_.emplace_back();
      std::set<std::string> seen;
      for (const auto& [direct, names] : rg) {
        if (direct) {
          g.push_back(Member{true, nullptr});
          continue;
        }
        for (const auto& n : names) {
          if (seen.insert(n).second) g.push_back(Member{false, caches_.at(n)});
        }
      }
    }
  }
  resolved_at_ns_.store(
      std::max<int64_t>(1, std::chrono::steady_clock::now().time_since_epoch().count()),
      std::memory_order_release);
}

std::shared_ptr<Route> ProxyRouter::OriginRoute(const std::string& origin) {
  {
    MutexLock lock(mu_);
    if (auto it = origins_.find(origin); it != origins_.end()) return it->second;
  }
  auto route = std::make_shared<Route>("DIRECT", "", options_.origin_policy);
  MutexLock lock(mu_);
  return origins_.emplace(origin, std::move(route)).first->second;
}

std::vector<std::shared_ptr<Route>> ProxyRouter::Plan(uint64_t placement,
                                                      const std::string& origin) {
  if (spec_.empty()) return {OriginRoute(origin)};
  MaybeRefresh();
  std::vector<std::shared_ptr<Route>> plan;
  std::shared_ptr<Route> direct;
  if (has_direct_) direct = OriginRoute(origin);
  MutexLock lock(mu_);
  for (const auto& g : groups_) {
    std::vector<std::pair<uint64_t, std::shared_ptr<Route>>> ranked;
    ranked.reserve(g.size());
    for (const Member& m : g) {
      const std::string& name = m.direct ? direct->name : m.route->name;
      // HRW: hash(placement key, route); the route's name seeds the hash.
      const uint64_t score = Xxh3(&placement, sizeof placement, Xxh3(name));
      ranked.emplace_back(score, m.direct ? direct : m.route);
    }
    std::sort(ranked.begin(), ranked.end(), [](const auto& a, const auto& b) {
      return a.first != b.first ? a.first > b.first : a.second->name < b.second->name;
    });
    for (auto& [score, route] : ranked) {
      if (std::find(plan.begin(), plan.end(), route) == plan.end()) plan.push_back(route);
    }
  }
  return plan;
}

std::vector<std::shared_ptr<Route>> ProxyRouter::Routes() const {
  MutexLock lock(mu_);
  std::vector<std::shared_ptr<Route>> out;
  for (const auto& [n, r] : caches_) out.push_back(r);
  for (const auto& [n, r] : origins_) out.push_back(r);
  return out;
}

}  // namespace tierfs
