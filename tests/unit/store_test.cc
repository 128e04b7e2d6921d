#include <gtest/gtest.h>
#include <sys/stat.h>
#include <utime.h>

#include <map>
#include <thread>

#include "test_util.h"
#include "ufs/fake_store.h"
#include "ufs/metered_store.h"
#include "ufs/posix_store.h"
#include "ufs/s3_store.h"

namespace tierfs {
namespace {
using testing::TempDir;
using testing::WriteFile;

std::map<std::string, ObjectInfo> ListAll(Store& store, const std::string& key) {
  std::map<std::string, ObjectInfo> out;
  Status s = store.List(key, [&](ObjectInfo&& info) {
    out[info.name] = info;
    return Status::Ok();
  });
  EXPECT_TRUE(s.ok()) << s.message();
  return out;
}

TEST(OpenStore, UnknownSchemeIsAClearError) {
  auto s = OpenStore("gopher://host/x", StoreOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("unknown source scheme 'gopher://'"), std::string::npos);
  EXPECT_FALSE(OpenStore("relative/path", StoreOptions{}).ok());
  EXPECT_FALSE(OpenStore("file://relative", StoreOptions{}).ok());
}

TEST(OpenStore, MissingDirectoryIsENOENT) {
  auto s = OpenStore("/nonexistent/tierfs/source", StoreOptions{});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().error(), ENOENT);
}

TEST(PosixStore, ListsStatsAndReads) {
  TempDir dir;
  WriteFile(dir / "a.txt", "hello world");
  WriteFile(dir / "sub/b.bin", std::string(10000, 'x'));
  ASSERT_EQ(::symlink("a.txt", (dir / "link").c_str()), 0);
  auto store = OpenStore("file://" + dir.path(), StoreOptions{});
  ASSERT_TRUE(store.ok());
  EXPECT_EQ((*store)->Url(), "file://" + dir.path());

  auto root = ListAll(**store, "");
  ASSERT_EQ(root.size(), 3u);
  EXPECT_EQ(root["a.txt"].type, ObjectType::kFile);
  EXPECT_EQ(root["a.txt"].size, 11u);
  EXPECT_EQ(root["sub"].type, ObjectType::kDirectory);
  EXPECT_EQ(root["link"].type, ObjectType::kSymlink);
  EXPECT_EQ(root["link"].link_target, "a.txt");

  auto st = (*store)->Stat("sub/b.bin");
  ASSERT_TRUE(st.ok());
  EXPECT_EQ(st->size, 10000u);

  char buf[32];
  auto n = (*store)->ReadRange(ObjectRef{"a.txt", root["a.txt"].version}, 6, 32, buf, nullptr);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "world");
}

TEST(PosixStore, RefusesKeysOutsideTheRoot) {
  TempDir dir;
  WriteFile(dir / "root/inside", "ok");
  WriteFile(dir / "secret", "do not read");
  ASSERT_EQ(::symlink("../secret", (dir / "root/escape").c_str()), 0);
  auto store = OpenStore(dir / "root", StoreOptions{});
  ASSERT_TRUE(store.ok());
  char buf[32];
  EXPECT_FALSE((*store)->ReadRange(ObjectRef{"../secret", ""}, 0, 32, buf, nullptr).ok());
  EXPECT_FALSE((*store)->ReadRange(ObjectRef{"escape", ""}, 0, 32, buf, nullptr).ok());
  EXPECT_FALSE((*store)->ReadRange(ObjectRef{"/etc/passwd", ""}, 0, 32, buf, nullptr).ok());
  EXPECT_FALSE((*store)->List("..", [](ObjectInfo&&) { return Status::Ok(); }).ok());
  EXPECT_TRUE((*store)->ReadRange(ObjectRef{"inside", ""}, 0, 32, buf, nullptr).ok());
}

TEST(PosixStore, ChangedFileFailsLoudly) {
  TempDir dir;
  WriteFile(dir / "f", "version one");
  auto store = OpenStore(dir.path(), StoreOptions{});
  ASSERT_TRUE(store.ok());
  auto st = (*store)->Stat("f");
  ASSERT_TRUE(st.ok());
  WriteFile(dir / "f", "version two, longer");
  char buf[64];
  auto n = (*store)->ReadRange(ObjectRef{"f", st->version}, 0, sizeof buf, buf, nullptr);
  ASSERT_FALSE(n.ok());
  EXPECT_EQ(n.status().error(), EIO);
  EXPECT_NE(n.status().message().find("changed since it was indexed"), std::string::npos);
}

TEST(FakeStore, CountsCallsAndInjectsFaults) {
  FakeStore store;
  store.AddFile("d/f", "abcdef");
  char buf[8];
  EXPECT_TRUE(store.ReadRange(ObjectRef{"d/f", "v1"}, 0, 8, buf, nullptr).ok());
  store.FailNext(2, EIO);
  EXPECT_EQ(store.ReadRange(ObjectRef{"d/f", "v1"}, 0, 8, buf, nullptr).status().error(), EIO);
  EXPECT_EQ(store.Stat("d").status().error(), EIO);
  EXPECT_TRUE(store.Stat("d").ok());
  EXPECT_EQ(store.read_calls(), 2u);
  EXPECT_EQ(store.stat_calls(), 2u);
  EXPECT_EQ(ListAll(store, "d").size(), 1u);
  EXPECT_FALSE(store.ReadRange(ObjectRef{"d/f", "v2"}, 0, 8, buf, nullptr).ok());
}

TEST(S3Listing, ParsesAPageAndRefusesHostileValues) {
  const std::string page =
      "<ListBucketResult><IsTruncated>true</IsTruncated><NextContinuationToken>tok</"
      "NextContinuationToken>"
      "<CommonPrefixes><Prefix>train/sub/</Prefix></CommonPrefixes>"
      "<CommonPrefixes><Prefix>other/x/</Prefix></CommonPrefixes>"
      "<Contents><Key>train/a.jpg</Key><Size>51200</Size><ETag>\"e\"</ETag>"
      "<LastModified>2024-01-02T03:04:05.000Z</LastModified></Contents>"
      "<Contents><Key>train/</Key><Size>0</Size></Contents>"
      "<Contents><Key>train/far.jpg</Key><Size>1</Size><LastModified>99999-01-01T00:00:00Z</"
      "LastModified></Contents>"
      "</ListBucketResult>";
  auto p = ParseListObjectsV2(page, "train/");
  ASSERT_TRUE(p.ok()) << p.status().message();
  ASSERT_EQ(p->entries.size(), 3u);  // sub/, a.jpg, far.jpg; not other/x/, not the marker
  EXPECT_EQ(p->entries[0].name, "sub");
  EXPECT_EQ(p->entries[0].type, ObjectType::kDirectory);
  EXPECT_EQ(p->entries[1].name, "a.jpg");
  EXPECT_EQ(p->entries[1].size, 51200u);
  EXPECT_EQ(p->entries[1].mtime_ns, 1704164645LL * 1000000000);
  EXPECT_EQ(p->entries[2].mtime_ns, 0);  // a date beyond what fits is no date
  EXPECT_EQ(p->next_token, "tok");
  for (const char* size : {"-1", "18446744073709551615", "12abc", ""}) {
    std::string bad = "<ListBucketResult><Contents><Key>k</Key><Size>" + std::string(size) +
                      "</Size></Contents></ListBucketResult>";
    EXPECT_FALSE(ParseListObjectsV2(bad, "").ok()) << size;
  }
  EXPECT_FALSE(
      ParseListObjectsV2("<ListBucketResult><IsTruncated>true</IsTruncated></ListBucketResult>", "")
          .ok());
  EXPECT_FALSE(ParseListObjectsV2("not xml <", "").ok());
}

TEST(MeteredStore, CountsCallsByOperationAndOutcomeWithoutChangingResults) {
  MetricsRegistry registry;
  auto fake = std::make_unique<FakeStore>();
  FakeStore* inner = fake.get();
  inner->AddFile("d/f", "abcdef");
  MeteredStore store(std::move(fake), registry);
  char buf[8];
  auto n = store.ReadRange(ObjectRef{"d/f", "v1"}, 1, 8, buf, nullptr);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(*n, 5u);
  EXPECT_EQ(std::string(buf, 5), "bcdef");
  inner->FailNext(1, EIO);
  EXPECT_EQ(store.ReadRange(ObjectRef{"d/f", "v1"}, 0, 8, buf, nullptr).status().error(), EIO);
  EXPECT_EQ(store.Stat("nope").status().error(), ENOENT);
  EXPECT_EQ(ListAll(store, "d").size(), 1u);
  EXPECT_EQ(inner->read_calls(), 2u);

  auto count = [&](const char* op, const char* code) {
    return registry.GetCounter("tierfs_remote_requests_total", "", {{"op", op}, {"code", code}})
        .value();
  };
  EXPECT_EQ(count("read", "ok"), 1u);
  EXPECT_EQ(count("read", "EIO"), 1u);
  EXPECT_EQ(count("stat", "ENOENT"), 1u);
  EXPECT_EQ(count("list", "ok"), 1u);
  EXPECT_EQ(registry.GetCounter("tierfs_remote_bytes_total", "").value(), 5u);
  std::string text = registry.Render();
  EXPECT_NE(text.find("tierfs_remote_request_duration_seconds_count{op=\"read\"} 2"),
            std::string::npos)
      << text;
}

}  // namespace
}  // namespace tierfs
