#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cli/fluid.h"
#include "cli/metrics_server.h"
#include "cli/mount_options.h"
#include "test_util.h"

namespace tierfs {
namespace {
using testing::TempDir;
using testing::WriteFile;

std::string ReadText(const std::string& path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// The sample is what Fluid's ThinRuntime controller writes (encrypted options as paths of
// mounted secret files); SECRETDIR stands for where the test puts those files.
std::string SampleConfig(const std::string& secret_dir) {
  std::string text = ReadText(TIERFS_TEST_DATA "/fluid/config.json");
  for (size_t at; (at = text.find("SECRETDIR")) != std::string::npos;)
    text.replace(at, 9, secret_dir);
  return text;
}

TEST(FluidConfig, TranslatesARealConfigJson) {
  TempDir dir;
  WriteFile(dir.path() + "/access-key", "AKIDEXAMPLE\n");
  WriteFile(dir.path() + "/secret-key", "wJalrXUtnFEMI/K7MDENG\n");
  auto fm = FluidMountFromConfig(SampleConfig(dir.path()));
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  const MountConfig& c = fm->config;
  EXPECT_EQ(c.source, "https://data.example.org/imagenet/");
  EXPECT_EQ(c.mountpoint, "/runtime-mnt/thin/default/imagenet/thin-fuse");
  EXPECT_TRUE(c.foreground);
  EXPECT_EQ(c.cache_size, 200ULL << 30);  // the mount's option wins over runtimeOptions
  EXPECT_EQ(c.ram_size, 4ULL << 30);
  EXPECT_EQ(c.block_size, 4ULL << 20);
  EXPECT_EQ(c.cache_dir, "/var/cache/tierfs/imagenet");
  EXPECT_EQ(c.metrics_address, "0.0.0.0:9567");
  EXPECT_EQ(c.log_level, "warn");
  EXPECT_EQ(c.fuse_options, "allow_other");
  EXPECT_TRUE(c.sources.empty());  // path "/": the mount of one source
  EXPECT_EQ(c.store.s3_access_key_id, "AKIDEXAMPLE");
  EXPECT_EQ(c.store.s3_secret_access_key, "wJalrXUtnFEMI/K7MDENG");
  // The printed command never carries a secret or the secret files' paths.
  EXPECT_EQ(fm->command_line.find("AKIDEXAMPLE"), std::string::npos);
  EXPECT_EQ(fm->command_line.find("access-key"), std::string::npos);
  EXPECT_NE(fm->command_line.find("tierfs mount https://data.example.org/imagenet/ "
                                  "/runtime-mnt/thin/default/imagenet/thin-fuse -f -o "),
            std::string::npos)
      << fm->command_line;
}

TEST(FluidConfig, RefusesWhatItCannotServeWithOneClearLine) {
  TempDir dir;
  const std::pair<const char*, const char*> cases[] = {
      {"not json", "not a JSON object"},
      {R"({"mounts":[{"mountPoint":"https://x/"}]})", "targetPath"},
      {R"({"targetPath":"rel","mounts":[{"mountPoint":"https://x/"}]})", "targetPath"},
      {R"({"targetPath":"/t","mounts":[]})", "mounts"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/"}]})",
       "neither a path nor a name"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a"},{"mountPoint":"https://y/","name":"a","path":"/b"}]})",
       "two mounts are named 'a'"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a"},{"mountPoint":"https://y/","name":"b","path":"/a"}]})",
       "two sources have the path /a"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a","path":"/a/../b"}]})",
       "may not contain '..'"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":".."}]})",
       "not a directory name"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a"},{"mountPoint":"https://y/","name":"b","path":"/"}]})",
       "only valid for a single source"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a"},{"mountPoint":"https://y/","name":"b","path":"/a/b"}]})",
       "inside source /a"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a","options":{"cache-size":"1G"}},{"mountPoint":"https://y/","name":"b","options":{"cache-size":"2G"}}]})",
       "applies to the whole mount"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"a","encryptOptions":[{"name":"aws-access-key-id","valueFrom":{"secretKeyRef":{"name":"..","key":"k"}}}]}]})",
       "bad secret"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"pvc://claim","name":"c"}]})", "PVC"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"x"}],"accessModes":["ReadWriteMany"]})",
       "read-only"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"x","options":{"cache-size":"lots"}}]})",
       "cache_size"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"x","options":{"a":{"b":1}}}]})",
       "must be a string"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","name":"x","options":{"ram-size":"1G,allow_root"}}]})",
       "','"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"s3://b/","name":"b","options":{"aws-access-key-id":"/no/such/file"}}]})",
       "cannot read secret file"},
  };
  for (const auto& [json, want] : cases) {
    auto fm = FluidMountFromConfig(json);
    ASSERT_FALSE(fm.ok()) << json;
    EXPECT_NE(fm.status().message().find(want), std::string::npos)
        << json << " -> " << fm.status().message();
    EXPECT_EQ(fm.status().message().find('\n'), std::string::npos);
  }
}

TEST(FluidConfig, LocalMountPointsAndFlags) {
  auto fm = FluidMountFromConfig(
      R"({"targetPath":"/t","mounts":[{"mountPoint":"local:///data/set","path":"/","options":{"s3-path-style":"false","insecure":"true"}}]})");
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  EXPECT_EQ(fm->config.source, "/data/set");
  EXPECT_TRUE(fm->config.store.http.insecure);
  EXPECT_FALSE(fm->config.store.s3_path_style);
}

// The course lab's Dataset: one mount named spark and no path is served at /spark, the
// path every Fluid runtime gives it (the pod reads /data/spark/spark-3.4.1).
TEST(FluidConfig, AMountWithoutPathIsServedAtItsName) {
  auto fm = FluidMountFromConfig(
      R"({"targetPath":"/t","mounts":[{"mountPoint":"https://archive.apache.org/dist/spark/","name":"spark"}]})");
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  ASSERT_EQ(fm->config.sources.size(), 1U);
  EXPECT_TRUE(fm->config.source.empty());
  EXPECT_EQ(fm->config.sources[0].path, "/spark");
  EXPECT_EQ(fm->config.sources[0].url, "https://archive.apache.org/dist/spark/");
  EXPECT_EQ(
      fm->command_line,
      "tierfs mount --source /spark=https://archive.apache.org/dist/spark/ /t -f -o allow_other");
}

// Several mounts: each source gets its own remote options and secrets, the shared ones
// reach all, the whole mount's options come from runtimeOptions and the mounts.
TEST(FluidConfig, SeveralMountsEachWithItsOwnOptionsAndSecrets) {
  TempDir dir;
  WriteFile(dir.path() + "/s3/id", "AKIDHBASE\n");
  WriteFile(dir.path() + "/s3/key", "hbasesecret\n");
  WriteFile(dir.path() + "/shared/token", "sharedtoken\n");
  const std::string json = R"({"targetPath":"/t",
    "runtimeOptions":{"ram-size":"64M","timeout":"15000"},
    "sharedOptions":{"cache-size":"3G"},
    "sharedEncryptOptions":[{"name":"aws-session-token","valueFrom":{"secretKeyRef":{"name":"shared","key":"token"}}}],
    "mounts":[
      {"mountPoint":"https://archive.apache.org/dist/spark/","name":"spark","options":{"insecure":"true"}},
      {"mountPoint":"s3://bucket/hbase/","name":"hbase","path":"/apache/hbase/",
       "options":{"s3-endpoint":"http://127.0.0.1:4568","s3_path_style":"true","timeout":"30000"},
       "encryptOptions":[
         {"name":"aws-access-key-id","valueFrom":{"secretKeyRef":{"name":"s3","key":"id"}}},
         {"name":"aws-secret-access-key","valueFrom":{"secretKeyRef":{"name":"s3","key":"key"}}}]}]})";
  auto fm = FluidMountFromConfig(json, dir.path());
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  const MountConfig& c = fm->config;
  EXPECT_EQ(c.ram_size, 64ULL << 20);
  EXPECT_EQ(c.cache_size, 3ULL << 30);
  ASSERT_EQ(c.sources.size(), 2U);
  const SourceSpec& spark = c.sources[0];
  const SourceSpec& hbase = c.sources[1];
  EXPECT_EQ(spark.path, "/spark");
  EXPECT_EQ(hbase.path, "/apache/hbase");
  EXPECT_TRUE(spark.store.http.insecure);
  EXPECT_FALSE(hbase.store.http.insecure);
  EXPECT_TRUE(spark.store.s3_endpoint.empty());
  EXPECT_EQ(hbase.store.s3_endpoint, "http://127.0.0.1:4568");
  EXPECT_TRUE(hbase.store.s3_path_style);
  EXPECT_EQ(spark.store.http.request_timeout_ms, 15000);  // runtimeOptions: every source's default
  EXPECT_EQ(hbase.store.http.request_timeout_ms, 30000);  // its own wins
  EXPECT_TRUE(spark.store.s3_access_key_id.empty());
  EXPECT_EQ(hbase.store.s3_access_key_id, "AKIDHBASE");
  EXPECT_EQ(hbase.store.s3_secret_access_key, "hbasesecret");
  EXPECT_EQ(hbase.store.s3_session_token, "sharedtoken");
  EXPECT_EQ(fm->command_line.find("AKIDHBASE"), std::string::npos);
  EXPECT_EQ(fm->command_line.find("sharedtoken"), std::string::npos);
  EXPECT_NE(fm->command_line.find("--source /spark=https://archive.apache.org/dist/spark/ "
                                  "--source /apache/hbase=s3://bucket/hbase/ /t -f"),
            std::string::npos)
      << fm->command_line;
}

TEST(MountOptions, TierfsKeysSetFieldsAndTheRestGoToLibfuse) {
  MountConfig c;
  ASSERT_TRUE(ApplyMountOptions("cache_size=2G,ram_size=64M,metrics=127.0.0.1:9567,allow_other,"
                                "_netdev,nofail,x-systemd.automount,noatime,max_read=131072",
                                &c)
                  .ok());
  EXPECT_EQ(c.cache_size, 2ULL << 30);
  EXPECT_EQ(c.ram_size, 64ULL << 20);
  EXPECT_EQ(c.metrics_address, "127.0.0.1:9567");
  EXPECT_EQ(c.fuse_options, "allow_other,max_read=131072");
  EXPECT_FALSE(ApplyMountOptions("cache_size=big", &c).ok());
}

TEST(ListenAddress, ParsesHostPortForms) {
  auto a = ParseListenAddress("127.0.0.1:9567");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");
  EXPECT_EQ(a->port, 9567);
  a = ParseListenAddress("9100");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "127.0.0.1");  // loopback unless told otherwise
  a = ParseListenAddress("[::1]:80");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "::1");
  a = ParseListenAddress("0.0.0.0:9567");
  ASSERT_TRUE(a.ok());
  EXPECT_EQ(a->host, "0.0.0.0");
  for (const char* bad : {"", ":", "host:", "host:x", "host:0", "host:65536", "[::1", "[::1]9"}) {
    EXPECT_FALSE(ParseListenAddress(bad).ok()) << bad;
  }
}

}  // namespace
}  // namespace tierfs

namespace tierfs {
namespace {

TEST(MountOptions, ClusterAndRemoteOptionsAreSettableFromFstabAndFluid) {
  MountConfig c;
  ASSERT_TRUE(ApplyMountOptions("http_proxy=http://c1:3128|http://c2:3128;DIRECT,"
                                "http_proxy_refresh=5,on_unreachable=wait,s3_through_proxy,"
                                "timeout=2000,connect_timeout=300,retries=7,manifest=/m.txt",
                                &c)
                  .ok());
  EXPECT_EQ(c.store.http.proxy_list, "http://c1:3128|http://c2:3128;DIRECT");
  EXPECT_EQ(c.store.http.proxy_refresh_seconds, 5);
  EXPECT_TRUE(c.store.http.wait_while_unreachable);
  EXPECT_TRUE(c.store.s3_through_proxy);
  EXPECT_EQ(c.store.http.request_timeout_ms, 2000);
  EXPECT_EQ(c.store.http.connect_timeout_ms, 300);
  EXPECT_EQ(c.store.http.max_attempts, 7);
  EXPECT_EQ(c.store.manifest, "/m.txt");
  EXPECT_EQ(c.fuse_options, "");  // none of them reaches libfuse
  ASSERT_TRUE(ApplyMountOptions("on_unreachable=fail", &c).ok());
  EXPECT_FALSE(c.store.http.wait_while_unreachable);
  EXPECT_FALSE(ApplyMountOptions("retries=0", &c).ok());
  EXPECT_FALSE(ApplyMountOptions("timeout=5s", &c).ok());
}

}  // namespace
}  // namespace tierfs

#include <CLI/CLI.hpp>

namespace tierfs {
namespace {

// A value each option accepts, and one it refuses ("": none, any text is fine).
struct Sample {
  std::string good, bad;
};
Sample SampleFor(const MountOption& o) {
  switch (o.type) {
    case OptionType::kSize:
      return {"3M", "lots"};
    case OptionType::kNumber:
      return {std::to_string(o.hi), std::to_string(o.hi + 1)};
    case OptionType::kChoice: {
      std::string c = o.choices;
      return {c.substr(c.rfind('|') + 1), "sideways"};  // the last: never the default
    }
    case OptionType::kFlag:
      return {"", "maybe"};
    case OptionType::kText:
      break;
  }
  if (o.name == std::string("archives")) return {"zip+tar", "rar"};
  return {o.name == std::string("metrics") ? "127.0.0.1:9567" : "/some/value", ""};
}

// `tierfs mount SRC MNT ARGS...` through the same CLI11 setup as main.cc: the config and
// the error text of the first parse error ("" when it parsed).
std::string ParseCommandLine(std::vector<std::string> args, MountConfig* out) {
  CLI::App app;
  auto* mount = app.add_subcommand("mount");
  MountConfig c;
  mount->add_option("source", c.source)->required();
  mount->add_option("mountpoint", c.mountpoint)->required();
  AddMountOptions(mount, &c, false);
  mount->fallthrough();
  AddMountConfigFile(&app);
  args.insert(args.begin(), {"mount", "/src", "/mnt"});
  std::reverse(args.begin(), args.end());  // CLI11 takes a reversed vector
  try {
    app.parse(args);
  } catch (const CLI::ParseError& e) {
    return e.what();
  } catch (const std::invalid_argument& e) {  // CLI11 2.3: "--flag=maybe"
    return std::string("invalid flag value: ") + e.what();
  }
  *out = c;
  return "";
}

// What a spelling's error says after the key it names.
std::string AfterKey(const std::string& error, const std::string& key) {
  const size_t at = error.find(key + ": ");
  return at == std::string::npos ? "(no '" + key + ": ' in '" + error + "')"
                                 : error.substr(at + key.size() + 2);
}

// Every option of the table, in all three spellings: a good value sets the same config,
// a bad one fails with the same message, and the man page documents both spellings.
TEST(MountOptionTable, EveryOptionInEverySpellingWithTheSameChecks) {
  const std::string man = ReadText(TIERFS_SOURCE_ROOT "/packaging/man/tierfs.1");
  const std::string toml = ::testing::TempDir() + "/options.toml";
  for (const MountOption& o : MountOptionTable()) {
    SCOPED_TRACE(o.name);
    const Sample s = SampleFor(o);
    const std::string flag = std::string("--") + o.name, key = FstabKey(o);
    std::string man_flag = "\\-\\-";  // groff spells "--cache-size" \-\-cache\-size
    for (const char* p = o.name; *p != '\0'; ++p)
      man_flag += *p == '-' ? std::string("\\-") : std::string(1, *p);
    EXPECT_NE(man.find(man_flag), std::string::npos) << "the man page does not document " << flag;
    ASSERT_EQ(FindMountOption(key), &o);
    ASSERT_EQ(FindMountOption(o.name), &o);

    MountConfig by_flag, by_file, by_o;
    std::vector<std::string> args = {flag};
    if (o.type != OptionType::kFlag) args.push_back(s.good);
    ASSERT_EQ(ParseCommandLine(args, &by_flag), "");
    std::ofstream(toml) << o.name << " = "
                        << (o.type == OptionType::kFlag ? "true" : "\"" + s.good + "\"") << "\n";
    ASSERT_EQ(ParseCommandLine({"--config", toml}, &by_file), "");
    if (o.fstab) {
      EXPECT_NE(man.find(key), std::string::npos) << "the man page does not list -o " << key;
      by_o.source = "/src";
      by_o.mountpoint = "/mnt";
      ASSERT_TRUE(
          ApplyMountOptions(o.type == OptionType::kFlag ? key : key + "=" + s.good, &by_o).ok());
      EXPECT_EQ(by_o.fuse_options, "") << key << " leaked to libfuse";
    } else {
      by_o = by_flag;  // -f and -d have no -o spelling (libfuse owns -o debug)
    }
    // The value landed (the config is not the defaults) and all three spellings agree.
    auto same = [](const MountConfig& a, const MountConfig& b) {
      return a.index_path == b.index_path && a.index_refresh == b.index_refresh &&
             a.cache_dir == b.cache_dir && a.cache_size == b.cache_size &&
             a.ram_size == b.ram_size && a.block_size == b.block_size && a.threads == b.threads &&
             a.spin_us == b.spin_us && a.fetch_budget == b.fetch_budget &&
             a.prefetch == b.prefetch && a.log_level == b.log_level &&
             a.rebuild_index == b.rebuild_index && a.passthrough == b.passthrough &&
             a.fuse_uring == b.fuse_uring && a.foreground == b.foreground && a.debug == b.debug &&
             a.metrics_address == b.metrics_address && a.store.manifest == b.store.manifest &&
             a.store.s3_endpoint == b.store.s3_endpoint && a.store.s3_region == b.store.s3_region &&
             a.store.s3_path_style == b.store.s3_path_style &&
             a.store.s3_no_sign == b.store.s3_no_sign &&
             a.store.s3_credentials_file == b.store.s3_credentials_file &&
             a.store.s3_imds_v1 == b.store.s3_imds_v1 &&
             a.store.http.ca_file == b.store.http.ca_file &&
             a.store.http.insecure == b.store.http.insecure &&
             a.store.http.request_timeout_ms == b.store.http.request_timeout_ms &&
             a.store.http.connect_timeout_ms == b.store.http.connect_timeout_ms &&
             a.store.http.max_attempts == b.store.http.max_attempts &&
             a.store.http.proxy_list == b.store.http.proxy_list &&
             a.store.http.proxy_refresh_seconds == b.store.http.proxy_refresh_seconds &&
             a.store.http.wait_while_unreachable == b.store.http.wait_while_unreachable &&
             a.store.s3_through_proxy == b.store.s3_through_proxy &&
             a.store.nfs_uid == b.store.nfs_uid && a.store.nfs_gid == b.store.nfs_gid &&
             a.store.archives == b.store.archives &&
             a.store.http.place_by_object == b.store.http.place_by_object &&
             a.store.archive_strip_suffix == b.store.archive_strip_suffix;
    };
    MountConfig untouched;
    untouched.source = "/src";
    untouched.mountpoint = "/mnt";
    EXPECT_FALSE(same(by_flag, untouched) && o.type != OptionType::kText)
        << flag << " " << s.good << " changed nothing";
    EXPECT_TRUE(same(by_flag, by_file)) << "flag and config file differ";
    EXPECT_TRUE(same(by_flag, by_o)) << "flag and -o differ";

    if (s.bad.empty()) continue;
    // A refused value: one message, whichever way it was spelled.
    MountConfig ignored;
    const Status direct = ApplyMountOption(o, s.bad, &ignored);
    ASSERT_FALSE(direct.ok()) << s.bad;
    const std::string flag_error =
        ParseCommandLine(o.type == OptionType::kFlag ? std::vector<std::string>{flag + "=" + s.bad}
                                                     : std::vector<std::string>{flag, s.bad},
                         &ignored);
    if (o.type != OptionType::kFlag) {  // CLI11 itself refuses a value given to a flag
      EXPECT_EQ(AfterKey(flag_error, flag), direct.message());
      std::ofstream(toml) << o.name << " = \"" << s.bad << "\"\n";
      EXPECT_EQ(AfterKey(ParseCommandLine({"--config", toml}, &ignored), flag), direct.message());
    } else {
      EXPECT_NE(flag_error, "");
    }
    if (o.fstab) {
      const Status by_fstab = ApplyMountOptions(key + "=" + s.bad, &ignored);
      EXPECT_EQ(by_fstab.message(), "option " + key + ": " + direct.message());
    }
  }
}

TEST(MountOptionTable, MessagesSayWhatIsAccepted) {
  MountConfig c;
  EXPECT_EQ(ApplyMountOptions("threads=x4", &c).message(), "option threads: 'x4' is not a number");
  EXPECT_EQ(ApplyMountOptions("threads=5000", &c).message(),
            "option threads: 5000 not in range 0 to 1024");
  EXPECT_EQ(ApplyMountOptions("passthrough=maybe", &c).message(),
            "option passthrough: must be auto, on or off, not 'maybe'");
  EXPECT_EQ(ApplyMountOptions("fuse_uring=perhaps", &c).message(),
            "option fuse_uring: takes no value (or true/false), not 'perhaps'");
  ASSERT_TRUE(ApplyMountOptions("fuse_uring=false,rebuild_index=true", &c).ok());
  EXPECT_FALSE(c.fuse_uring);
  EXPECT_TRUE(c.rebuild_index);
  // -o debug is libfuse's, not ours.
  ASSERT_TRUE(ApplyMountOptions("debug", &c).ok());
  EXPECT_FALSE(c.debug);
  EXPECT_EQ(c.fuse_options, "debug");
}

}  // namespace
}  // namespace tierfs

#include <filesystem>
#include <set>

namespace tierfs {
namespace {

bool NameChar(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_'; }

// The "tierfs_..." string literals in `text` (no std::regex: GCC 12's warns under ASan).
std::vector<std::string> FamilyLiterals(const std::string& text) {
  std::vector<std::string> names;
  for (size_t at = text.find("\"tierfs_"); at != std::string::npos;
       at = text.find("\"tierfs_", at + 1)) {
    size_t end = at + 1;
    while (end < text.size() && NameChar(text[end])) ++end;
    if (end < text.size() && text[end] == '"') names.push_back(text.substr(at + 1, end - at - 1));
  }
  return names;
}

// Whether `name` occurs in `text` as a whole word.
bool HasWord(const std::string& text, const std::string& name) {
  for (size_t at = text.find(name); at != std::string::npos; at = text.find(name, at + 1)) {
    const size_t end = at + name.size();
    if ((at == 0 || !NameChar(text[at - 1])) && (end == text.size() || !NameChar(text[end]))) {
      return true;
    }
  }
  return false;
}

// Every metric family the daemon can export is documented in the man page's METRICS list.
// The families are the "tierfs_..." string literals of the sources (names are never built
// at run time), less the few such literals that are not metrics.
TEST(MetricsDocs, EveryFamilyInTheSourcesIsInTheManPage) {
  const std::set<std::string> not_metrics = {"tierfs_index"};  // a key of the index pointer
  const std::string man = ReadText(TIERFS_SOURCE_ROOT "/packaging/man/tierfs.1");
  const size_t section = man.find(".SH METRICS");
  ASSERT_NE(section, std::string::npos);
  const std::string metrics = man.substr(section, man.find(".SH ", section + 1) - section);
  std::set<std::string> found;
  for (const auto& entry :
       std::filesystem::recursive_directory_iterator(TIERFS_SOURCE_ROOT "/src")) {
    if (entry.path().extension() != ".cc" && entry.path().extension() != ".h") continue;
    for (const std::string& name : FamilyLiterals(ReadText(entry.path().string()))) {
      if (!not_metrics.contains(name)) found.insert(name);
    }
  }
  EXPECT_GE(found.size(), 40u) << "the scan found too few families to be right";
  for (const std::string& name : found) {
    EXPECT_TRUE(HasWord(metrics, name)) << name << " is not in the man page";
  }
  EXPECT_FALSE(HasWord("tierfs_cache_hits_total_x", "tierfs_cache_hits_total"));
}

}  // namespace
}  // namespace tierfs
