#include "metadata/index.h"

#include <gtest/gtest.h>

#include <chrono>
#include <set>
#include <thread>

#include "common/blocking.h"
#include "common/sha256.h"
#include "metadata/artifact.h"
#include "metadata/index_diff.h"
#include "test_util.h"
#include "ufs/fake_store.h"
#include "ufs/posix_store.h"

namespace tierfs {
namespace {
using testing::TempDir;

std::unique_ptr<Index> BuildAndOpen(Store& store, const std::string& path) {
  auto meta = BuildIndex(store, path, BuildOptions{});
  EXPECT_TRUE(meta.ok()) << meta.status().message();
  auto index = OpenIndex(path);
  EXPECT_TRUE(index.ok()) << index.status().message();
  return index.ok() ? std::move(*index) : nullptr;
}

std::vector<std::string> Names(Index& index, uint64_t ino, uint64_t from = 0) {
  std::vector<std::string> names;
  Status s = index.ReadDir(ino, from, [&](std::string_view name, const Entry&, uint64_t) {
    names.emplace_back(name);
    return true;
  });
  EXPECT_TRUE(s.ok());
  return names;
}

TEST(Index, LookupGetAttrAndMeta) {
  FakeStore store;
  store.AddFile("a/b/c.txt", "hello", "etag-1");
  store.AddSymlink("a/link", "b/c.txt");
  TempDir dir;
  auto index = BuildAndOpen(store, dir / "idx");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->Meta().files, 1u);
  EXPECT_EQ(index->Meta().dirs, 3u);  // root, a, a/b
  EXPECT_EQ(index->Meta().symlinks, 1u);
  EXPECT_EQ(index->Meta().bytes, 5u);
  EXPECT_EQ(index->Meta().source, "fake://");

  auto a = index->Lookup(kRootIno, "a");
  ASSERT_TRUE(a.ok());
  EXPECT_TRUE(a->is_dir());
  EXPECT_EQ(a->parent, kRootIno);
  auto b = index->Lookup(a->ino, "b");
  ASSERT_TRUE(b.ok());
  auto c = index->Lookup(b->ino, "c.txt");
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(c->size, 5u);
  EXPECT_EQ(c->version, "etag-1");
  EXPECT_EQ(c->key, "a/b/c.txt");
  EXPECT_EQ(c->parent, b->ino);
  auto link = index->Lookup(a->ino, "link");
  ASSERT_TRUE(link.ok());
  EXPECT_EQ(link->type, ObjectType::kSymlink);
  EXPECT_EQ(link->link_target, "b/c.txt");

  auto again = index->GetAttr(c->ino);
  ASSERT_TRUE(again.ok());
  EXPECT_EQ(again->key, "a/b/c.txt");
  EXPECT_EQ(index->Lookup(a->ino, "missing").status().error(), ENOENT);
  EXPECT_EQ(index->GetAttr(424242).status().error(), ENOENT);
  auto root = index->GetAttr(kRootIno);
  ASSERT_TRUE(root.ok());
  EXPECT_TRUE(root->is_dir());
}

TEST(Index, ReadDirIsOrderedAndResumableOver10000Entries) {
  FakeStore store;
  std::set<std::string> expected;
  for (int i = 0; i < 10000; ++i) {
    std::string name = "file-" + std::to_string(i * 7919 % 10007);
    expected.insert(name);
    store.AddFile("big/" + name, "x");
  }
  TempDir dir;
  auto index = BuildAndOpen(store, dir / "idx");
  ASSERT_NE(index, nullptr);
  auto big = index->Lookup(kRootIno, "big");
  ASSERT_TRUE(big.ok());
  std::vector<std::string> all = Names(*index, big->ino);
  ASSERT_EQ(all.size(), 10000u);
  EXPECT_TRUE(std::is_sorted(all.begin(), all.end()));
  EXPECT_EQ(std::set<std::string>(all.begin(), all.end()), expected);

  // Page through in chunks of 333 the way the kernel does, resuming from positions.
  std::vector<std::string> paged;
  uint64_t pos = 0;
  while (true) {
    size_t got = 0;
    uint64_t next = pos;
    Status s = index->ReadDir(big->ino, pos, [&](std::string_view name, const Entry&, uint64_t p) {
      if (got == 333) return false;
      paged.emplace_back(name);
      next = p + 1;
      ++got;
      return true;
    });
    ASSERT_TRUE(s.ok());
    if (got == 0) break;
    pos = next;
  }
  EXPECT_EQ(paged, all);
}

// The FUSE loop's rule (common/blocking.h): a read that may wait for the disk says so
// first. An index read that misses the in-memory cache hints once; the same read again,
// now from memory, does not.
TEST(Index, ReadsThatWaitForTheDiskSayItFirst) {
  FakeStore store;
  for (int i = 0; i < 3000; ++i) store.AddFile("d/f" + std::to_string(i), "x");
  TempDir dir;
  auto index = BuildAndOpen(store, dir / "idx");
  ASSERT_NE(index, nullptr);
  static thread_local int hints = 0;
  hints = 0;
  SetBlockingHook([](void*) { ++hints; }, nullptr);

  auto d = index->Lookup(kRootIno, "d");  // cold: from the disk
  ASSERT_TRUE(d.ok());
  EXPECT_GE(hints, 1);
  EXPECT_EQ(static_cast<uint64_t>(hints), index->DiskReads());
  ASSERT_TRUE(index->GetAttr(d->ino).ok());  // another block: may hint once more
  const int after_cold = hints;
  ASSERT_TRUE(index->Lookup(kRootIno, "d").ok());  // warm: from memory
  ASSERT_TRUE(index->GetAttr(d->ino).ok());
  EXPECT_EQ(hints, after_cold) << "a read from memory handed the device over";

  // A listing that needs the disk part-way resumes there after the hint, losing nothing.
  EXPECT_EQ(Names(*index, d->ino).size(), 3000u);
  const int after_list = hints;
  EXPECT_EQ(Names(*index, d->ino).size(), 3000u);
  EXPECT_EQ(hints, after_list) << "a listing from memory handed the device over";
  SetBlockingHook(nullptr, nullptr);
}

TEST(Index, WarmupLoadsTheIndexIntoMemoryAndCanBeCutShort) {
  FakeStore store;
  for (int i = 0; i < 20000; ++i)
    store.AddFile("d" + std::to_string(i % 20) + "/f" + std::to_string(i), "x");
  TempDir dir;
  ASSERT_TRUE(BuildIndex(store, dir / "idx", BuildOptions{}).ok());
  {
    auto index = OpenIndex(dir / "idx");
    ASSERT_TRUE(index.ok());
    const uint64_t before = (*index)->CachedBytes();
    (*index)->StartWarmup();
    // Lookups work while it runs.
    auto d = (*index)->Lookup(kRootIno, "d7");
    ASSERT_TRUE(d.ok());
    EXPECT_TRUE((*index)->Lookup(d->ino, "f7").ok());
    uint64_t cached = 0;
    // (The block cache is the process's: `before` holds what earlier tests left there.)
    for (int i = 0; i < 500 && cached <= before + (256u << 10); ++i) {
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
      cached = (*index)->CachedBytes();
    }
    // 20,000 files are more than 256 KiB of index records; all of it fits in the cache.
    EXPECT_GT(cached, before + (256u << 10));
  }
  // Destroyed while warming up: stops and joins (TSan/ASan would flag anything else).
  auto index = OpenIndex(dir / "idx");
  ASSERT_TRUE(index.ok());
  (*index)->StartWarmup();
  index->reset();
}

TEST(Index, InodesAreStableAcrossRebuilds) {
  TempDir src, dir;
  testing::WriteFile(src / "x/y/z.bin", "data");
  testing::WriteFile(src / "x/w.bin", "data");
  auto store = PosixStore::Open(src.path());
  ASSERT_TRUE(store.ok());
  auto first = BuildAndOpen(**store, dir / "one");
  auto second = BuildAndOpen(**store, dir / "two");
  ASSERT_TRUE(first && second);
  auto x1 = first->Lookup(kRootIno, "x"), x2 = second->Lookup(kRootIno, "x");
  ASSERT_TRUE(x1.ok() && x2.ok());
  EXPECT_EQ(x1->ino, x2->ino);
  EXPECT_EQ(x1->ino, InodeForKey("x"));
  auto w1 = first->Lookup(x1->ino, "w.bin"), w2 = second->Lookup(x2->ino, "w.bin");
  ASSERT_TRUE(w1.ok() && w2.ok());
  EXPECT_EQ(w1->ino, w2->ino);
}

TEST(Index, ChangedFilesGetNewInodesUnchangedKeepTheirs) {
  FakeStore store;
  store.AddFile("same", "1", "v1");
  store.AddFile("changed", "1", "v1");
  TempDir dir;
  auto one = BuildAndOpen(store, dir / "one");
  store.ReplaceFile("changed", "22", "v2");
  auto two = BuildAndOpen(store, dir / "two");
  ASSERT_TRUE(one && two);
  EXPECT_EQ(one->Lookup(kRootIno, "same")->ino, two->Lookup(kRootIno, "same")->ino);
  EXPECT_NE(one->Lookup(kRootIno, "changed")->ino, two->Lookup(kRootIno, "changed")->ino);
}

TEST(Index, DiffNamesEveryChangeOnce) {
  FakeStore store;
  store.AddFile("d/keep", "k");
  store.AddFile("d/change", "c", "v1");
  store.AddFile("d/remove", "r");
  store.AddFile("gone/x", "x");
  TempDir dir;
  auto one = BuildAndOpen(store, dir / "one");
  store.ReplaceFile("d/change", "cc", "v2");
  store.Remove("d/remove");
  store.Remove("gone/x");
  store.Remove("gone");
  store.AddFile("d/add", "a");
  store.AddFile("new/y", "y");
  auto two = BuildAndOpen(store, dir / "two");
  ASSERT_TRUE(one && two);
  std::set<std::string> seen;
  auto counts = DiffIndexes(*one, *two, [&](const IndexChange& c) {
    seen.insert(std::to_string(static_cast<int>(c.kind)) + ":" + c.name);
  });
  ASSERT_TRUE(counts.ok()) << counts.status().message();
  EXPECT_EQ(counts->added, 2u);     // d/add, new
  EXPECT_EQ(counts->removed, 2u);   // d/remove, gone (not gone/x)
  EXPECT_EQ(counts->replaced, 1u);  // d/change
  EXPECT_TRUE(seen.count("0:add") && seen.count("0:new") && seen.count("1:remove") &&
              seen.count("1:gone") && seen.count("2:change"));
  EXPECT_FALSE(seen.count("1:x"));
  auto none = DiffIndexes(*two, *two, [](const IndexChange&) {});
  ASSERT_TRUE(none.ok());
  EXPECT_EQ(none->total(), 0u);
}

TEST(Artifact, PacksUnpacksAndRefusesCorruption) {
  FakeStore store;
  for (int i = 0; i < 50; ++i) store.AddFile("f" + std::to_string(i), "x");
  TempDir dir;
  ASSERT_TRUE(BuildIndex(store, dir / "idx", BuildOptions{}).ok());
  std::filesystem::create_directories(dir / "pub");
  auto packed = PackIndex(dir / "idx", dir / "pub");
  ASSERT_TRUE(packed.ok()) << packed.status().message();
  EXPECT_FALSE(packed->existed);
  EXPECT_EQ(*Sha256OfFile(packed->path), packed->sha256);
  auto again = PackIndex(dir / "idx", dir / "pub");  // same index: same artifact
  ASSERT_TRUE(again.ok());
  EXPECT_TRUE(again->existed);
  EXPECT_EQ(again->sha256, packed->sha256);

  ASSERT_TRUE(UnpackIndex(packed->path, dir / "out").ok());
  auto index = OpenIndex(dir / "out");
  ASSERT_TRUE(index.ok());
  EXPECT_EQ((*index)->Meta().files, 50u);

  // Cut short, or a name that would leave the directory: refused, nothing left behind.
  std::string bytes = testing::ReadFile(packed->path);
  testing::WriteFile(dir / "short", bytes.substr(0, bytes.size() / 2));
  EXPECT_FALSE(UnpackIndex(dir / "short", dir / "out2").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "out2"));
  EXPECT_FALSE(std::filesystem::exists(dir / "out2.unpacking"));
  std::string evil = bytes;
  const size_t at = evil.find("CURRENT");
  ASSERT_NE(at, std::string::npos);
  evil.replace(at, 7, "../CURR");
  testing::WriteFile(dir / "evil", evil);
  EXPECT_FALSE(UnpackIndex(dir / "evil", dir / "out3").ok());
  EXPECT_FALSE(std::filesystem::exists(dir / "CURR"));

  IndexPointer p;
  p.sha256 = packed->sha256;
  p.size = packed->size;
  p.source = "s3://b/p";
  auto decoded = DecodePointer(EncodePointer(p));
  ASSERT_TRUE(decoded.ok());
  EXPECT_EQ(decoded->sha256, p.sha256);
  EXPECT_EQ(decoded->source, p.source);
  EXPECT_FALSE(DecodePointer("garbage").ok());
  EXPECT_FALSE(DecodePointer(R"({"tierfs_index":1,"sha256":"../x","size":1,"source":"s",)"
                             R"("artifact":"../x.tierfs-index"})")
                   .ok());
}

TEST(Index, RebuildReplacesAnIndexButNeverOtherData) {
  FakeStore store;
  store.AddFile("f", "1");
  TempDir dir;
  ASSERT_TRUE(BuildIndex(store, dir / "idx", BuildOptions{}).ok());
  store.AddFile("g", "22");
  auto meta = BuildIndex(store, dir / "idx", BuildOptions{});
  ASSERT_TRUE(meta.ok());
  EXPECT_EQ(meta->files, 2u);
  testing::WriteFile(dir / "precious/data.txt", "keep me");
  auto refused = BuildIndex(store, dir / "precious", BuildOptions{});
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("not a tierfs index"), std::string::npos);
  EXPECT_TRUE(std::filesystem::exists(dir / "precious/data.txt"));
}

TEST(Index, UnsafeNamesAndEscapingSymlinksAreSkipped) {
  FakeStore store;
  store.AddFile("ok", "1");
  store.AddFile("d/fine", "1");
  store.AddSymlink("d/up-one", "../ok");      // stays inside: kept
  store.AddSymlink("d/escape", "../../etc");  // leaves the tree: skipped
  store.AddSymlink("abs", "/etc/passwd");     // absolute: skipped
  TempDir dir;
  auto index = BuildAndOpen(store, dir / "idx");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(index->Meta().skipped, 2u);
  auto d = index->Lookup(kRootIno, "d");
  ASSERT_TRUE(d.ok());
  EXPECT_TRUE(index->Lookup(d->ino, "up-one").ok());
  EXPECT_FALSE(index->Lookup(d->ino, "escape").ok());
  EXPECT_FALSE(index->Lookup(kRootIno, "abs").ok());
}

// A store whose listing contains hostile names.
class HostileStore : public FakeStore {
 public:
  Status List(const std::string& key, const ListSink& sink) override {
    if (!key.empty()) return FakeStore::List(key, sink);
    for (std::string name :
         {std::string(".."), std::string("."), std::string("a/b"), std::string("nul\0byte", 8),
          std::string(""), std::string(300, 'n'), std::string("good")}) {
      ObjectInfo info;
      info.name = name;
      info.type = ObjectType::kFile;
      info.size = 1;
      TIERFS_RETURN_IF_ERROR(sink(std::move(info)));
    }
    return Status::Ok();
  }
};

TEST(Index, HostileNamesNeverReachTheTree) {
  HostileStore store;
  TempDir dir;
  auto index = BuildAndOpen(store, dir / "idx");
  ASSERT_NE(index, nullptr);
  EXPECT_EQ(Names(*index, kRootIno), std::vector<std::string>{"good"});
  EXPECT_EQ(index->Meta().skipped, 6u);
}

TEST(Index, BadIndexesAreClearErrors) {
  TempDir dir;
  auto missing = OpenIndex(dir / "nope");
  ASSERT_FALSE(missing.ok());
  EXPECT_NE(missing.status().message().find("cannot open index"), std::string::npos);
  testing::WriteFile(dir / "junk/CURRENT", "garbage\n");
  EXPECT_FALSE(OpenIndex(dir / "junk").ok());
}

class FailingListStore : public FakeStore {
 public:
  Status List(const std::string& key, const ListSink& sink) override {
    if (key == "a") return Status::Io("listing broke");
    return FakeStore::List(key, sink);
  }
};

TEST(Index, ListingFailureLeavesNoIndex) {
  FailingListStore store;
  store.AddFile("a/b", "1");
  TempDir dir;
  auto meta = BuildIndex(store, dir / "idx", BuildOptions{});
  ASSERT_FALSE(meta.ok());
  EXPECT_NE(meta.status().message().find("listing broke"), std::string::npos);
  EXPECT_FALSE(std::filesystem::exists(dir / "idx"));
  EXPECT_FALSE(std::filesystem::exists(dir / "idx.building"));
}

}  // namespace
}  // namespace tierfs
