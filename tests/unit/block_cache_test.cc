#include "tiers/block_cache.h"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "test_util.h"
#include "tiers/ram_tier.h"
#include "ufs/fake_store.h"

namespace tierfs {
namespace {
using testing::Pattern;

constexpr size_t kBlock = 64 << 10;

std::string Flat(const ReadResult& r) {
  std::string s(r.size, '\0');
  r.CopyTo(s.data());
  return s;
}

TEST(BlockCache, SecondReadMakesZeroStoreCalls) {
  FakeStore store;
  const std::string data = Pattern(10 * kBlock + 7, 1);
  store.AddFile("f", data);
  RamTier ram(64 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  ObjectRef ref{"f", "v1"};
  auto r1 = cache.Read(ref, data.size(), 0, data.size());
  ASSERT_TRUE(r1.ok());
  EXPECT_EQ(Flat(*r1), data);
  EXPECT_EQ(store.read_calls(), 11u);
  auto r2 = cache.Read(ref, data.size(), 0, data.size());
  ASSERT_TRUE(r2.ok());
  EXPECT_EQ(Flat(*r2), data);
  EXPECT_EQ(store.read_calls(), 11u);
  EXPECT_EQ(cache.Stats().remote_bytes, data.size());
}

TEST(BlockCache, SixtyFourReadersOfOneColdBlockMakeOneStoreCall) {
  FakeStore store;
  const std::string data = Pattern(kBlock, 2);
  store.AddFile("f", data);
  store.SetLatency(std::chrono::milliseconds(50));
  RamTier ram(64 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  std::atomic<int> good{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 64; ++i) {
    threads.emplace_back([&] {
      auto r = cache.Read(ObjectRef{"f", "v1"}, data.size(), 100, 1000);
      if (r.ok() && Flat(*r) == data.substr(100, 1000)) ++good;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(good.load(), 64);
  EXPECT_EQ(store.read_calls(), 1u);
}

TEST(BlockCache, SingleFlightWorksWithoutAnyTier) {
  FakeStore store;
  const std::string data = Pattern(kBlock, 3);
  store.AddFile("f", data);
  store.SetLatency(std::chrono::milliseconds(100));
  BlockCache cache(store, {}, kBlock);
  std::vector<std::thread> threads;
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      ASSERT_TRUE(cache.Read(ObjectRef{"f", "v1"}, data.size(), 0, 10).ok());
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(store.read_calls(), 8u);
  EXPECT_GE(cache.Stats().singleflight_waits + store.read_calls(), 8u);
}

TEST(BlockCache, StoreFaultIsAnErrorAndLeavesTheCacheUnharmed) {
  FakeStore store;
  const std::string data = Pattern(3 * kBlock, 4);
  store.AddFile("f", data);
  RamTier ram(64 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  ObjectRef ref{"f", "v1"};
  ASSERT_TRUE(cache.Read(ref, data.size(), 0, kBlock).ok());  // block 0 cached
  store.FailNext(1, EIO);
  auto failed = cache.Read(ref, data.size(), 0, data.size());
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().error(), EIO);
  EXPECT_EQ(cache.Stats().remote_errors, 1u);
  auto ok = cache.Read(ref, data.size(), 0, data.size());
  ASSERT_TRUE(ok.ok());
  EXPECT_EQ(Flat(*ok), data);
}

TEST(BlockCache, ChangedObjectIsNeverMixed) {
  FakeStore store;
  store.AddFile("f", Pattern(2 * kBlock, 5), "v1");
  RamTier ram(64 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  ASSERT_TRUE(cache.Read(ObjectRef{"f", "v1"}, 2 * kBlock, 0, kBlock).ok());
  store.ReplaceFile("f", Pattern(2 * kBlock, 6), "v2");
  // The old version's uncached block cannot be fetched any more: EIO, not new bytes.
  EXPECT_FALSE(cache.Read(ObjectRef{"f", "v1"}, 2 * kBlock, kBlock, kBlock).ok());
  // The new version reads its own bytes, never the cached block of v1.
  auto r = cache.Read(ObjectRef{"f", "v2"}, 2 * kBlock, 0, 2 * kBlock);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Flat(*r), Pattern(2 * kBlock, 6));
}

TEST(BlockCache, ShortObjectIsAnError) {
  FakeStore store;
  store.AddFile("f", "short", "v1");
  BlockCache cache(store, {}, kBlock);
  auto r = cache.Read(ObjectRef{"f", "v1"}, 100, 0, 100);  // index said 100 bytes
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().error(), EIO);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

TEST(BlockCachePrefetch, SequentialReaderGetsBlocksAheadWithinBudget) {
  FakeStore store;
  const std::string data = testing::Pattern(64 * kBlock, 21);
  store.AddFile("f", data);
  store.SetLatency(std::chrono::milliseconds(5));
  RamTier ram(256 * kBlock, kBlock);
  PrefetchOptions p;
  p.fetch_slots = 8;
  p.max_window = 16;
  p.budget = 4 * kBlock;
  BlockCache cache(store, {&ram}, kBlock, p);
  cache.Start();
  ObjectRef ref{"f", "v1"};
  for (uint64_t off = 0; off < data.size(); off += kBlock / 2) {
    auto r = cache.Read(ref, data.size(), off, kBlock / 2);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(Flat(*r), data.substr(off, kBlock / 2));
  }
  cache.Stop();
  CacheStats s = cache.Stats();
  EXPECT_GT(s.prefetched_blocks, 20u);
  EXPECT_EQ(store.read_calls(), 64u);  // every block fetched exactly once
  // Readahead ran in parallel, but never more blocks than the budget plus the reader's own.
  EXPECT_GE(store.max_concurrent_reads(), 2u);
  EXPECT_LE(store.max_concurrent_reads(), 4u + 1u);
}

TEST(BlockCachePrefetch, ReadAheadStaysInsideTheFileOfAnExtent) {
  // An archive of 64 blocks; a member is blocks [10, 14): a sequential reader of the member
  // gets read-ahead up to its end and not a block past it, while a reader of the whole
  // object runs ahead to the end.
  FakeStore store;
  const std::string data = testing::Pattern(64 * kBlock, 23);
  store.AddFile("a.tar", data);
  RamTier ram(256 * kBlock, kBlock);
  PrefetchOptions p;
  p.max_window = 16;
  BlockCache cache(store, {&ram}, kBlock, p);
  cache.Start();
  const ObjectRef ref{"a.tar", "v1"};
  const Extent member{10 * kBlock + 100, 14 * kBlock};
  for (uint64_t off = member.start; off < member.end; off += kBlock / 2) {
    const size_t n = static_cast<size_t>(std::min<uint64_t>(kBlock / 2, member.end - off));
    auto r = cache.Read(ref, data.size(), off, n, member);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(Flat(*r), data.substr(off, n));
  }
  cache.Stop();
  for (uint64_t b = 0; b < 64; ++b) {
    const bool inside = b >= 10 && b < 14;
    EXPECT_EQ(cache.Cached(ref, data.size(), b * kBlock, 1), inside) << b;
  }
  EXPECT_EQ(store.read_calls(), 4u);

  // The same reads as reads of the whole object: read-ahead runs past the member.
  RamTier ram2(256 * kBlock, kBlock);
  BlockCache whole(store, {&ram2}, kBlock, p);
  whole.Start();
  for (uint64_t off = member.start; off < member.end; off += kBlock / 2) {
    ASSERT_TRUE(whole.Read(ref, data.size(), off, kBlock / 2).ok());
  }
  for (int i = 0; i < 200 && store.read_calls() <= 8; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  whole.Stop();
  EXPECT_GT(store.read_calls(), 8u);
}

TEST(BlockCachePrefetch, RandomReaderGetsNoPrefetch) {
  FakeStore store;
  const std::string data = testing::Pattern(64 * kBlock, 22);
  store.AddFile("f", data);
  RamTier ram(256 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  cache.Start();
  ObjectRef ref{"f", "v1"};
  for (uint64_t b : {40, 3, 17, 59, 8, 33, 21, 50}) {
    ASSERT_TRUE(cache.Read(ref, data.size(), b * kBlock + 7, 100).ok());
  }
  cache.Stop();
  EXPECT_EQ(cache.Stats().prefetched_blocks, 0u);
  EXPECT_EQ(store.read_calls(), 8u);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// 500 files read sequentially at once (a DataLoader with many workers over large files):
// read-ahead never has more bytes in flight than its budget, the RAM tier never more than
// its capacity, and every byte is right.
TEST(BlockCachePrefetch, FiveHundredSequentialReadersStayWithinTheBudget) {
  constexpr int kFiles = 500;
  constexpr int kBlocksPerFile = 6;
  FakeStore store;
  std::vector<std::string> data;
  for (int f = 0; f < kFiles; ++f) {
    data.push_back(testing::Pattern(kBlocksPerFile * kBlock - static_cast<size_t>(f) * 7, f));
    store.AddFile("f" + std::to_string(f), data.back());
  }
  store.SetLatency(std::chrono::microseconds(300));
  RamTier ram(64 * kBlock, kBlock);
  PrefetchOptions p;
  p.fetch_slots = 8;
  p.max_window = 16;
  p.budget = 16 * kBlock;
  BlockCache cache(store, {&ram}, kBlock, p);
  cache.Start();
  std::atomic<int> wrong{0};
  std::atomic<uint64_t> ram_peak{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 50; ++t) {
    readers.emplace_back([&, t] {
      // Each thread interleaves 10 files, so all 500 streams are open at once.
      std::vector<uint64_t> offsets(10, 0);
      for (bool more = true; more;) {
        more = false;
        for (int k = 0; k < 10; ++k) {
          const int f = t * 10 + k;
          const std::string& d = data[static_cast<size_t>(f)];
          if (offsets[static_cast<size_t>(k)] >= d.size()) continue;
          more = true;
          const uint64_t off = offsets[static_cast<size_t>(k)];
          auto r = cache.Read(ObjectRef{"f" + std::to_string(f), "v1"}, d.size(), off, 128 << 10);
          if (!r.ok() || Flat(*r) != d.substr(off, 128 << 10)) ++wrong;
          offsets[static_cast<size_t>(k)] += 128 << 10;
          uint64_t used = ram.Stats().used_bytes;
          for (uint64_t seen = ram_peak;
               used > seen && !ram_peak.compare_exchange_weak(seen, used);) {
          }
        }
      }
    });
  }
  for (auto& r : readers) r.join();
  cache.Stop();
  CacheStats s = cache.Stats();
  EXPECT_EQ(wrong, 0);
  EXPECT_GT(s.prefetched_blocks, 0u);
  EXPECT_GT(s.prefetch_inflight_peak, 0u);
  EXPECT_LE(s.prefetch_inflight_peak, p.budget);
  EXPECT_LE(ram_peak.load(), 64 * kBlock);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// One caller thread starts 40 cold reads without waiting for any: they are all in flight
// at the store at once (the fetch pool's slots, not the caller's threads, set the pace),
// and each answer carries the right bytes.
TEST(BlockCacheDeferred, RequestsInFlightDoNotDependOnTheCallersThreads) {
  constexpr int kFiles = 40;
  FakeStore store;
  std::vector<std::string> data;
  for (int f = 0; f < kFiles; ++f) {
    data.push_back(Pattern(kBlock / 2 + static_cast<size_t>(f), 40 + f));
    store.AddFile("f" + std::to_string(f), data.back());
  }
  store.SetLatency(std::chrono::milliseconds(50));
  RamTier ram(256 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  cache.Start();
  std::mutex mu;
  std::condition_variable cv;
  int answered = 0, wrong = 0;
  for (int f = 0; f < kFiles; ++f) {
    const std::string& d = data[static_cast<size_t>(f)];
    auto r = cache.ReadOrDefer(ObjectRef{"f" + std::to_string(f), "v1"}, d.size(), 0, d.size(),
                               [&, f](Result<ReadResult> r) {
                                 std::lock_guard lock(mu);
                                 if (!r.ok() || Flat(*r) != data[static_cast<size_t>(f)]) ++wrong;
                                 ++answered;
                                 cv.notify_all();
                               });
    ASSERT_FALSE(r.has_value()) << "a cold read was answered on the caller's thread";
  }
  {
    std::unique_lock lock(mu);
    ASSERT_TRUE(cv.wait_for(lock, std::chrono::seconds(30), [&] { return answered == kFiles; }));
  }
  EXPECT_EQ(wrong, 0);
  EXPECT_GE(store.max_concurrent_reads(), 32u);
  // Once in, the same reads are answered at once, with no request.
  const uint64_t calls = store.read_calls();
  for (int f = 0; f < kFiles; ++f) {
    const std::string& d = data[static_cast<size_t>(f)];
    auto r = cache.ReadOrDefer(ObjectRef{"f" + std::to_string(f), "v1"}, d.size(), 0, d.size(),
                               [](Result<ReadResult>) { FAIL() << "deferred a cached read"; });
    ASSERT_TRUE(r.has_value() && r->ok());
    EXPECT_EQ(Flat(**r), d);
  }
  EXPECT_EQ(store.read_calls(), calls);
  cache.Stop();
}

// A deferred read of a block another reader is fetching waits for that fetch (one
// request), and a store failure reaches the deferred reader as an error.
TEST(BlockCacheDeferred, JoinsAFetchInFlightAndPassesErrorsOn) {
  FakeStore store;
  const std::string d = Pattern(3 * kBlock, 9);
  store.AddFile("f", d);
  store.SetLatency(std::chrono::milliseconds(100));
  RamTier ram(64 * kBlock, kBlock);
  PrefetchOptions no_read_ahead;
  no_read_ahead.max_window = 0;
  BlockCache cache(store, {&ram}, kBlock, no_read_ahead);
  cache.Start();
  std::promise<Result<ReadResult>> a, b;
  ASSERT_FALSE(cache.ReadOrDefer(ObjectRef{"f", "v1"}, d.size(), 0, 100,
                                 [&](Result<ReadResult> r) { a.set_value(std::move(r)); }));
  ASSERT_FALSE(cache.ReadOrDefer(ObjectRef{"f", "v1"}, d.size(), 10, 100,
                                 [&](Result<ReadResult> r) { b.set_value(std::move(r)); }));
  auto ra = a.get_future().get(), rb = b.get_future().get();
  ASSERT_TRUE(ra.ok() && rb.ok());
  EXPECT_EQ(Flat(*ra), d.substr(0, 100));
  EXPECT_EQ(Flat(*rb), d.substr(10, 100));
  EXPECT_EQ(store.read_calls(), 1u);
  EXPECT_EQ(cache.Stats().singleflight_waits, 1u);

  store.Remove("f");
  std::promise<Result<ReadResult>> c;
  ASSERT_FALSE(cache.ReadOrDefer(ObjectRef{"f", "v1"}, d.size(), 2 * kBlock, 100,
                                 [&](Result<ReadResult> r) { c.set_value(std::move(r)); }));
  EXPECT_FALSE(c.get_future().get().ok());
  cache.Stop();
}

// A RAM tier of 4 blocks cannot hold a 16-block read-ahead: blocks would be evicted before
// the reader gets there and fetched twice. The window halves each time that happens, so a
// sequential pass fetches each block about once.
TEST(BlockCachePrefetch, WindowShrinksWhenTheRamTierCannotHoldIt) {
  constexpr uint64_t kBlocks = 128;
  FakeStore store;
  const std::string d = Pattern(kBlocks * kBlock, 77);
  store.AddFile("f", d);
  store.SetLatency(std::chrono::milliseconds(1));
  RamTier ram(4 * kBlock, kBlock);
  PrefetchOptions p;
  p.max_window = 16;
  p.budget = 64 * kBlock;
  BlockCache cache(store, {&ram}, kBlock, p);
  cache.Start();
  for (uint64_t off = 0; off < d.size(); off += kBlock) {
    auto r = cache.Read(ObjectRef{"f", "v1"}, d.size(), off, kBlock);
    ASSERT_TRUE(r.ok());
    ASSERT_EQ(Flat(*r), d.substr(off, kBlock));
    std::this_thread::sleep_for(std::chrono::milliseconds(1));  // a reader that computes
  }
  cache.Stop();
  EXPECT_GT(cache.Stats().readahead_refetched, 0u);
  // Learning the window costs a few blocks (about 1.1x here); a fixed 16-block window
  // fetches nearly every block twice (about 1.97x).
  EXPECT_LE(store.read_calls(), kBlocks * 125 / 100) << "read-ahead fetched blocks twice";
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// One read in 20 stalls for 2 s (a straggling request at a real store): each straggler
// gets a second request once it has run 3x the recent p99, and that answer wins. Without
// hedging none would be counted and 9 of the reads would each wait the 2 s.
TEST(BlockCacheHedge, AStragglerGetsASecondRequestAndItsAnswerWins) {
  constexpr int kFiles = 200;
  FakeStore store;
  std::vector<std::string> data;
  for (int f = 0; f < kFiles; ++f) {
    data.push_back(Pattern(kBlock / 4 + static_cast<size_t>(f), 900 + f));
    store.AddFile("f" + std::to_string(f), data.back());
  }
  store.SetLatency(std::chrono::milliseconds(2));
  store.StallEvery(20, std::chrono::milliseconds(2000));
  RamTier ram(1024 * kBlock, kBlock);
  BlockCache cache(store, {&ram}, kBlock);
  cache.Start();
  std::vector<std::thread> readers;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    readers.emplace_back([&, t] {
      for (int f = t; f < kFiles; f += 4) {
        const std::string& d = data[static_cast<size_t>(f)];
        auto r = cache.Read(ObjectRef{"f" + std::to_string(f), "v1"}, d.size(), 0, d.size());
        if (!r.ok() || Flat(*r) != d) ++wrong;
      }
    });
  }
  for (auto& r : readers) r.join();
  const CacheStats s = cache.Stats();
  cache.Stop();
  EXPECT_EQ(wrong.load(), 0);
  // The stalls after the first 20 timed fetches (the p99 needs them) were all hedged.
  EXPECT_GE(s.hedged_fetches, 8u);
  // A second request can itself be a 20th call and stall: most, not all, win.
  EXPECT_GE(s.hedge_wins, 6u);
  EXPECT_LE(s.hedged_fetches, 20u) << "fetches that did not straggle were hedged";
}

}  // namespace
}  // namespace tierfs
