#include "ufs/listing.h"

#include <gtest/gtest.h>

#include <fstream>
#include <map>
#include <sstream>

namespace tierfs {
namespace {

std::string Load(const std::string& name) {
  std::ifstream in(std::string(TIERFS_TEST_DATA) + "/listings/" + name, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::map<std::string, bool> Names(const std::vector<ListingEntry>& entries) {
  std::map<std::string, bool> out;
  for (const auto& e : entries) out[e.name] = e.is_dir;
  return out;
}

// The tree every captured listing shows (captured from the real servers).
const std::map<std::string, bool> kExpected = {{"100%", false},
                                               {"amp&and", false},
                                               {"empty", false},
                                               {"sub dir", true},
                                               {"with space.txt", false},
                                               {"\xc3\xbcn\xc3\xaf#c\xc3\xb6"
                                                "d\xc3\xa9?.txt",
                                                false}};

TEST(Listing, ApacheAutoindex) {
  auto r = ParseHtmlListing(Load("apache.html"), "http://127.0.0.1:18731/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), kExpected);
}

TEST(Listing, NginxHtml) {
  auto r = ParseHtmlListing(Load("nginx.html"), "http://127.0.0.1:18732/html/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), kExpected);
}

TEST(Listing, PythonHttpServer) {
  auto r = ParseHtmlListing(Load("python.html"), "http://127.0.0.1:18733/");
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), kExpected);
}

TEST(Listing, NginxJsonHasExactSizesAndTimes) {
  auto r = ParseNginxJsonListing(Load("nginx.json"));
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(Names(*r), kExpected);
  for (const auto& e : *r) {
    ASSERT_TRUE(e.mtime.has_value()) << e.name;
    EXPECT_TRUE(ParseHttpDate(*e.mtime).has_value()) << *e.mtime;
    if (!e.is_dir) {
      ASSERT_TRUE(e.size.has_value());
      EXPECT_EQ(*e.size, e.name == "empty" ? 0u : 1u);
    }
  }
}

TEST(Listing, NeverLeavesTheListedDirectory) {
  auto r = ParseHtmlListing(Load("hostile.html"), "http://127.0.0.1:8080/data/");
  ASSERT_TRUE(r.ok());
  // Only direct children of /data/ survive; "ok/slash" decodes to a name with '/', which
  // the index builder then refuses as unsafe.
  std::map<std::string, bool> expected = {
      {"abs-child", false}, {"rooted-child", true}, {"good.bin", false}, {"ok/slash", false}};
  EXPECT_EQ(Names(*r), expected);
}

TEST(Listing, GarbageIsNotAListing) {
  EXPECT_FALSE(ParseNginxJsonListing("{not json").ok());
  EXPECT_FALSE(ParseNginxJsonListing("{\"a\": 1}").ok());
  auto empty = ParseHtmlListing("", "http://h/");
  EXPECT_TRUE(!empty.ok() || empty->empty());
  auto text = ParseHtmlListing("just some text, no links", "http://h/");
  ASSERT_TRUE(text.ok());
  EXPECT_TRUE(text->empty());
}

TEST(Listing, NginxJsonFieldsOfTheWrongTypeAreSkippedNotThrown) {
  // Found by the listing fuzzer: a non-string "type" made nlohmann throw out of the parser.
  auto r = ParseNginxJsonListing(
      R"([{"name":"a","type":1},{"name":"b","type":"file","size":"big","mtime":7},)"
      R"({"name":2,"type":"file"},{"name":"c","type":"directory"}])");
  ASSERT_TRUE(r.ok());
  std::map<std::string, bool> expected = {{"b", false}, {"c", true}};
  EXPECT_EQ(Names(*r), expected);
  EXPECT_FALSE((*r)[0].size.has_value());  // "big" is not a size: it is asked for later
}

TEST(Listing, HttpDates) {
  EXPECT_EQ(ParseHttpDate("Thu, 01 Jan 1970 00:00:10 GMT").value_or(-1), 10'000'000'000);
  EXPECT_TRUE(ParseHttpDate("Wed, 25 Nov 2026 16:12:08 GMT").has_value());
  EXPECT_FALSE(ParseHttpDate("yesterday").has_value());
}

}  // namespace
}  // namespace tierfs
