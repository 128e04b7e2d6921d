#include <gtest/gtest.h>

#include <map>
#include <sstream>

#include "ufs/fake_store.h"
#include "ufs/manifest_store.h"

namespace tierfs {
namespace {

std::map<std::string, ObjectInfo> List(Store& s, const std::string& key) {
  std::map<std::string, ObjectInfo> out;
  EXPECT_TRUE(s.List(key, [&](ObjectInfo&& i) {
                 out[i.name] = i;
                 return Status::Ok();
               }).ok());
  return out;
}

TEST(Manifest, TextListsWithoutTouchingTheSource) {
  auto base = std::make_unique<FakeStore>();
  FakeStore* fake = base.get();
  fake->AddFile("a/b/with space.bin", "0123456789", "e1");
  auto s = OpenManifestStore(std::move(base),
                             "# data set\n"
                             "a/b/with%20space.bin 10 e1\n"
                             "./top.txt 3\n"
                             "\n"
                             "a/c/deep/file 7 \"etag-2\"\n");
  ASSERT_TRUE(s.ok()) << s.status().message();
  auto root = List(**s, "");
  ASSERT_EQ(root.size(), 2u);
  EXPECT_EQ(root["a"].type, ObjectType::kDirectory);
  EXPECT_EQ(root["top.txt"].size, 3u);
  auto b = List(**s, "a/b");
  EXPECT_EQ(b["with space.bin"].version, "etag:e1");
  EXPECT_EQ(List(**s, "a").size(), 2u);
  EXPECT_EQ(List(**s, "a/c/deep")["file"].version, "etag:\"etag-2\"");
  EXPECT_TRUE((*s)->Stat("a/c").ok());
  EXPECT_EQ((*s)->Stat("nope").status().error(), ENOENT);
  EXPECT_EQ(fake->list_calls() + fake->stat_calls(), 0u);
  char buf[16];
  auto n = (*s)->ReadRange(ObjectRef{"a/b/with space.bin", "e1"}, 2, 4, buf, nullptr);
  ASSERT_TRUE(n.ok());
  EXPECT_EQ(std::string(buf, *n), "2345");
}

TEST(Manifest, Json) {
  auto s = OpenManifestStore(
      std::make_unique<FakeStore>(),
      R"([{"path": "x/y.bin", "size": 5, "etag": "abc"}, {"path": "z", "size": 0}])");
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(List(**s, "x")["y.bin"].size, 5u);
  EXPECT_EQ(List(**s, "")["z"].version, "");
}

TEST(Manifest, BadInputNamesTheLine) {
  auto s = OpenManifestStore(std::make_unique<FakeStore>(), "ok 1\nbroken line here extra\n");
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("line 2"), std::string::npos);
  EXPECT_FALSE(OpenManifestStore(std::make_unique<FakeStore>(), "f notanumber\n").ok());
  EXPECT_FALSE(OpenManifestStore(std::make_unique<FakeStore>(), "[{\"path\": 1}]").ok());
}

TEST(Manifest, LinesRoundTrip) {
  std::ostringstream out;
  WriteManifestLine(out, "dir/with space%.bin", 42, "etag:\"abc\"");
  WriteManifestLine(out, "plain", 7, "lm:whatever");
  EXPECT_EQ(out.str(), "dir/with%20space%25.bin 42 \"abc\"\nplain 7\n");
  auto s = OpenManifestStore(std::make_unique<FakeStore>(), out.str());
  ASSERT_TRUE(s.ok());
  EXPECT_EQ(List(**s, "dir")["with space%.bin"].size, 42u);
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

TEST(Manifest, PathsThatLeaveOrBreakTheTreeAreRefused) {
  const std::pair<const char*, const char*> cases[] = {
      {"a//b 1\n", "line 1: path 'a//b' has an empty component"},
      {"ok 1\n../etc/passwd 10\n", "line 2: path '../etc/passwd' has a '..' component"},
      {"a/./b 1\n", "has a '.' component"},
      {"a%00b 1\n", "NUL"},
      {"x -1\n", "expected 'path size [etag]'"},
      {"a 1\na 2\n", "'a' is listed twice"},
      {"a 1\na/b 2\n", "'a' is both a file and a directory"},
      {R"([{"path":"../x","size":1}])", "entry 0: path '../x' has a '..' component"},
      {R"([{"path":"x","size":1,"etag":5}])", "etag must be a string"},
  };
  for (const auto& [text, want] : cases) {
    auto s = OpenManifestStore(std::make_unique<FakeStore>(), text);
    ASSERT_FALSE(s.ok()) << text;
    EXPECT_NE(s.status().message().find(want), std::string::npos)
        << text << " -> " << s.status().message();
  }
  // Leading "./" and "/" are the tree's root, not an escape.
  auto s = OpenManifestStore(std::make_unique<FakeStore>(), "./a/b 1\n/c 2\n");
  ASSERT_TRUE(s.ok()) << s.status().message();
  EXPECT_TRUE((*s)->Stat("a/b").ok());
  EXPECT_TRUE((*s)->Stat("c").ok());
}

}  // namespace
}  // namespace tierfs
