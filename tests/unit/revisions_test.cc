// IndexRevisions without a mount: a published index followed through a pointer in a
// directory (bad revisions refused, concurrent refreshes downloading once, a restart
// downloading nothing), and a local index walked again on refresh.
#include "metadata/revisions.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/clock.h"
#include "metadata/artifact.h"
#include "test_util.h"
#include "ufs/fake_store.h"

namespace tierfs {
namespace {
namespace fs = std::filesystem;
using testing::TempDir;

// Builds an index of `store` and publishes it in `pub` (as `tierfs index publish` does).
std::string Publish(Store& store, const std::string& work, const std::string& pub) {
  static int n = 0;
  const std::string idx = work + "/idx" + std::to_string(++n);
  auto meta = BuildIndex(store, idx, BuildOptions{});
  EXPECT_TRUE(meta.ok());
  fs::create_directories(pub);
  auto packed = PackIndex(idx, pub);
  EXPECT_TRUE(packed.ok()) << packed.status().message();
  IndexPointer p;
  p.sha256 = packed->sha256;
  p.size = packed->size;
  p.source = meta->source;
  p.built_at = meta->built_at;
  p.published_at = UnixNow();
  p.files = meta->files;
  EXPECT_TRUE(WriteFileAtomically(pub + "/" + kPointerName, EncodePointer(p)).ok());
  return packed->sha256;
}

bool Has(const std::shared_ptr<Index>& index, const std::string& name) {
  return index->Lookup(kRootIno, name).ok();
}

uint64_t Checks(IndexRevisions& r, const std::string& result) {
  auto j = r.StatusJson();
  return j["checks"][result].get<uint64_t>();
}

TEST(IndexRevisions, FollowsAPublishedPointerAndKeepsItsRevisionThroughBadOnes) {
  FakeStore store;
  store.AddFile("a", "1", "v1");
  TempDir dir;
  const std::string pub = dir / "pub";
  const std::string rev1 = Publish(store, dir.path(), pub);
  RevisionOptions o;
  o.cache_dir = dir / "cache";
  o.index_url = pub;
  auto opened = IndexRevisions::Open(o, store, /*offline=*/false);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  IndexRevisions& r = **opened;
  EXPECT_TRUE(Has(r.Current(), "a"));
  std::atomic<int> switches{0};
  r.Start([&](const std::shared_ptr<Index>&) -> Result<DiffCounts> {
    ++switches;
    return DiffCounts{};
  });

  auto same = r.RefreshNow();
  ASSERT_TRUE(same.ok()) << same.status().message();
  EXPECT_EQ(switches, 0);

  store.AddFile("b", "2", "v2");
  Publish(store, dir.path(), pub);
  ASSERT_TRUE(r.RefreshNow().ok());
  EXPECT_EQ(switches, 1);
  EXPECT_TRUE(Has(r.Current(), "b"));

  // A pointer naming an artifact that is not there, then one that is not JSON: the mount
  // keeps revision 2 and counts each failed check.
  IndexPointer missing;
  missing.sha256 = std::string(64, 'a');
  missing.size = 10;
  missing.source = "fake://";
  ASSERT_TRUE(WriteFileAtomically(pub + "/latest", EncodePointer(missing)).ok());
  (void)r.RefreshNow();
  ASSERT_TRUE(WriteFileAtomically(pub + "/latest", "garbage {").ok());
  (void)r.RefreshNow();
  EXPECT_EQ(switches, 1);
  EXPECT_TRUE(Has(r.Current(), "b"));
  EXPECT_EQ(Checks(r, "failed"), 2u);

  // Four refreshes at once find revision 3: it is downloaded and switched to once.
  store.AddFile("c", "3", "v3");
  const std::string rev3 = Publish(store, dir.path(), pub);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) threads.emplace_back([&] { (void)r.RefreshNow(); });
  for (auto& t : threads) t.join();
  EXPECT_EQ(switches, 2);
  EXPECT_TRUE(Has(r.Current(), "c"));
  r.Stop();
  opened->reset();

  // A restart on the revision it has unpacked needs nothing but the pointer.
  for (const auto& e : fs::directory_iterator(pub)) {
    if (e.path().extension() == kArtifactSuffix) fs::remove(e.path());
  }
  auto again = IndexRevisions::Open(o, store, false);
  ASSERT_TRUE(again.ok()) << again.status().message();
  EXPECT_TRUE(Has((*again)->Current(), "c"));
  EXPECT_NE(rev1, rev3);
}

TEST(IndexRevisions, ALocalIndexIsWalkedAgainAndAnUnchangedWalkIsDropped) {
  FakeStore store;
  store.AddFile("a", "1", "v1");
  TempDir dir;
  RevisionOptions o;
  o.cache_dir = dir / "cache";
  auto opened = IndexRevisions::Open(o, store, false);
  ASSERT_TRUE(opened.ok()) << opened.status().message();
  IndexRevisions& r = **opened;
  std::atomic<int> switches{0};
  r.Start([&](const std::shared_ptr<Index>&) -> Result<DiffCounts> {
    ++switches;
    return DiffCounts{};
  });
  ASSERT_TRUE(r.RefreshNow().ok());
  EXPECT_EQ(switches, 0);
  EXPECT_EQ(Checks(r, "unchanged"), 1u);
  store.AddFile("b", "2", "v2");
  ASSERT_TRUE(r.RefreshNow().ok());
  EXPECT_EQ(switches, 1);
  EXPECT_TRUE(Has(r.Current(), "b"));
  r.Stop();
}

}  // namespace
}  // namespace tierfs
