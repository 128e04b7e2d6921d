// EpochAdmission without a disk: the tier's questions and answers, driven directly.
#include "tiers/admission.h"

#include <gtest/gtest.h>

namespace tierfs {
namespace {

Hash128 Key(uint64_t i) { return Hash128{i * 0x9E3779B97F4A7C15ULL + 1, i}; }

TEST(EpochAdmission, WithoutEpochAwarenessEveryBlockMayEvict) {
  EpochAdmission a(1000, /*epoch_aware=*/false, 0.10);
  EXPECT_TRUE(a.MayEvict(false));
  EXPECT_TRUE(a.MayEvict(true));
  EXPECT_EQ(a.refused(), 0u);
}

TEST(EpochAdmission, AFirstFetchNeverEvicts) {
  EpochAdmission a(1000, true, 0.10);
  for (uint64_t i = 0; i < 500; ++i) {
    EXPECT_FALSE(a.NoteFetch(Key(i)));  // a one-time scan: nothing seen before
    EXPECT_FALSE(a.MayEvict(false));
  }
  EXPECT_EQ(a.refused(), 500u);
}

TEST(EpochAdmission, RefetchesEvictOnlyWhileTheCacheIsNotEarningHits) {
  const uint64_t blocks = 1000;  // window 250 lookups, sample 62
  EpochAdmission a(blocks, true, 0.10);
  for (uint64_t i = 0; i < 2000; ++i) a.NoteFetch(Key(i));  // epoch 1: data set 2x the cache
  // Before any re-referenced lookup the cache counts as earning: epoch 2's first refetch
  // must not open admission.
  EXPECT_TRUE(a.EarningHits());
  EXPECT_FALSE(a.MayEvict(true));
  // Epoch 2 misses everything it fetched before (NoteFetch counts each as a re-referenced
  // miss): not earning, so refetched blocks may evict.
  for (uint64_t i = 0; i < 300; ++i) EXPECT_TRUE(a.NoteFetch(Key(i)));
  EXPECT_FALSE(a.EarningHits());
  EXPECT_TRUE(a.MayEvict(true));
  EXPECT_FALSE(a.MayEvict(false)) << "a block never fetched before still evicts nothing";
  // Then the resident subset starts hitting (here every third lookup): earning again, and
  // admission closes to keep it.
  for (int i = 0; i < 300; ++i) a.CountLookup(i % 3 == 0);
  EXPECT_TRUE(a.EarningHits());
  EXPECT_FALSE(a.MayEvict(true));
}

TEST(EpochAdmission, TheCurrentWindowCountsOnceItHasAFairSample) {
  EpochAdmission a(1000, true, 0.10);                  // sample 62
  for (int i = 0; i < 250; ++i) a.CountLookup(false);  // a complete window: ratio 0
  EXPECT_FALSE(a.EarningHits());
  for (int i = 0; i < 30; ++i) a.CountLookup(true);  // too few to trust yet
  EXPECT_FALSE(a.EarningHits());
  for (int i = 0; i < 40; ++i) a.CountLookup(true);  // 70 lookups, all hits
  EXPECT_TRUE(a.EarningHits());
}

}  // namespace
}  // namespace tierfs
