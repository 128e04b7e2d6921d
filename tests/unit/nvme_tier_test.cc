#include "tiers/nvme_tier.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

#include "test_util.h"
#include "tiers/block_cache.h"
#include "tiers/recent_keys.h"
#include "tiers/uring_io.h"
#include "ufs/fake_store.h"

namespace tierfs {
namespace {
using testing::Pattern;
using testing::TempDir;
namespace fs = std::filesystem;

constexpr size_t kBlock = 64 << 10;

NvmeTierOptions Options(const std::string& dir, uint64_t capacity, size_t block = kBlock) {
  NvmeTierOptions o;
  o.dir = dir;
  o.capacity = capacity;
  o.block_size = block;
  return o;
}

// The tier in `o`, opened (and started), or null after reporting why.
std::unique_ptr<NvmeTier> OpenTier(const NvmeTierOptions& o) {
  auto t = NvmeTier::Open(o);
  if (!t.ok()) {
    ADD_FAILURE() << "cannot open the tier: " << t.status().message();
    return nullptr;
  }
  return std::move(*t);
}

std::unique_ptr<NvmeTier> OpenStarted(const NvmeTierOptions& o) {
  auto t = OpenTier(o);
  if (t) t->Start();
  return t;
}

BlockKey Key(uint64_t i) {
  return MakeBlockKey(ObjectRef{"obj" + std::to_string(i / 8), "v"}, i % 8);
}

std::string Bytes(uint64_t i, size_t size = kBlock) { return Pattern(size - (i % 3) * 1000, i); }

std::shared_ptr<const Block> MakeBlock(const std::string& data) {
  auto b = Block::Allocate(data.size());
  std::memcpy(b->mutable_data(), data.data(), data.size());
  b->set_size(data.size());
  return b;
}

std::string Get(NvmeTier& t, uint64_t i) {
  auto b = t.Get(Key(i));
  return b ? std::string(b->data(), b->size()) : std::string();
}

uint64_t DirBytes(const std::string& dir) {
  uint64_t total = 0;
  for (auto& e : fs::recursive_directory_iterator(dir)) {
    struct stat st;
    if (::lstat(e.path().c_str(), &st) == 0) total += static_cast<uint64_t>(st.st_blocks) * 512;
  }
  return total;
}

TEST(NvmeTier, PersistsAcrossReopen) {
  TempDir dir;
  {
    auto t = OpenStarted(Options(dir.path(), 64 << 20));
    ASSERT_TRUE(t);
    for (uint64_t i = 0; i < 100; ++i) t->Put(Key(i), MakeBlock(Bytes(i)));
    t->Flush();
    EXPECT_EQ(Get(*t, 7), Bytes(7));
    t->Stop();
  }
  auto t = OpenTier(Options(dir.path(), 64 << 20));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Stats().blocks, 100u);
  for (uint64_t i = 0; i < 100; ++i) ASSERT_EQ(Get(*t, i), Bytes(i)) << i;
  EXPECT_EQ(t->Stats().hits, 100u);
  EXPECT_EQ(t->Stats().checksum_failures, 0u);
}

TEST(NvmeTier, ABlockSizeChangeDiscardsTheCache) {
  TempDir dir;
  {
    auto t = OpenStarted(Options(dir.path(), 64 << 20));
    ASSERT_TRUE(t);
    t->Put(Key(1), MakeBlock(Bytes(1)));
    t->Flush();
  }
  auto t = OpenTier(Options(dir.path(), 64 << 20, 128 << 10));
  ASSERT_TRUE(t);
  EXPECT_EQ(t->Stats().blocks, 0u);
}

TEST(NvmeTier, FlippedByteIsDetectedAndRefetched) {
  TempDir dir;
  FakeStore store;
  const std::string data = Pattern(4 * kBlock, 9);
  store.AddFile("f", data);
  {
    auto t = OpenStarted(Options(dir / "c", 64 << 20));
    ASSERT_TRUE(t);
    BlockCache cache(store, {t.get()}, kBlock);
    ASSERT_TRUE(cache.Read(ObjectRef{"f", "v1"}, data.size(), 0, data.size()).ok());
    t->Flush();
  }
  // Flip one data byte of every record we can find (the first segment holds them all).
  {
    int fd = ::open((dir / "c/seg-00000").c_str(), O_RDWR);
    ASSERT_GE(fd, 0);
    for (int r = 0; r < 4; ++r) {
      off_t off = static_cast<off_t>(r * RecordBytes(kBlock) + kRecordHeaderSize + 1000);
      char c;
      ASSERT_EQ(::pread(fd, &c, 1, off), 1);
      c ^= 0x40;
      ASSERT_EQ(::pwrite(fd, &c, 1, off), 1);
    }
    ::close(fd);
  }
  auto t = OpenStarted(Options(dir / "c", 64 << 20));
  ASSERT_TRUE(t);
  BlockCache cache(store, {t.get()}, kBlock);
  const uint64_t before = store.read_calls();
  auto r = cache.Read(ObjectRef{"f", "v1"}, data.size(), 0, data.size());
  ASSERT_TRUE(r.ok());
  std::string got(r->size, '\0');
  r->CopyTo(got.data());
  EXPECT_EQ(got, data);
  EXPECT_EQ(t->Stats().checksum_failures, 4u);
  EXPECT_EQ(store.read_calls() - before, 4u);  // every corrupted block came from the store
}

TEST(NvmeTier, TruncatedSegmentRecovers) {
  TempDir dir;
  {
    auto t = OpenStarted(Options(dir.path(), 64 << 20));
    ASSERT_TRUE(t);
    for (uint64_t i = 0; i < 40; ++i) t->Put(Key(i), MakeBlock(Bytes(i)));
    t->Flush();
  }
  ASSERT_EQ(::truncate((dir / "seg-00000").c_str(), 10 * RecordBytes(kBlock) + 5000), 0);
  auto t = OpenTier(Options(dir.path(), 64 << 20));
  ASSERT_TRUE(t);
  int hits = 0;
  for (uint64_t i = 0; i < 40; ++i) {
    std::string got = Get(*t, i);
    if (!got.empty()) {
      ASSERT_EQ(got, Bytes(i)) << i;
      ++hits;
    }
  }
  EXPECT_GE(hits, 10);  // the records before the cut survive
  EXPECT_LT(hits, 40);
  t->Start();
  t->Put(Key(99), MakeBlock(Bytes(99)));
  t->Flush();
  EXPECT_EQ(Get(*t, 99), Bytes(99));
}

// Eviction mechanics, without the admission filter (which would keep the first blocks).
NvmeTierOptions FifoOptions(const std::string& dir, uint64_t capacity) {
  NvmeTierOptions o = Options(dir, capacity);
  o.epoch_aware = false;
  return o;
}

TEST(NvmeTier, StaysWithinItsBoundAfterWritingFiveTimesCapacity) {
  TempDir dir;
  const uint64_t capacity = 32 << 20;
  auto t = OpenStarted(FifoOptions(dir.path(), capacity));
  ASSERT_TRUE(t);
  const uint64_t n = 5 * capacity / kBlock;
  for (uint64_t i = 0; i < n; ++i) {
    t->Put(Key(i), MakeBlock(Bytes(i)));
    if (i % 64 == 0) t->Flush();
  }
  t->Flush();
  EXPECT_LE(DirBytes(dir.path()), capacity + 8192);  // + the LAYOUT file
  EXPECT_GT(t->Stats().evictions, 0u);
  EXPECT_LE(t->Stats().used_bytes, capacity);
  // The newest blocks are there and correct.
  for (uint64_t i = n - 10; i < n; ++i) EXPECT_EQ(Get(*t, i), Bytes(i)) << i;
}

TEST(NvmeTier, HundredThousandSmallBlocksUseAHandfulOfFiles) {
  TempDir dir;
  auto t = OpenStarted(FifoOptions(dir.path(), 256 << 20));
  ASSERT_TRUE(t);
  for (uint64_t i = 0; i < 100000; ++i) {
    t->Put(Key(i), MakeBlock(Pattern(100 + i % 900, i)));
    if (i % 4096 == 0) t->Flush();
  }
  t->Flush();
  size_t files = 0;
  for (auto& e : fs::directory_iterator(dir.path())) (void)e, ++files;
  EXPECT_LE(files, 20u);
  EXPECT_GE(t->Stats().blocks, 50000u);
  EXPECT_EQ(Get(*t, 99999), Pattern(100 + 99999 % 900, 99999));
}

TEST(NvmeTier, BlocksReadAgainSurviveAScan) {
  TempDir dir;
  const uint64_t capacity = 32 << 20;
  auto t = OpenStarted(Options(dir.path(), capacity));
  ASSERT_TRUE(t);
  for (uint64_t i = 0; i < 8; ++i) t->Put(Key(i), MakeBlock(Bytes(i)));
  t->Flush();
  const uint64_t scan = 3 * capacity / kBlock;
  for (uint64_t i = 1000; i < 1000 + scan; ++i) {
    if (i % 32 == 0) {
      t->Flush();
      for (uint64_t h = 0; h < 8; ++h)
        ASSERT_EQ(Get(*t, h), Bytes(h)) << "hot " << h << " at " << i;
    }
    t->Put(Key(i), MakeBlock(Bytes(i)));
  }
}

// Children write blocks and are killed at random moments; whatever the next open finds
// must be exactly right.
TEST(NvmeTier, SurvivesKillNineAtRandomPoints) {
  TempDir dir;
  std::mt19937 rng(7);
  for (int round = 0; round < 6; ++round) {
    pid_t pid = ::fork();
    ASSERT_GE(pid, 0);
    if (pid == 0) {
      auto t = NvmeTier::Open(Options(dir.path(), 16 << 20));
      if (!t.ok()) ::_exit(3);
      NvmeTier& tier = **t;
      tier.Start();
      for (uint64_t i = 0;; ++i) {
        uint64_t k = (round * 100000 + i) % 3000;
        tier.Put(Key(k), MakeBlock(Bytes(k)));
        if (i % 16 == 0) tier.Flush();
      }
    }
    ::usleep(50000 + rng() % 300000);
    ::kill(pid, SIGKILL);
    int status;
    ::waitpid(pid, &status, 0);
    ASSERT_TRUE(WIFSIGNALED(status)) << "child exited early with " << WEXITSTATUS(status);
    auto t = OpenTier(Options(dir.path(), 16 << 20));
    ASSERT_TRUE(t);
    int hits = 0;
    for (uint64_t k = 0; k < 3000; ++k) {
      std::string got = Get(*t, k);
      if (got.empty()) continue;
      ASSERT_EQ(got, Bytes(k)) << "round " << round << " block " << k;
      ++hits;
    }
    EXPECT_EQ(t->Stats().checksum_failures, 0u);
    EXPECT_GT(hits, 0) << "round " << round;
  }
}

TEST(BlockCacheWithNvme, SecondReadIsServedFromDiskWithRamDisabled) {
  TempDir dir;
  FakeStore store;
  const std::string data = Pattern(20 * kBlock + 17, 11);
  store.AddFile("f", data);
  auto t = OpenStarted(Options(dir.path(), 64 << 20));
  ASSERT_TRUE(t);
  BlockCache cache(store, {t.get()}, kBlock);
  ASSERT_TRUE(cache.Read(ObjectRef{"f", "v1"}, data.size(), 0, data.size()).ok());
  t->Flush();
  const uint64_t calls = store.read_calls();
  auto r = cache.Read(ObjectRef{"f", "v1"}, data.size(), 0, data.size());
  ASSERT_TRUE(r.ok());
  std::string got(r->size, '\0');
  r->CopyTo(got.data());
  EXPECT_EQ(got, data);
  EXPECT_EQ(store.read_calls(), calls);
  EXPECT_EQ(t->Stats().hits, 21u);
}

TEST(BlockCacheWithNvme, AReadOverManyBlocksReadsTheDiskInOneBatch) {
  TempDir dir;
  FakeStore store;
  const std::string data = Pattern(40 * kBlock + 17, 12);  // 41 blocks: more than one ring-full
  store.AddFile("f", data);
  auto t = OpenStarted(Options(dir.path(), 64 << 20));
  ASSERT_TRUE(t);
  BlockCache cache(store, {t.get()}, kBlock);
  const ObjectRef ref{"f", "v1"};
  auto read_all = [&](uint64_t offset, size_t length) {
    auto r = cache.Read(ref, data.size(), offset, length);
    EXPECT_TRUE(r.ok());
    std::string got(r.ok() ? r->size : 0, '\0');
    if (r.ok()) r->CopyTo(got.data());
    return got;
  };
  // Blocks 5..9 cached; then one read of everything: those five come from disk in one
  // batch, the other 36 from the store.
  ASSERT_EQ(read_all(5 * kBlock, 5 * kBlock), data.substr(5 * kBlock, 5 * kBlock));
  t->Flush();
  uint64_t batches = t->read_batches(), calls = store.read_calls();
  EXPECT_EQ(read_all(0, data.size()), data);
  EXPECT_EQ(t->read_batches() - batches, 1u);
  EXPECT_EQ(store.read_calls() - calls, 36u);
  // All 41 cached: one batch, no store read, the same bytes (also from an odd offset).
  t->Flush();
  batches = t->read_batches();
  calls = store.read_calls();
  EXPECT_EQ(read_all(0, data.size()), data);
  EXPECT_EQ(read_all(kBlock / 2 + 3, 3 * kBlock), data.substr(kBlock / 2 + 3, 3 * kBlock));
  EXPECT_EQ(t->read_batches() - batches, 2u);
  EXPECT_EQ(store.read_calls(), calls);
  EXPECT_EQ(t->Stats().hits, 5u + 41u + 4u);
}

TEST(NvmeTier, TooSmallACacheIsAClearError) {
  TempDir dir;
  auto opened = NvmeTier::Open(Options(dir.path(), 1 << 20, 16 << 20));
  ASSERT_FALSE(opened.ok());
  EXPECT_NE(opened.status().message().find("too small"), std::string::npos);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

// Shuffled epochs over a data set twice the cache: each later epoch finds about half of
// its blocks on disk, because a stable subset stays resident.
double EpochHitRatio(bool epoch_aware) {
  TempDir dir;
  const uint64_t capacity = 32 << 20;
  NvmeTierOptions o = Options(dir.path(), capacity);
  o.epoch_aware = epoch_aware;
  auto t = OpenStarted(o);
  if (!t) return 0;
  const uint64_t n = 2 * capacity / (kBlock + 4096);
  std::vector<uint64_t> order(n);
  for (uint64_t i = 0; i < n; ++i) order[i] = i;
  std::mt19937 rng(3);
  uint64_t hits = 0, lookups = 0;
  for (int epoch = 1; epoch <= 3; ++epoch) {
    std::shuffle(order.begin(), order.end(), rng);
    for (uint64_t k = 0; k < n; ++k) {
      uint64_t i = order[k];
      std::string got = Get(*t, i);
      if (epoch > 1) ++lookups;
      if (!got.empty()) {
        EXPECT_EQ(got, Bytes(i));
        if (epoch > 1) ++hits;
      } else {
        t->Put(Key(i), MakeBlock(Bytes(i)));
      }
      if (k % 16 == 0) t->Flush();
    }
  }
  return static_cast<double>(hits) / static_cast<double>(lookups);
}

TEST(NvmeTier, EpochAwareAdmissionKeepsAStableSubset) {
  double aware = EpochHitRatio(true);
  double fifo = EpochHitRatio(false);
  std::printf("epochs 2-3 hit ratio: epoch-aware %.2f, plain FIFO %.2f\n", aware, fifo);
  // The cache holds ~48% of the data set: nothing churned at the epoch boundaries.
  EXPECT_GE(aware, 0.44);
  EXPECT_GT(aware, fifo);
}

// Reads block i as a reader through the cache would: a miss is fetched and put.
bool ReadThrough(NvmeTier& t, uint64_t i) {
  std::string got = Get(t, i);
  if (!got.empty()) {
    EXPECT_EQ(got, Bytes(i));
    return true;
  }
  t.Put(Key(i), MakeBlock(Bytes(i)));
  return false;
}

TEST(NvmeTier, AOneTimeScanEvictsNothing) {
  TempDir dir;
  const uint64_t capacity = 32 << 20;
  auto t = OpenStarted(Options(dir.path(), capacity));
  ASSERT_TRUE(t);
  const uint64_t resident = capacity / (kBlock + 4096) * 3 / 4;
  for (uint64_t i = 0; i < resident; ++i) ReadThrough(*t, i);
  t->Flush();
  // A scan of four times the cache, every block new: fills the free quarter, then stops.
  for (uint64_t i = 100000; i < 100000 + 4 * resident; ++i) {
    ReadThrough(*t, i);
    if (i % 16 == 0) t->Flush();
  }
  t->Flush();
  EXPECT_EQ(t->Stats().evictions, 0u);
  EXPECT_GT(t->admission_refused(), 0u);
  for (uint64_t i = 0; i < resident; ++i) ASSERT_TRUE(Get(*t, i) == Bytes(i)) << i;
  EXPECT_LE(t->Stats().used_bytes, capacity);
}

TEST(NvmeTier, DataReadAgainReplacesAResidentSetThatStoppedHitting) {
  TempDir dir;
  const uint64_t capacity = 32 << 20;
  auto t = OpenStarted(Options(dir.path(), capacity));
  ASSERT_TRUE(t);
  const uint64_t blocks = capacity / (kBlock + 4096);
  for (uint64_t i = 0; i < blocks; ++i) ReadThrough(*t, i);  // data set A fills the cache
  t->Flush();
  // The job moves to data set B (half the cache), read in passes: the first pass is a
  // scan and evicts nothing, the second replaces A, the third hits.
  const uint64_t b0 = 50000, b = blocks / 2;
  uint64_t hits[3] = {0, 0, 0};
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t i = b0; i < b0 + b; ++i) {
      hits[pass] += ReadThrough(*t, i);
      if (i % 16 == 0) t->Flush();
    }
    t->Flush();
  }
  EXPECT_EQ(hits[0], 0u);
  // All of B but the first re-references of pass 2, which are refused until a sample of
  // them shows A no longer earns hits (1/16 of the cache's blocks).
  EXPECT_GE(hits[2], b * 3 / 4) << "pass 2 hits " << hits[1];
}

TEST(RecentKeys, RemembersItsHorizonAndForgetsBeyondIt) {
  RecentKeys keys(4096);
  auto key = [](uint64_t i) {
    return Hash128{i * 0x9E3779B97F4A7C15ULL, i * 0xC2B2AE3D27D4EB4FULL};
  };
  EXPECT_FALSE(keys.Insert(key(1)));
  EXPECT_TRUE(keys.Insert(key(1)));
  // Everything within the horizon is remembered, with no false positives among new keys.
  const uint64_t horizon = keys.remembered();
  for (uint64_t i = 2; i < horizon; ++i) ASSERT_FALSE(keys.Insert(key(i))) << i;
  for (uint64_t i = 1; i < horizon; ++i) ASSERT_TRUE(keys.Insert(key(i))) << i;
  // Two more horizons of other keys push them out.
  for (uint64_t i = 1000000; i < 1000000 + 2 * horizon; ++i) keys.Insert(key(i));
  uint64_t still = 0;
  for (uint64_t i = 1; i < horizon; ++i) still += keys.Insert(key(i));
  EXPECT_EQ(still, 0u);
}

void ReadBatchAndCheckEachOutcome() {
  TempDir dir;
  const std::string data = Pattern(1 << 20, 3);
  const std::string path = dir / "f";
  {
    int fd = ::open(path.c_str(), O_CREAT | O_WRONLY, 0600);
    ASSERT_GE(fd, 0);
    ASSERT_EQ(::write(fd, data.data(), data.size()), static_cast<ssize_t>(data.size()));
    ::close(fd);
  }
  int fd = ::open(path.c_str(), O_RDONLY);
  ASSERT_GE(fd, 0);
  // 70 ops (more than one ring-full): whole reads at scattered offsets, one crossing the
  // end of the file (short), one past it (0 bytes), one on a closed descriptor (EBADF).
  constexpr size_t kOps = 70;
  std::vector<std::string> bufs(kOps, std::string(4096, '\0'));
  std::vector<ReadOp> ops(kOps);
  for (size_t i = 0; i < kOps; ++i) {
    ops[i].fd = fd;
    ops[i].buf = bufs[i].data();
    ops[i].len = 4096;
    ops[i].offset = (i * 7919 * 13) % (data.size() - 4096);
  }
  ops[10].offset = data.size() - 1000;
  ops[11].offset = data.size() + 5;
  ops[12].fd = 1 << 20;
  UringReadBatch(ops);
  for (size_t i = 0; i < kOps; ++i) {
    if (i == 10) {
      ASSERT_TRUE(ops[i].result.ok());
      EXPECT_EQ(*ops[i].result, 1000u);
      EXPECT_EQ(bufs[i].substr(0, 1000), data.substr(data.size() - 1000));
    } else if (i == 11) {
      ASSERT_TRUE(ops[i].result.ok());
      EXPECT_EQ(*ops[i].result, 0u);
    } else if (i == 12) {
      ASSERT_FALSE(ops[i].result.ok());
      EXPECT_EQ(ops[i].result.status().error(), EBADF);
    } else {
      ASSERT_TRUE(ops[i].result.ok()) << i << ": " << ops[i].result.status().message();
      EXPECT_EQ(*ops[i].result, 4096u);
      EXPECT_EQ(bufs[i], data.substr(ops[i].offset, 4096)) << "op " << i;
    }
  }
  ::close(fd);
}

TEST(UringReadBatch, ReadsEveryOpAndReportsEachOnesOutcome) { ReadBatchAndCheckEachOutcome(); }

// The same batch where io_uring is not used (unavailable, or TIERFS_IO_URING=0): a thread
// sets its ring up on first use, so a new thread sees the setting.
TEST(UringReadBatch, WithoutIoUringPreadGivesTheSameOutcomes) {
  ASSERT_EQ(::setenv("TIERFS_IO_URING", "0", 1), 0);
  std::thread t(ReadBatchAndCheckEachOutcome);
  t.join();
  ::unsetenv("TIERFS_IO_URING");
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

TEST(NvmeTierShared, LeavesLargeObjectsAndGrowsOnlyWithinTheSharedBudget) {
  testing::TempDir dir;
  const uint64_t capacity = 64 * kBlock;
  DiskBudget budget(capacity);
  NvmeTierOptions o = Options(dir.path(), capacity);
  o.budget = &budget;
  o.skip_objects_from = 16 * kBlock;
  auto t = OpenStarted(o);
  ASSERT_TRUE(t);
  // Blocks of a large object are left to the object file tier.
  t->Put(MakeBlockKey(ObjectRef{"large", "v"}, 0, 16 * kBlock), MakeBlock(Bytes(0)));
  t->Flush();
  EXPECT_EQ(t->Get(MakeBlockKey(ObjectRef{"large", "v"}, 0, 16 * kBlock)), nullptr);
  EXPECT_EQ(budget.used(), 0u) << "a segment was made for nothing";
  // Another tier took all but one segment's room: the tier grows to one segment, quietly.
  ASSERT_TRUE(budget.TryReserve(capacity - t->segment_size()));
  for (uint64_t i = 0; i < 64; ++i) t->Put(Key(i), MakeBlock(Bytes(i)));
  t->Flush();
  EXPECT_EQ(budget.used(), capacity);
  EXPECT_EQ(t->Stats().errors, 0u);
  EXPECT_GT(t->Stats().blocks, 0u);
  // Full with one segment: first-time blocks do not evict (admission), so the first stay.
  EXPECT_TRUE(Get(*t, 0) == Bytes(0)) << "the blocks written first are not kept";
}

}  // namespace
}  // namespace tierfs
