#include <gtest/gtest.h>

#include <fstream>
#include <sstream>

#include "cli/fluid.h"
#include "cli/metrics_server.h"
#include "cli/mount_command.h"
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
  EXPECT_EQ(fm->env.at("AWS_ACCESS_KEY_ID"), "AKIDEXAMPLE");
  EXPECT_EQ(fm->env.at("AWS_SECRET_ACCESS_KEY"), "wJalrXUtnFEMI/K7MDENG");
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
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/"},{"mountPoint":"https://y/"}]})",
       "one source per mount"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"pvc://claim"}]})", "PVC"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/"}],"accessModes":["ReadWriteMany"]})",
       "read-only"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","options":{"cache-size":"lots"}}]})",
       "cache_size"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","options":{"a":{"b":1}}}]})",
       "must be a string"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"https://x/","options":{"ram-size":"1G,allow_root"}}]})",
       "','"},
      {R"({"targetPath":"/t","mounts":[{"mountPoint":"s3://b/","options":{"aws-access-key-id":"/no/such/file"}}]})",
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
      R"({"targetPath":"/t","mounts":[{"mountPoint":"local:///data/set","options":{"s3-path-style":"false","insecure":"true"}}]})");
  ASSERT_TRUE(fm.ok()) << fm.status().message();
  EXPECT_EQ(fm->config.source, "/data/set");
  EXPECT_TRUE(fm->config.store.http.insecure);
  EXPECT_FALSE(fm->config.store.s3_path_style);
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
