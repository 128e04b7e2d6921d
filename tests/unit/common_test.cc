#include <gtest/gtest.h>

#include "common/names.h"
#include "common/size.h"

namespace tierfs {

TEST(ParseSize, AcceptsTheUsualSpellings) {
  EXPECT_EQ(*ParseSize("0"), 0u);
  EXPECT_EQ(*ParseSize("4096"), 4096u);
  EXPECT_EQ(*ParseSize("64k"), 64u << 10);
  EXPECT_EQ(*ParseSize("512M"), 512ull << 20);
  EXPECT_EQ(*ParseSize("4G"), 4ull << 30);
  EXPECT_EQ(*ParseSize("2Gi"), 2ull << 30);
  EXPECT_EQ(*ParseSize("2GiB"), 2ull << 30);
  EXPECT_EQ(*ParseSize("1.5G"), 3ull << 29);
  EXPECT_EQ(*ParseSize("1T"), 1ull << 40);
}

TEST(ParseSize, RejectsGarbage) {
  for (const char* bad : {"", "G", "-1", "12X", "1GG", "1Gx", "abc", "1 G", "99999999999999999999",
                          "20000000P", "0x10"}) {
    auto r = ParseSize(bad);
    EXPECT_FALSE(r.ok()) << bad;
    if (!r.ok()) {
      EXPECT_EQ(r.status().error(), EINVAL);
      EXPECT_NE(r.status().message().find("invalid size"), std::string::npos);
    }
  }
}

TEST(Names, UnsafeNamesAreRefused) {
  EXPECT_TRUE(IsSafeName("a"));
  EXPECT_TRUE(IsSafeName("with space"));
  EXPECT_TRUE(IsSafeName("-leading-dash"));
  EXPECT_TRUE(IsSafeName("ünïcödé ✓"));
  EXPECT_TRUE(IsSafeName("..."));
  EXPECT_FALSE(IsSafeName(""));
  EXPECT_FALSE(IsSafeName("."));
  EXPECT_FALSE(IsSafeName(".."));
  EXPECT_FALSE(IsSafeName("a/b"));
  EXPECT_FALSE(IsSafeName("/"));
  EXPECT_FALSE(IsSafeName(std::string("a\0b", 3)));
  EXPECT_FALSE(IsSafeName(std::string(256, 'x')));
  EXPECT_TRUE(IsSafeName(std::string(255, 'x')));
}

TEST(Names, SymlinksMustStayInsideTheTree) {
  EXPECT_TRUE(IsContainedSymlink("file", 0));
  EXPECT_TRUE(IsContainedSymlink("dir/file", 0));
  EXPECT_TRUE(IsContainedSymlink("../file", 1));
  EXPECT_TRUE(IsContainedSymlink("./a/../b", 0));
  EXPECT_FALSE(IsContainedSymlink("../file", 0));
  EXPECT_FALSE(IsContainedSymlink("a/../../file", 0));
  EXPECT_FALSE(IsContainedSymlink("/etc/passwd", 3));
  EXPECT_FALSE(IsContainedSymlink("", 0));
}

}  // namespace tierfs
