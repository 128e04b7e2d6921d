// CredentialCache with a fake provider and a clock the test moves: renewal ahead of the
// expiry, back-off while the provider fails, the old keys serving until they expire, and
// one fetch for many refused requests.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "ufs/aws_credentials.h"

namespace tierfs {
namespace {

constexpr int64_t kLifetime = 40;  // renewed when a quarter (10 s) is left

struct Provider : CredentialProvider {
  FakeClock* clock;
  std::atomic<int>* fetches;
  std::atomic<bool>* failing;
  std::string Name() const override { return "fake"; }
  Result<AwsCredentials> Fetch() override {
    const int n = ++*fetches;
    if (*failing) return Status(EACCES, "provider down");
    AwsCredentials c;
    c.access_key = "K" + std::to_string(n);
    c.secret_key = "s";
    c.session_token = "t";
    c.expires_at = clock->Now() + kLifetime;
    return c;
  }
};

class CredentialCacheTest : public ::testing::Test {
 protected:
  std::unique_ptr<CredentialCache> Make(int64_t expires_in) {
    auto p = std::make_unique<Provider>();
    p->clock = &clock;
    p->fetches = &fetches;
    p->failing = &failing;
    AwsCredentials first;
    first.access_key = "K0";
    first.secret_key = "s";
    first.expires_at = expires_in == 0 ? 0 : clock.Now() + expires_in;
    return std::make_unique<CredentialCache>(std::move(p), first, clock);
  }
  // Waits (2 s at most, real time) until the provider was asked `n` times.
  bool FetchesReach(int n) {
    for (int i = 0; i < 400 && fetches < n; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return fetches >= n;
  }
  // Waits (2 s at most, real time) until the renewal thread waits for `deadline`: after a
  // failure it picks its next time from the clock, so time moves only once it has.
  bool WaiterAt(int64_t deadline) {
    for (int i = 0; i < 400 && clock.waiting_until() != deadline; ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return clock.waiting_until() == deadline;
  }
  std::string KeyNow(CredentialCache& cache) {
    auto c = cache.Get();
    return c.ok() ? c->access_key : "error: " + c.status().message();
  }

  FakeClock clock;
  std::atomic<int> fetches{0};
  std::atomic<bool> failing{false};
};

TEST_F(CredentialCacheTest, RenewsInTheBackgroundAQuarterOfTheLifetimeAhead) {
  auto cache = Make(kLifetime);
  clock.Advance(29);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(fetches, 0) << "renewed with 11 s of 40 left";
  EXPECT_EQ(KeyNow(*cache), "K0");
  clock.Advance(1);  // 10 s left
  ASSERT_TRUE(FetchesReach(1));
  for (int i = 0; i < 100 && KeyNow(*cache) != "K1"; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  EXPECT_EQ(KeyNow(*cache), "K1");
  clock.Advance(30);  // the new ones are due 30 s after they were fetched
  EXPECT_TRUE(FetchesReach(2));
}

TEST_F(CredentialCacheTest, OldKeysServeWhileRenewalFailsWithBackoffThenReadsFailThenRecover) {
  auto cache = Make(kLifetime);
  failing = true;
  clock.Advance(30);
  ASSERT_TRUE(FetchesReach(1));
  EXPECT_EQ(KeyNow(*cache), "K0") << "still valid for 10 s";
  // Back-off after failures: 1 s, then 2 s.
  ASSERT_TRUE(WaiterAt(clock.Now() + 1));
  clock.Advance(1);
  ASSERT_TRUE(FetchesReach(2));
  ASSERT_TRUE(WaiterAt(clock.Now() + 2));
  clock.Advance(1);
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  EXPECT_EQ(fetches, 2) << "retried after 1 s where 2 s were due";
  clock.Advance(1);
  ASSERT_TRUE(FetchesReach(3));
  clock.Advance(8);  // expired
  const std::string expired = KeyNow(*cache);
  EXPECT_NE(expired.find("expired and cannot be renewed"), std::string::npos) << expired;
  failing = false;
  EXPECT_EQ(KeyNow(*cache).substr(0, 1), "K") << "the first request after the provider is back";
}

TEST_F(CredentialCacheTest, ManyRefusedRequestsCostOneFetch) {
  auto cache = Make(0);  // static keys: no renewal thread
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) threads.emplace_back([&] { cache->Refused("K0"); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(fetches, 1);
  EXPECT_EQ(KeyNow(*cache), "K1");
  cache->Refused("K0");  // a late answer for the old key: already renewed
  EXPECT_EQ(fetches, 1);
}

}  // namespace
}  // namespace tierfs
