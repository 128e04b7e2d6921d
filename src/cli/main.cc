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
#include "cli/mount_options.h"
#include "common/log.h"
#include "common/size.h"
#include "metadata/index.h"
#include "ufs/manifest_store.h"
#include "ufs/store.h"

namespace tierfs {
namespace {

int Main(int argc, char** argv) {
  InitLogging();
  CLI::App app{"tierfs: a read-only FUSE view of remote data, cached in RAM and on local NVMe"};
  app.set_version_flag("--version", std::string("tierfs ") + TIERFS_VERSION);
  app.require_subcommand(1);

  MountConfig mc;
  std::string mount_opts;
  auto* mount = app.add_subcommand(
      "mount",
      "Mount SOURCE read-only at MOUNTPOINT (or several: --source PATH=URL ... MOUNTPOINT)");
  // Named apart from --source, which a config file's `source = ...` sets.
  mount->add_option("SOURCE", mc.source, "path, file://, http(s)://, s3:// or nfs:// URL");
  mount->add_option("mountpoint", mc.mountpoint, "an existing directory");
  AddMountOptions(mount, &mc, /*store_only=*/false);
  mount->add_option("-o", mount_opts, "mount options: allow_other, cache_dir=, cache_size=, ...");
  // --config belongs to the top-level app (that is where CLI11 reads config files); mount
  // lets it fall through so `tierfs mount --config FILE` works.
  mount->fallthrough();
  mount->footer(
      "  --config FILE               TOML file of these options (keys = long names without\n"
      "                              '--', plus source and mountpoint); the command line wins\n");
  AddMountConfigFile(&app);

  std::string build_source, index_path, admin_mnt;
  bool stat_json = false;
  auto* index = app.add_subcommand("index", "Build or inspect an index");
  index->require_subcommand(1);
  auto* build = index->add_subcommand("build", "Walk SOURCE once and write an index");
  build->add_option("source", build_source, "path or URL (or several: --source PATH=URL ...)");
  build->add_option("--index", index_path, "index directory to write")->required();
  MountConfig build_config;
  AddMountOptions(build, &build_config, /*store_only=*/true);
  build
      ->add_option_function<std::vector<std::string>>(
          "--source",
          [&build_config](const std::vector<std::string>& values) {
            for (const std::string& v : values) {
              if (Status s = ApplyMountOption(*FindMountOption("source"), v, &build_config);
                  !s.ok()) {
                throw CLI::ValidationError("--source", s.message());
              }
            }
          },
          "a source of a namespace, PATH=URL (repeat for several), as `tierfs mount` takes it")
      ->type_name("PATH=URL")
      ->type_size(1)
      ->expected(1)
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
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
  MountConfig publish_config;
  AddMountOptions(publish, &publish_config, /*store_only=*/true);
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
  unsigned warm_threads = 64;
  auto* warm = app.add_subcommand("warm", "Pull files into the cache (whole mount by default)");
  warm->add_option("mountpoint", admin_mnt, "a tierfs mountpoint")->required();
  warm->add_option("paths", warm_paths,
                   "files or directories in the mount: relative, /data/x, or as the Dataset "
                   "names them (/spark/x)");
  warm->add_option("--list", warm_list, "a file listing paths, one per line");
  warm->add_option("--threads", warm_threads,
                   "single files (a --list, file arguments) asked for at once (default: 64); "
                   "the daemon warms each directory in one request at its fetch budget")
      ->check(CLI::Range(1, 256));
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
  } catch (const std::invalid_argument&) {  // CLI11 converting "--flag=VALUE"
    std::fprintf(stderr, "tierfs: a flag takes no value (or true/false)\n");
    return 2;
  }

  if (*mount) {
    if (!mount_opts.empty()) {
      if (Status s = ApplyMountOptions(mount_opts, &mc); !s.ok()) return Fail(s);
    }
    if (mc.mountpoint.empty() && !mc.sources.empty()) {
      mc.mountpoint = mc.source;  // `--source P=URL ... MOUNTPOINT`: one word, the mountpoint
      mc.source.clear();
    }
    if (!mc.source.empty() && mc.sources.size() == 1 && mc.sources[0].path == "/" &&
        mc.sources[0].options.empty()) {
      mc.sources.clear();  // a config file's `source = ...`: the command line wins
    }
    if (mc.mountpoint.empty()) {
      return Fail(Status::Invalid("a MOUNTPOINT is required (tierfs mount SOURCE MOUNTPOINT)"));
    }
    return RunMount(std::move(mc));
  }
  if (*build) {
    build_config.source = build_source;
    return RunIndexBuild(std::move(build_config), index_path, write_manifest, list_mode);
  }
  if (*stats) return RunStats(admin_mnt, stats_json, stats_watch);
  if (*warm) return RunWarm(admin_mnt, warm_paths, warm_list, warm_threads);
  if (*unmount) return RunUnmount(admin_mnt);
  if (*fluid) return RunFluidMount(fluid_config, fluid_dry_run);
  if (*stat) return RunIndexStat(index_path, stat_json);
  if (*publish) return RunIndexPublish(index_path, publish_dest, publish_config.store);
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
