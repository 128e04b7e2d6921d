#include "tiers/block_cache.h"

#include <gtest/gtest.h>

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
