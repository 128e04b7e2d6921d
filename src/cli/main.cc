// tierfs: command-line entry point. Parses commands with CLI11 and hands them to the
// layers; every failure is one line on stderr and a non-zero exit.
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cstdio>
#include <ctime>
#include <fstream>
#include <nlohmann/json.hpp>

#include "cli/admin_commands.h"
#include "cli/fail.h"
#include "cli/fluid.h"
#include "cli/index_commands.h"
#include "cli/mount_command.h"
#include "common/log.h"
#include "common/size.h"
#include "metadata/index.h"
#include "ufs/manifest_store.h"
#include "ufs/store.h"

namespace tierfs {
namespace {

// CLI11 validator for sizes such as 512M, 4G, 2Gi.
struct SizeValidator : public CLI::Validator {
  SizeValidator() {
    name_ = "SIZE";
    func_ = [](std::string& text) -> std::string {
      auto v = ParseSize(text);
      if (!v.ok()) return v.status().message();
      text = std::to_string(*v);
      return {};
    };
  }
};

// Reads `tierfs mount --config FILE`: TOML (`key = value`, strings quoted) whose keys are
// the long options of `mount` (cache-size = "50G", foreground = true, o = "allow_other")
// plus `source` and `mountpoint`. Every key lands in the [mount] section, so CLI11 applies
// it to the mount subcommand; options given on the command line win.
class MountConfigFile : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    auto items = CLI::ConfigTOML::from_config(input);
    for (auto& item : items) {
      if (item.parents.empty()) item.parents.push_back("mount");
    }
    return items;
  }
};

// Options every command that talks to a source takes.
void AddStoreOptions(CLI::App* cmd, StoreOptions* o) {
  cmd->add_option("--manifest", o->manifest,
                  "file or URL listing 'path size [etag]' per line (or JSON): no crawl");
  cmd->add_option("--s3-endpoint", o->s3_endpoint, "S3 endpoint URL (default: AWS for the region)");
  cmd->add_option("--s3-region", o->s3_region,
                  "S3 region (default: $AWS_REGION, ~/.aws/config, us-east-1)");
  cmd->add_flag("--s3-path-style", o->s3_path_style, "address buckets as ENDPOINT/BUCKET");
  cmd->add_flag("--no-sign-request", o->s3_no_sign, "anonymous S3 requests");
  cmd->add_option("--s3-credentials-file", o->s3_credentials_file, "AWS credentials file");
  cmd->add_flag("--s3-imds-v1", o->s3_imds_v1,
                "let the EC2 instance-metadata credentials fall back to IMDSv1");
  cmd->add_option("--ca-file", o->http.ca_file, "CA bundle for TLS verification");
  cmd->add_flag("--insecure", o->http.insecure, "do not verify TLS certificates");
  cmd->add_option("--timeout", o->http.request_timeout_ms, "per-request timeout, ms")
      ->check(CLI::Range(100, 3600000));
  cmd->add_option("--connect-timeout", o->http.connect_timeout_ms, "connect timeout, ms")
      ->check(CLI::Range(10, 600000));
  cmd->add_option("--retries", o->http.max_attempts, "attempts per request")
      ->check(CLI::Range(1, 20));
  cmd->add_option("--http-proxy", o->http.proxy_list,
                  "cluster HTTP caches, e.g. 'http://c1:3128|http://c2:3128;DIRECT' ('|' shares "
                  "blocks among caches, ';' fails over, DIRECT = the origin)");
  cmd->add_option("--http-proxy-refresh", o->http.proxy_refresh_seconds,
                  "re-resolve cache host names every N seconds (default 60)")
      ->check(CLI::Range(1, 86400));
  cmd->add_option_function<std::string>(
         "--on-unreachable",
         [o](const std::string& v) {
           if (Status s = ParseUnreachableMode(v, &o->http.wait_while_unreachable); !s.ok())
             throw CLI::ValidationError("--on-unreachable", s.message());
         },
         "while the source and every cache are down: fail (EIO at once, default) or wait")
      ->type_name("fail|wait");
  cmd->add_flag("--s3-through-proxy", o->s3_through_proxy,
                "let signed S3 reads go through the --http-proxy caches (they serve cached "
                "blocks to anyone who reaches them)");
  cmd->add_option("--nfs-uid", o->nfs_uid, "uid presented to an NFS server")
      ->check(CLI::Range(0, 2147483647));
  cmd->add_option("--nfs-gid", o->nfs_gid, "gid presented to an NFS server")
      ->check(CLI::Range(0, 2147483647));
}

int Main(int argc, char** argv) {
  InitLogging();
  CLI::App app{"tierfs: a read-only FUSE view of remote data, cached in RAM and on local NVMe"};
  app.set_version_flag("--version", std::string("tierfs ") + TIERFS_VERSION);
  app.require_subcommand(1);
  const SizeValidator size_validator;

  MountConfig mc;
  std::string mount_opts;
  auto* mount = app.add_subcommand("mount", "Mount SOURCE read-only at MOUNTPOINT");
  mount->add_option("source", mc.source, "path, file://, http(s)://, s3:// or nfs:// URL")
      ->required();
  mount->add_option("mountpoint", mc.mountpoint, "an existing directory")->required();
  mount->add_option("--index", mc.index_path,
                    "prebuilt index directory, or a published one: URL or file of its pointer "
                    "(http(s)://.../latest, s3://.../latest); default: built under the cache dir");
  mount
      ->add_option("--index-refresh", mc.index_refresh,
                   "check for a new index revision every N seconds and switch to it live "
                   "(default: 60 for a published index, 0 = never otherwise)")
      ->check(CLI::Range(0L, kMaxIndexRefresh));
  mount->add_option("--cache-dir", mc.cache_dir, "cache directory (created 0700)");
  mount->add_option("--cache-size", mc.cache_size, "NVMe cache bound, e.g. 50G")
      ->transform(size_validator);
  mount->add_option("--ram-size", mc.ram_size, "RAM cache bound, e.g. 4G (0 disables)")
      ->transform(size_validator);
  mount->add_option("--block-size", mc.block_size, "cache block size, 64K..16M")
      ->transform(size_validator);
  mount->add_option("--threads", mc.threads, "FUSE worker threads (default: 4 per core)")
      ->check(CLI::Range(0u, kMaxThreads));
  mount
      ->add_option("--spin-us", mc.spin_us,
                   "microseconds an idle FUSE worker polls for the next request before it "
                   "sleeps (default: 200; 0: sleep at once)")
      ->check(CLI::Range(0u, kMaxSpinUs));
  mount->add_option("--log-level", mc.log_level, "trace|debug|info|warn|error");
  mount->add_flag("--rebuild-index", mc.rebuild_index, "rebuild the index under the cache dir");
  mount
      ->add_option_function<std::string>(
          "--passthrough",
          [&mc](const std::string& v) {
            if (Status s = ParsePassthroughMode(v); !s.ok())
              throw CLI::ValidationError("--passthrough", s.message());
            mc.passthrough = v;
          },
          "FUSE passthrough for fully cached files of 8 MiB or more: auto (when most of the "
          "data set's bytes are in such files), on, off")
      ->type_name("auto|on|off");
  mount->add_flag_callback(
      "--no-passthrough", [&mc] { mc.passthrough = "off"; }, "the same as --passthrough off");
  mount->add_flag("--fuse-uring", mc.fuse_uring,
                  "serve FUSE requests over io_uring (Linux 6.14+, fuse.enable_uring=Y); "
                  "/dev/fuse otherwise");
  mount->add_flag("-f,--foreground", mc.foreground, "stay in the foreground");
  mount->add_flag("-d,--debug", mc.debug, "log every FUSE request (implies -f)");
  mount->add_option("-o", mount_opts, "mount options: allow_other, cache_dir=, cache_size=, ...");
  mount->add_option("--metrics", mc.metrics_address,
                    "serve Prometheus /metrics at HOST:PORT (e.g. 127.0.0.1:9567)");
  // --config belongs to the top-level app (that is where CLI11 reads config files); mount
  // lets it fall through so `tierfs mount --config FILE` works.
  mount->fallthrough();
  mount->footer(
      "  --config FILE               TOML file of these options (keys = long names without\n"
      "                              '--', plus source and mountpoint); the command line wins\n");
  app.set_config("--config", "", "TOML file of mount options (keys = long option names)");
  app.config_formatter(std::make_shared<MountConfigFile>());
  app.allow_config_extras(CLI::config_extras_mode::error);
  AddStoreOptions(mount, &mc.store);

  std::string build_source, index_path, admin_mnt;
  bool stat_json = false;
  auto* index = app.add_subcommand("index", "Build or inspect an index");
  index->require_subcommand(1);
  auto* build = index->add_subcommand("build", "Walk SOURCE once and write an index");
  build->add_option("source", build_source, "path or URL")->required();
  build->add_option("--index", index_path, "index directory to write")->required();
  StoreOptions build_store;
  AddStoreOptions(build, &build_store);
  std::string write_manifest;
  build->add_option("--write-manifest", write_manifest, "also write the files as a manifest");
  ListMode list_mode = ListMode::kAuto;
  build
      ->add_option_function<std::string>(
          "--list-mode",
          [&list_mode](const std::string& v) {
            if (v == "auto") {
              list_mode = ListMode::kAuto;
            } else if (v == "flat") {
              list_mode = ListMode::kFlat;
            } else if (v == "tree") {
              list_mode = ListMode::kTree;
            } else {
              throw CLI::ValidationError("--list-mode",
                                         "must be auto, flat or tree, not '" + v + "'");
            }
          },
          "flat: one key-ordered listing of every key, split over key ranges in parallel (S3); "
          "tree: one listing per directory; auto (default): flat where the source can")
      ->type_name("auto|flat|tree");
  std::string publish_dest;
  auto* publish = index->add_subcommand(
      "publish", "Pack an index into DEST/<sha256>.tierfs-index and point DEST/latest at it");
  publish->add_option("--index", index_path, "index directory to publish")->required();
  publish
      ->add_option("dest", publish_dest,
                   "a directory (served by any web server) or s3://bucket/prefix")
      ->required();
  StoreOptions publish_store;
  AddStoreOptions(publish, &publish_store);
  auto* refresh = index->add_subcommand(
      "refresh", "Make a mount check for a new index revision now and switch to it");
  refresh->add_option("mountpoint", admin_mnt, "a tierfs mountpoint")->required();
  auto* stat = index->add_subcommand("stat", "Show what an index holds");
  stat->add_option("--index", index_path, "index directory")->required();
  stat->add_flag("--json", stat_json, "print JSON");

  bool stats_json = false, stats_watch = false;
  auto* stats = app.add_subcommand("stats", "Show a mount's cache and remote counters");
  stats->add_option("mountpoint", admin_mnt, "a tierfs mountpoint")->required();
  stats->add_flag("--json", stats_json, "print JSON");
  stats->add_flag("--watch", stats_watch, "refresh every 2 seconds");
  std::vector<std::string> warm_paths;
  std::string warm_list;
  unsigned warm_threads = 8;
  auto* warm = app.add_subcommand("warm", "Pull files into the cache (whole mount by default)");
  warm->add_option("mountpoint", admin_mnt, "a tierfs mountpoint")->required();
  warm->add_option("paths", warm_paths, "files or directories (relative to the mount)");
  warm->add_option("--list", warm_list, "a file listing paths, one per line");
  warm->add_option("--threads", warm_threads, "parallel files")->check(CLI::Range(1, 256));
  std::string fluid_config = kFluidConfigPath;
  bool fluid_dry_run = false;
  auto* fluid =
      app.add_subcommand("fluid-mount", "Entrypoint for a Fluid ThinRuntime FUSE container");
  fluid->add_option("config", fluid_config, "Fluid's config.json")->capture_default_str();
  fluid->add_flag("--dry-run", fluid_dry_run, "print the tierfs mount command instead of mounting");
  auto* unmount = app.add_subcommand("unmount", "Unmount and wait for the daemon to exit");
  unmount->add_option("mountpoint", admin_mnt, "a tierfs mountpoint")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ConfigError& e) {
    std::string what = e.what();
    // CLI11 says "INI was not able to parse mount.KEY"; name the key as the user wrote it.
    const std::string unknown = "not able to parse mount.";
    if (auto at = what.find(unknown); at != std::string::npos) {
      what = "config file: unknown key '" + what.substr(at + unknown.size()) + "'";
    }
    std::fprintf(stderr, "tierfs: %s\n", what.c_str());
    return 2;
  } catch (const CLI::ParseError& e) {
    std::fprintf(stderr, "tierfs: %s\n", e.what());
    return 2;
  }

  if (*mount) {
    if (!mount_opts.empty()) {
      if (Status s = ApplyMountOptions(mount_opts, &mc); !s.ok()) return Fail(s);
    }
    if (mc.debug) mc.foreground = true;
    return RunMount(std::move(mc));
  }
  if (*build) {
    return RunIndexBuild(build_source, index_path, build_store, write_manifest, list_mode);
  }
  if (*stats) return RunStats(admin_mnt, stats_json, stats_watch);
  if (*warm) return RunWarm(admin_mnt, warm_paths, warm_list, warm_threads);
  if (*unmount) return RunUnmount(admin_mnt);
  if (*fluid) return RunFluidMount(fluid_config, fluid_dry_run);
  if (*stat) return RunIndexStat(index_path, stat_json);
  if (*publish) return RunIndexPublish(index_path, publish_dest, publish_store);
  if (*refresh) return RunIndexRefresh(admin_mnt);
  return 2;
}

}  // namespace
}  // namespace tierfs

int main(int argc, char** argv) {
  try {
    return tierfs::Main(argc, argv);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "tierfs: %s\n", e.what());
    return 1;
  }
}
