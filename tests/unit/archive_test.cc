#include "metadata/archive.h"

#include <gtest/gtest.h>

#include <map>

#include "archive_builders.h"
#include "metadata/index.h"
#include "test_util.h"
#include "ufs/fake_store.h"

namespace tierfs {
namespace {
using testing::Pattern;
using testing::TarBuilder;
using testing::ZipBuilder;

// Reads of an in-memory archive, counted.
struct Source {
  std::string bytes;
  int reads = 0;
  RangeReader reader() {
    return [this](uint64_t offset, size_t length, char* buf) -> Result<size_t> {
      ++reads;
      if (offset >= bytes.size()) return size_t{0};
      const size_t n = std::min<size_t>(length, bytes.size() - offset);
      std::memcpy(buf, bytes.data() + offset, n);
      return n;
    };
  }
};

std::map<std::string, ArchiveMember> ByPath(const ArchiveListing& l) {
  std::map<std::string, ArchiveMember> m;
  for (const ArchiveMember& x : l.members) m[x.path] = x;
  return m;
}

// The bytes a reader of a listed tar member gets.
std::string TarBytes(const std::string& archive, const ArchiveMember& m) {
  return archive.substr(m.offset, m.size);
}

TEST(Tar, ListsFilesDirsLinksLongNamesAndPax) {
  const std::string big = Pattern(300000, 3);
  const std::string long_name = "deep/" + std::string(150, 'n') + ".jpg";
  TarBuilder t;
  t.Add("./", "", '5')
      .Add("./a/", "", '5')
      .Add("./a/one.txt", "one")
      .Add("./a/big.bin", big)
      .Add("a/link", "", '2', "one.txt")
      .Add("a/hard", "", '1', "./a/big.bin")
      .Add("././@LongLink", long_name + std::string(1, '\0'), 'L')
      .Add("truncated-name", "long")
      .Pax("path", "pax/ü name.txt")
      .Add("ignored", "pax")
      .Add("file.txt", "prefixed", '0', "", "under/prefix");
  Source src{t.Finish()};
  auto l = ListTar(src.reader(), src.bytes.size());
  ASSERT_TRUE(l.ok()) << l.status().message();
  EXPECT_EQ(l->skipped, 0u) << l->problem;
  auto m = ByPath(*l);
  ASSERT_EQ(m.size(), 8u);
  EXPECT_EQ(m["a"].type, ObjectType::kDirectory);
  EXPECT_EQ(TarBytes(src.bytes, m["a/one.txt"]), "one");
  EXPECT_EQ(TarBytes(src.bytes, m["a/big.bin"]), big);
  EXPECT_EQ(m["a/link"].type, ObjectType::kSymlink);
  EXPECT_EQ(m["a/link"].link_target, "one.txt");
  EXPECT_EQ(TarBytes(src.bytes, m["a/hard"]), big);  // a hard link reads its target's bytes
  EXPECT_EQ(TarBytes(src.bytes, m[long_name]), "long");
  EXPECT_EQ(TarBytes(src.bytes, m["pax/ü name.txt"]), "pax");
  EXPECT_EQ(TarBytes(src.bytes, m["under/prefix/file.txt"]), "prefixed");
  EXPECT_EQ(m["a/one.txt"].mode, 0644u);
  EXPECT_EQ(m["a/one.txt"].mtime_ns, 1700000000LL * 1000000000);
  EXPECT_LE(src.reads, 1);  // all headers in one window
}

TEST(Tar, RefusesNamesAndLinksThatLeaveTheArchive) {
  TarBuilder t;
  t.Add("../evil", "x")
      .Add("/etc/passwd", "x")
      .Add("a/../../b", "x")
      .Add("up", "", '2', "../../outside")
      .Add("abs", "", '2', "/etc/shadow")
      .Add("hard", "", '1', "missing")
      .Add("dev", "", '3')
      .Add("dup", "first")
      .Add("dup", "second")
      .Add("clash", "file")
      .Add("clash/inner", "x")
      .Add("ok", "fine");
  Source src{t.Finish()};
  auto l = ListTar(src.reader(), src.bytes.size());
  ASSERT_TRUE(l.ok()) << l.status().message();
  auto m = ByPath(*l);
  EXPECT_EQ(m.size(), 3u);  // dup (the second), clash/inner, ok
  EXPECT_EQ(TarBytes(src.bytes, m["dup"]), "second");
  EXPECT_TRUE(m.count("clash/inner"));
  EXPECT_TRUE(m.count("ok"));
  EXPECT_EQ(l->skipped, 9u);
  EXPECT_NE(l->problem.find(".."), std::string::npos) << l->problem;
  for (const auto& [path, member] : m) {
    EXPECT_EQ(path.find(".."), std::string::npos);
    EXPECT_NE(path[0], '/');
  }
}

TEST(Tar, TruncatedArchiveKeepsWhatIsWholeAndNeverReadsPastTheEnd) {
  TarBuilder t;
  t.Add("a", Pattern(5000, 1)).Add("b", Pattern(5000, 2));
  const std::string whole = t.Finish();
  for (size_t cut : {whole.size() - 1024, size_t{512 + 5120 + 512 + 100}, size_t{600}, size_t{0}}) {
    Source src{whole.substr(0, cut)};
    auto l = ListTar(src.reader(), src.bytes.size());
    if (!l.ok()) continue;
    for (const ArchiveMember& m : l->members) EXPECT_LE(m.offset + m.size, cut);
    if (cut < whole.size() - 1024) {
      EXPECT_GT(l->skipped, 0u) << cut;
    }
  }
  Source garbage{std::string(4096, 'x')};
  EXPECT_FALSE(ListTar(garbage.reader(), garbage.bytes.size()).ok());
}

TEST(Tar, SkipsTheDataOfLargeMembersInsteadOfReadingIt) {
  TarBuilder t;
  t.Add("huge", std::string(20 << 20, 'z')).Add("after", "x");
  Source src{t.Finish()};
  auto l = ListTar(src.reader(), src.bytes.size());
  ASSERT_TRUE(l.ok());
  EXPECT_EQ(l->members.size(), 2u);
  EXPECT_EQ(src.reads, 2);  // the first header's window, then the one after 20 MiB
}

TEST(Zip, ListsStoredDeflatedZip64AndDirectories) {
  const std::string text(100000, 'a');
  ZipBuilder z;
  z.Add("dir/", "", {.mode = 040755})
      .Add("dir/stored.bin", Pattern(70000, 5))
      .Add("dir/text.txt", text, {.deflate = true})
      .Add("big64.bin", Pattern(1000, 6), {.zip64 = true, .local_extra = std::string(20, 'e')})
      .Add("secret", "x", {.encrypted = true})
      .Add("bz2", "x", {.method = 12});
  for (bool zip64_end : {false, true}) {
    Source src{z.Finish(-1, zip64_end)};
    auto l = ListZip(src.reader(), src.bytes.size());
    ASSERT_TRUE(l.ok()) << l.status().message();
    EXPECT_EQ(l->skipped, 0u) << l->problem;
    EXPECT_EQ(src.reads, 1);  // the tail holds the whole directory
    auto m = ByPath(*l);
    ASSERT_EQ(m.size(), 6u);
    EXPECT_EQ(m["dir"].type, ObjectType::kDirectory);
    EXPECT_EQ(m["dir"].mode, 0755u);
    EXPECT_EQ(m["dir/text.txt"].method, kZipDeflated);
    EXPECT_EQ(m["dir/text.txt"].size, text.size());
    EXPECT_TRUE(m["secret"].encrypted);
    EXPECT_EQ(m["bz2"].method, 12);
    // The data offset comes from the local header (its extra field differs here).
    for (const char* name : {"dir/stored.bin", "big64.bin"}) {
      const ArchiveMember& x = m[name];
      auto data = ResolveZipData(std::string_view(src.bytes).substr(x.offset, 30), x.offset,
                                 x.packed_size, src.bytes.size());
      ASSERT_TRUE(data.ok()) << data.status().message();
      EXPECT_EQ(src.bytes.substr(*data, x.size),
                std::string(name) == "big64.bin" ? Pattern(1000, 6) : Pattern(70000, 5));
    }
    const ArchiveMember& t = m["dir/text.txt"];
    auto data = ResolveZipData(std::string_view(src.bytes).substr(t.offset, 30), t.offset,
                               t.packed_size, src.bytes.size());
    ASSERT_TRUE(data.ok());
    iovec in{src.bytes.data() + *data, static_cast<size_t>(t.packed_size)};
    std::string out(t.size, '\0');
    ASSERT_TRUE(InflateRange({&in, 1}, t.size, t.crc32, 0, out).ok());
    EXPECT_EQ(out, text);
    std::string part(10, '\0');
    ASSERT_TRUE(InflateRange({&in, 1}, t.size, t.crc32, 500, part).ok());
    EXPECT_EQ(part, text.substr(500, 10));
    EXPECT_FALSE(InflateRange({&in, 1}, t.size, t.crc32 ^ 1, 0, out).ok());  // CRC
    iovec cut{in.iov_base, in.iov_len / 2};
    EXPECT_FALSE(InflateRange({&cut, 1}, t.size, t.crc32, 0, out).ok());  // ends early
  }
}

TEST(Zip, RefusesBombsAndNamesThatLeaveTheArchive) {
  ZipBuilder z;
  z.Add("../up", "x").Add(std::string("nul\0name", 8), "x").Add("/abs", "x").Add("fine", "ok");
  Source src{z.Finish()};
  auto l = ListZip(src.reader(), src.bytes.size());
  ASSERT_TRUE(l.ok());
  ASSERT_EQ(l->members.size(), 1u);
  EXPECT_EQ(l->members[0].path, "fine");
  EXPECT_EQ(l->skipped, 3u);

  // A directory claiming more members than it can hold is refused before any allocation.
  Source liar{ZipBuilder().Add("a", "x").Finish(60000)};
  auto refused = ListZip(liar.reader(), liar.bytes.size());
  ASSERT_FALSE(refused.ok());
  EXPECT_NE(refused.status().message().find("claims"), std::string::npos);

  // A member claiming to inflate 1 GB from a few bytes is skipped.
  std::string bomb =
      ZipBuilder().Add("bomb", std::string(2000000, '\0'), {.deflate = true}).Finish();
  const size_t usize_at = bomb.find(std::string("\x50\x4b\x01\x02", 4)) + 24;
  bomb[usize_at + 3] = 0x7f;  // 2 GB
  Source b{bomb};
  auto bl = ListZip(b.reader(), b.bytes.size());
  ASSERT_TRUE(bl.ok());
  EXPECT_EQ(bl->members.size(), 0u);
  EXPECT_NE(bl->problem.find("inflate"), std::string::npos) << bl->problem;

  Source junk{std::string(100, 'j')};
  EXPECT_FALSE(ListZip(junk.reader(), junk.bytes.size()).ok());
}

TEST(ArchiveIndex, ArchivesBecomeDirectoriesOfMembersThatReadTheirArchive) {
  TarBuilder t;
  t.Add("cls/a.jpg", Pattern(50000, 1)).Add("cls/b.jpg", Pattern(60000, 2));
  const std::string tar = t.Finish();
  FakeStore store;
  store.AddFile("shards/s0.tar", tar, "v1");
  store.AddFile("shards/broken.zip", "not a zip at all, no end record here", "v2");
  store.AddFile("shards/s0", "a file named like the stripped archive", "v3");
  store.AddFile("plain.txt", "plain", "v4");
  for (bool strip : {false, true}) {
    testing::TempDir dir;
    BuildOptions o;
    o.archives = [strip](std::string_view) {
      return ArchiveOptions{ArchiveMask(ArchiveKind::kTar) | ArchiveMask(ArchiveKind::kZip), strip};
    };
    o.archive_label = strip ? "tar+zip strip" : "tar+zip";
    auto meta = BuildIndex(store, dir / "idx", o);
    ASSERT_TRUE(meta.ok()) << meta.status().message();
    auto index = OpenIndex(dir / "idx");
    ASSERT_TRUE(index.ok());
    Index& ix = **index;
    EXPECT_EQ(ix.Meta().archive_label, o.archive_label);
    auto shards = ix.Lookup(kRootIno, "shards");
    ASSERT_TRUE(shards.ok());
    // The broken zip stays a file either way.
    auto broken = ix.Lookup(shards->ino, "broken.zip");
    ASSERT_TRUE(broken.ok());
    EXPECT_EQ(broken->type, ObjectType::kFile);
    auto s0 = ix.Lookup(shards->ino, "s0.tar");
    ASSERT_TRUE(s0.ok());
    if (strip) {
      // "s0" is taken by a real file: the archive stays a file only.
      EXPECT_EQ(s0->type, ObjectType::kFile);
      EXPECT_EQ(ix.Meta().archives, 0u);
      continue;
    }
    ASSERT_TRUE(s0->is_dir());
    EXPECT_EQ(ix.Meta().archives, 1u);
    EXPECT_EQ(ix.Meta().members, 2u);
    auto cls = ix.Lookup(s0->ino, "cls");
    ASSERT_TRUE(cls.ok() && cls->is_dir());
    auto b = ix.Lookup(cls->ino, "b.jpg");
    ASSERT_TRUE(b.ok());
    ASSERT_TRUE(b->packed.has_value());
    EXPECT_EQ(b->key, "shards/s0.tar");
    EXPECT_EQ(b->version, "v1");
    EXPECT_EQ(b->size, 60000u);
    EXPECT_EQ(tar.substr(b->packed->offset, b->size), Pattern(60000, 2));
    EXPECT_EQ(b->packed->archive_size, tar.size());
  }
}

}  // namespace
}  // namespace tierfs
