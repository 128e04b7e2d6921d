// BlockPool: block memory is reused within its bound, other sizes bypass it, and blocks
// handed out again keep every reader's bytes apart.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "tiers/block.h"

namespace tierfs {
namespace {

constexpr size_t kBlock = 64 << 10;
constexpr size_t kSlot = kBlock + kBlockAlign;

TEST(BlockPool, IsOffUntilConfigured) {
  BlockPool pool;
  BlockPool::Memory m = pool.Take(kSlot);
  EXPECT_EQ(m.capacity, kSlot);
  pool.Give(m);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  EXPECT_EQ(pool.reuses(), 0u);
}

TEST(BlockPool, HandsFreedMemoryOutAgain) {
  BlockPool pool;
  pool.Configure(kBlock, 4 * kSlot);
  BlockPool::Memory a = pool.Take(kBlock);  // a block
  EXPECT_EQ(a.capacity, kSlot);
  EXPECT_EQ(reinterpret_cast<uintptr_t>(a.data) % kBlockAlign, 0u);
  pool.Give(a);
  EXPECT_EQ(pool.idle_bytes(), kSlot);
  BlockPool::Memory b = pool.Take(kSlot);  // an NVMe record: header + block
  EXPECT_EQ(b.data, a.data);
  EXPECT_EQ(pool.reuses(), 1u);
  EXPECT_EQ(pool.idle_bytes(), 0u);
  pool.Give(b);
}

TEST(BlockPool, KeepsNoMoreIdleThanItsBound) {
  BlockPool pool;
  pool.Configure(kBlock, 2 * kSlot);
  std::vector<BlockPool::Memory> taken;
  for (int i = 0; i < 5; ++i) taken.push_back(pool.Take(kBlock));
  for (auto& m : taken) pool.Give(m);
  EXPECT_EQ(pool.idle_bytes(), 2 * kSlot);
  pool.Configure(kBlock, 2 * kSlot);  // drops what is idle
  EXPECT_EQ(pool.idle_bytes(), 0u);
}

TEST(BlockPool, SmallAndLargeRequestsGoToMalloc) {
  BlockPool pool;
  pool.Configure(kBlock, 8 * kSlot);
  for (size_t size : {kBlockAlign, size_t{32} << 10, kSlot + kBlockAlign, 4 * kSlot}) {
    BlockPool::Memory m = pool.Take(size);
    EXPECT_EQ(m.capacity, size);
    pool.Give(m);
    EXPECT_EQ(pool.idle_bytes(), 0u) << size;
  }
  BlockPool::Memory m = pool.Take(36 << 10);  // over half the class: from the class
  EXPECT_EQ(m.capacity, kSlot);
  pool.Give(m);
  EXPECT_EQ(pool.idle_bytes(), kSlot);
}

TEST(BlockPool, BlocksReuseTheGlobalPool) {
  BlockPool& pool = BlockPool::Global();
  pool.Configure(kBlock, 4 * kSlot);
  struct Off {  // the other tests count block footprints without the pool
    ~Off() { BlockPool::Global().Configure(0, 0); }
  } off;
  const uint64_t reuses = pool.reuses();
  const char* first;
  {
    auto block = Block::Allocate(kBlock);
    EXPECT_EQ(block->footprint(), kSlot);  // quotas count what is really pinned
    first = block->data();
  }
  auto again = Block::AllocateWithOffset(kBlock + 64, 64);
  EXPECT_EQ(again->storage(), first);
  EXPECT_EQ(again->data(), first + 64);
  EXPECT_EQ(pool.reuses(), reuses + 1);
  auto small = Block::Allocate(10 << 10);
  EXPECT_EQ(small->footprint(), 12u << 10);
}

#if defined(__SANITIZE_ADDRESS__)
// Idle buffers are poisoned: a block used after its last reference went is still an error.
TEST(BlockPoolDeathTest, TouchingAnIdleBufferIsCaughtUnderAsan) {
  BlockPool pool;
  pool.Configure(kBlock, 2 * kSlot);
  BlockPool::Memory m = pool.Take(kBlock);
  pool.Give(m);
  EXPECT_DEATH({ static_cast<volatile char*>(m.data)[100] = 1; }, "use-after-poison");
}
#endif

// Many threads taking and giving at once (run under TSan with the cache tests): a buffer
// is never handed to two holders, so each holder's bytes stay its own.
TEST(BlockPool, ConcurrentHoldersNeverShareMemory) {
  BlockPool pool;
  pool.Configure(kBlock, 6 * kSlot);
  std::vector<std::thread> threads;
  std::atomic<int> mismatches{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 300; ++i) {
        BlockPool::Memory m = pool.Take(kBlock);
        const char fill = static_cast<char>(t * 31 + i);
        std::memset(m.data, fill, kBlock);
        std::this_thread::yield();
        for (size_t k = 0; k < kBlock; k += 4093) {
          if (m.data[k] != fill) ++mismatches;
        }
        pool.Give(m);
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(mismatches.load(), 0);
  EXPECT_GT(pool.reuses(), 0u);
  EXPECT_LE(pool.idle_bytes(), 6 * kSlot);
}

}  // namespace
}  // namespace tierfs
