#include "tiers/ram_tier.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <thread>

namespace tierfs {
namespace {

constexpr size_t kBlock = 64 << 10;

std::shared_ptr<const Block> MakeBlock(size_t size, char fill) {
  auto b = Block::Allocate(size);
  std::memset(b->mutable_data(), fill, size);
  b->set_size(size);
  return b;
}

BlockKey Key(const std::string& name, uint64_t index = 0) {
  return MakeBlockKey(ObjectRef{name, "v1"}, index);
}

TEST(RamTier, HitsMissesAndVersionsNeverMix) {
  RamTier ram(16 * kBlock, kBlock);
  EXPECT_EQ(ram.Get(Key("a")), nullptr);
  ram.Put(Key("a"), MakeBlock(kBlock, 'a'));
  auto hit = ram.Get(Key("a"));
  ASSERT_NE(hit, nullptr);
  EXPECT_EQ(hit->data()[0], 'a');
  EXPECT_EQ(ram.Get(MakeBlockKey(ObjectRef{"a", "v2"}, 0)), nullptr);
  EXPECT_EQ(ram.Get(Key("a", 1)), nullptr);
  TierStats s = ram.Stats();
  EXPECT_EQ(s.hits, 1u);
  EXPECT_EQ(s.misses, 3u);
  EXPECT_EQ(s.used_bytes, kBlock);
}

TEST(RamTier, QuotaIsNeverExceededUnderRandomInserts) {
  const uint64_t quota = 40 * kBlock + 12345;
  RamTier ram(quota, kBlock);
  std::mt19937_64 rng(42);
  for (int i = 0; i < 5000; ++i) {
    size_t size = 1 + rng() % kBlock;
    ram.Put(Key("k" + std::to_string(rng() % 400)), MakeBlock(size, 'x'));
    if (rng() % 3 == 0) (void)ram.Get(Key("k" + std::to_string(rng() % 400)));
    ASSERT_LE(ram.Stats().used_bytes, quota) << "after insert " << i;
  }
  EXPECT_GT(ram.Stats().evictions, 0u);
}

TEST(RamTier, OnePassScanDoesNotFlushTheHotSet) {
  const uint64_t quota = 64 * kBlock;
  RamTier ram(quota, kBlock);
  // A hot set, read twice so it is known to be reused.
  for (int i = 0; i < 8; ++i) ram.Put(Key("hot", i), MakeBlock(kBlock, 'h'));
  for (int round = 0; round < 2; ++round) {
    // A one-pass scan of 10x the quota, with the hot set re-read between scans.
    for (int i = 0; i < 8; ++i) ASSERT_NE(ram.Get(Key("hot", i)), nullptr) << "round " << round;
    for (int i = 0; i < 640; ++i)
      ram.Put(Key("scan" + std::to_string(round), i), MakeBlock(kBlock, 's'));
  }
  for (int i = 0; i < 8; ++i) EXPECT_NE(ram.Get(Key("hot", i)), nullptr) << i;
}

TEST(RamTier, EvictsOnlyWhatTheNewBlockNeeds) {
  const uint64_t quota = 15 * kBlock;  // small enough for a single shard
  RamTier ram(quota, kBlock);
  for (int i = 0; i < 15; ++i) ram.Put(Key("b", i), MakeBlock(kBlock, 'b'));
  EXPECT_EQ(ram.Stats().evictions, 0u);  // exactly full
  ram.Put(Key("b", 15), MakeBlock(kBlock, 'b'));
  TierStats s = ram.Stats();
  EXPECT_EQ(s.evictions, 1u);
  EXPECT_EQ(s.used_bytes, quota);
  EXPECT_EQ(ram.Get(Key("b", 0)), nullptr);  // the least recently used went
  for (int i = 1; i <= 15; ++i) EXPECT_NE(ram.Get(Key("b", i)), nullptr) << i;
  // A block bigger than several victims evicts as many as it needs, no more.
  ram.Put(Key("big", 0), MakeBlock(3 * kBlock, 'g'));
  s = ram.Stats();
  EXPECT_EQ(s.evictions, 4u);
  EXPECT_LE(s.used_bytes, quota);
  EXPECT_NE(ram.Get(Key("big", 0)), nullptr);
}

TEST(RamTier, ManyThreadsAreSafe) {
  RamTier ram(256 * kBlock, kBlock);
  std::vector<std::thread> threads;
  for (int t = 0; t < 16; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 2000; ++i) {
        BlockKey k = Key("t" + std::to_string((t * 7 + i) % 500));
        if (auto b = ram.Get(k)) {
          ASSERT_EQ(b->data()[0], 'z');
        } else {
          ram.Put(k, MakeBlock(4096, 'z'));
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_LE(ram.Stats().used_bytes, 256 * kBlock);
}

}  // namespace
}  // namespace tierfs
