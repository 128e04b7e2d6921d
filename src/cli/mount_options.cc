#include "cli/mount_options.h"

#include <CLI/CLI.hpp>
#include <algorithm>
#include <nlohmann/json.hpp>
#include <sstream>
#include <vector>

#include "common/log.h"
#include "common/size.h"
#include "metadata/archive.h"
#include "ufs/namespace_store.h"

namespace tierfs {
namespace {

constexpr const char* kSourceTableFlag = "source-table";

// "/spark=https://..." → a source at /spark; anything else (a URL, a path) → at "/".
Status AddSource(MountConfig* c, const std::string& text) {
  SourceSpec spec;
  const size_t eq = text.find('=');
  if (!text.empty() && text[0] == '/' && eq != std::string::npos &&
      text.substr(0, eq).find("://") == std::string::npos) {
    spec.path = text.substr(0, eq);
    spec.url = text.substr(eq + 1);
  } else {
    spec.url = text;
  }
  if (spec.url.empty()) return Status::Invalid("'" + text + "' names no source URL");
  c->sources.push_back(std::move(spec));
  return Status::Ok();
}

// "tar,zip" (or tar+zip, for -o lists), "tar", "zip", "off".
Status SetArchives(MountConfig* c, const std::string& text) {
  unsigned kinds = 0;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t end = text.find_first_of(",+", pos);
    if (end == std::string::npos) end = text.size();
    const std::string kind = text.substr(pos, end - pos);
    pos = end + 1;
    if (kind == "tar") {
      kinds |= ArchiveMask(ArchiveKind::kTar);
    } else if (kind == "zip") {
      kinds |= ArchiveMask(ArchiveKind::kZip);
    } else if (kind != "off" && kind != "none") {
      return Status::Invalid("must list tar and/or zip (tar,zip or tar+zip) or be off, not '" +
                             text + "'");
    }
  }
  c->store.archives = kinds;
  return Status::Ok();
}

// clang-format off
// One row per option; the order is the order of `tierfs mount --help`.
const MountOption kOptions[] = {
    {"source", OptionType::kText,
     "a source: URL or path (at the mount's root), or PATH=URL to serve it under PATH; "
     "repeat for several (PATH=URL each, as a Fluid Dataset's mounts)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { return AddSource(c, v.text); },
     false, true, nullptr, true},
    {"index", OptionType::kText,
     "prebuilt index directory, or a published one: URL or file of its pointer "
     "(http(s)://.../latest, s3://.../latest); default: built under the cache dir",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->index_path = v.text; return Status::Ok(); }},
    {"index-refresh", OptionType::kNumber,
     "check for a new index revision every N seconds and switch to it live "
     "(default: 60 for a published index, 0 = never otherwise)",
     0, kMaxIndexRefresh, nullptr, [](MountConfig* c, const OptionValue& v) { c->index_refresh = v.number; return Status::Ok(); }},
    {"cache-dir", OptionType::kText, "cache directory (created 0700)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->cache_dir = v.text; return Status::Ok(); }},
    {"cache-size", OptionType::kSize, "NVMe cache bound, e.g. 50G",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->cache_size = v.size; return Status::Ok(); }},
    {"ram-size", OptionType::kSize, "RAM cache bound, e.g. 4G (0 disables)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->ram_size = v.size; return Status::Ok(); }},
    {"block-size", OptionType::kSize, "cache block size, 64K..16M",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->block_size = v.size; return Status::Ok(); }},
    {"threads", OptionType::kNumber, "FUSE worker threads (default: 4 per core)",
     0, kMaxThreads, nullptr, [](MountConfig* c, const OptionValue& v) { c->threads = static_cast<unsigned>(v.number); return Status::Ok(); }},
    {"spin-us", OptionType::kNumber,
     "microseconds an idle FUSE worker polls for the next request before it sleeps "
     "(default: 200; 0: sleep at once)",
     0, kMaxSpinUs, nullptr, [](MountConfig* c, const OptionValue& v) { c->spin_us = static_cast<unsigned>(v.number); return Status::Ok(); }},
    {"fetch-budget", OptionType::kNumber,
     "origin requests in flight, shared by reads (first), warm and read-ahead (default: 64; "
     "a far origin is paced by requests in flight, not by readers)",
     1, kMaxFetchBudget, nullptr, [](MountConfig* c, const OptionValue& v) { c->fetch_budget = static_cast<unsigned>(v.number); return Status::Ok(); }},
    {"prefetch", OptionType::kChoice,
     "off (default), or dataset: once readers are spread over the tree (a shuffled epoch), "
     "fetch the rest of the data set into the cache's free room in the background",
     0, 0, "off|dataset", [](MountConfig* c, const OptionValue& v) { c->prefetch = v.text; return Status::Ok(); }},
    {"log-level", OptionType::kChoice, "log level (default: info)",
     0, 0, "trace|debug|info|warn|error|critical|off", [](MountConfig* c, const OptionValue& v) { c->log_level = v.text; return Status::Ok(); }},
    {"rebuild-index", OptionType::kFlag, "rebuild the index under the cache dir",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->rebuild_index = true; return Status::Ok(); }},
    {"passthrough", OptionType::kChoice,
     "FUSE passthrough for fully cached files of 8 MiB or more: auto (when most of the data "
     "set's bytes are in such files), on, off",
     0, 0, "auto|on|off", [](MountConfig* c, const OptionValue& v) { c->passthrough = v.text; return Status::Ok(); }},
    {"no-passthrough", OptionType::kFlag, "the same as --passthrough off",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->passthrough = "off"; return Status::Ok(); }},
    {"fuse-uring", OptionType::kFlag,
     "serve FUSE requests over io_uring (Linux 6.14+, fuse.enable_uring=Y); /dev/fuse otherwise",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->fuse_uring = true; return Status::Ok(); }},
    {"foreground", OptionType::kFlag, "stay in the foreground",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->foreground = true; return Status::Ok(); },
     false, false, "-f"},
    {"debug", OptionType::kFlag, "log every FUSE request (implies -f)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->debug = c->foreground = true; return Status::Ok(); },
     false, false, "-d"},
    {"metrics", OptionType::kText, "serve Prometheus /metrics at HOST:PORT (e.g. 127.0.0.1:9567)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->metrics_address = v.text; return Status::Ok(); }},
    // Remote access: also options of `index build` and `index publish`.
    {"manifest", OptionType::kText,
     "file or URL listing 'path size [etag]' per line (or JSON): no crawl",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.manifest = v.text; return Status::Ok(); }, true},
    {"s3-endpoint", OptionType::kText, "S3 endpoint URL (default: AWS for the region)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.s3_endpoint = v.text; return Status::Ok(); }, true},
    {"s3-region", OptionType::kText, "S3 region (default: $AWS_REGION, ~/.aws/config, us-east-1)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.s3_region = v.text; return Status::Ok(); }, true},
    {"s3-path-style", OptionType::kFlag, "address buckets as ENDPOINT/BUCKET",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->store.s3_path_style = true; return Status::Ok(); }, true},
    {"no-sign-request", OptionType::kFlag, "anonymous S3 requests",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->store.s3_no_sign = true; return Status::Ok(); }, true},
    {"s3-credentials-file", OptionType::kText, "AWS credentials file",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.s3_credentials_file = v.text; return Status::Ok(); }, true},
    {"s3-imds-v1", OptionType::kFlag,
     "let the EC2 instance-metadata credentials fall back to IMDSv1",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->store.s3_imds_v1 = true; return Status::Ok(); }, true},
    {"ca-file", OptionType::kText, "CA bundle for TLS verification",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.ca_file = v.text; return Status::Ok(); }, true},
    {"insecure", OptionType::kFlag, "do not verify TLS certificates",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->store.http.insecure = true; return Status::Ok(); }, true},
    {"timeout", OptionType::kNumber, "per-request timeout, ms",
     100, 3600000, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.request_timeout_ms = static_cast<long>(v.number); return Status::Ok(); }, true},
    {"connect-timeout", OptionType::kNumber, "connect timeout, ms",
     10, 600000, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.connect_timeout_ms = static_cast<long>(v.number); return Status::Ok(); }, true},
    {"retries", OptionType::kNumber, "attempts per request",
     1, 20, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.max_attempts = static_cast<int>(v.number); return Status::Ok(); }, true},
    {"http-proxy", OptionType::kText,
     "cluster HTTP caches, e.g. 'http://c1:3128|http://c2:3128;DIRECT' ('|' shares blocks "
     "among caches, ';' fails over, DIRECT = the origin)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.proxy_list = v.text; return Status::Ok(); }, true},
    {"http-proxy-placement", OptionType::kChoice,
     "object (default): all blocks of a file on one cache, its first read alone (right for any "
     "cache, stock nginx included); block: each block on its own cache (caches that keep ranges "
     "per block, docs/cluster.md: a large file spreads over them)",
     0, 0, "object|block", [](MountConfig* c, const OptionValue& v) { c->store.http.place_by_object = v.text == "object"; return Status::Ok(); }, true},
    {"http-proxy-refresh", OptionType::kNumber,
     "re-resolve cache host names every N seconds (default 60)",
     1, 86400, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.http.proxy_refresh_seconds = static_cast<long>(v.number); return Status::Ok(); }, true},
    {"on-unreachable", OptionType::kChoice,
     "while the source and every cache are down: fail (EIO at once, default) or wait",
     0, 0, "fail|wait", [](MountConfig* c, const OptionValue& v) { c->store.http.wait_while_unreachable = v.text == "wait"; return Status::Ok(); }, true},
    {"s3-through-proxy", OptionType::kFlag,
     "let signed S3 reads go through the --http-proxy caches (they serve cached blocks to "
     "anyone who reaches them)",
     0, 0, nullptr, [](MountConfig* c, const OptionValue&) { c->store.s3_through_proxy = true; return Status::Ok(); }, true},
    {"archives", OptionType::kText,
     "index builds serve these archives as directories of their members: tar, zip, or "
     "tar,zip (tar+zip in -o lists); off by default",
     0, 0, nullptr, [](MountConfig* c, const OptionValue& v) { return SetArchives(c, v.text); }, true},
    {"archive-names", OptionType::kChoice,
     "keep: the directory of x.tar's members is x.tar (the archive itself is not shown); "
     "strip: it is x, and x.tar stays readable next to it",
     0, 0, "keep|strip", [](MountConfig* c, const OptionValue& v) { c->store.archive_strip_suffix = v.text == "strip"; return Status::Ok(); }, true},
    {"nfs-uid", OptionType::kNumber, "uid presented to an NFS server",
     0, 2147483647, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.nfs_uid = static_cast<int>(v.number); return Status::Ok(); }, true},
    {"nfs-gid", OptionType::kNumber, "gid presented to an NFS server",
     0, 2147483647, nullptr, [](MountConfig* c, const OptionValue& v) { c->store.nfs_gid = static_cast<int>(v.number); return Status::Ok(); }, true},
};
// clang-format on

// Options mount(8) and systemd use themselves, or that a read-only FUSE mount sets itself:
// -o drops them.
bool IsMountHelperOption(const std::string& key) {
  static constexpr std::string_view kKeys[] = {
      "_netdev",  "nofail", "noauto", "auto",  "user",    "users",   "nouser",
      "defaults", "rw",     "ro",     "dev",   "nodev",   "suid",    "nosuid",
      "exec",     "noexec", "async",  "atime", "noatime", "relatime"};
  for (std::string_view k : kKeys) {
    if (key == k) return true;
  }
  return key.rfind("x-", 0) == 0 || key.rfind("comment", 0) == 0;
}

// Reads `tierfs mount --config FILE`: every key lands in the [mount] section, so CLI11
// applies it to the mount subcommand's flags; options given on the command line win.
// Each [[source]] table (path, url, and that source's remote-access options) becomes one
// value of the hidden --source-table flag, a JSON object.
class MountConfigFile : public CLI::ConfigTOML {
 public:
  std::vector<CLI::ConfigItem> from_config(std::istream& input) const override {
    // The [[source]] tables are taken out here (CLI11 merges repeated tables); the rest
    // goes to CLI11's TOML reader.
    std::stringstream rest;
    std::vector<nlohmann::json> tables;
    bool in_table = false;
    for (std::string line; std::getline(input, line);) {
      std::string t = Trim(line);
      if (!t.empty() && t[0] == '[') {
        in_table = t == "[[source]]";
        if (in_table) {
          tables.emplace_back(nlohmann::json::object());
          continue;
        }
      }
      if (!in_table) {
        rest << line << "\n";
        continue;
      }
      if (t.empty() || t[0] == '#') continue;
      const size_t eq = t.find('=');
      if (eq == std::string::npos) {
        tables.back()[t] = "true";
        continue;
      }
      std::string value = Trim(t.substr(eq + 1));
      if (value.size() >= 2 && (value[0] == '"' || value[0] == '\'')) {
        value = value.substr(1, value.find(value[0], 1) - 1);
      } else if (const size_t hash = value.find('#'); hash != std::string::npos) {
        value = Trim(value.substr(0, hash));
      }
      tables.back()[Trim(t.substr(0, eq))] = value;
    }
    auto items = CLI::ConfigTOML::from_config(rest);
    for (auto& item : items) {
      if (item.parents.empty()) item.parents.push_back("mount");
    }
    if (!tables.empty()) {  // one item: CLI11 applies the first item of a name only
      CLI::ConfigItem item;
      item.parents = {"mount"};
      item.name = kSourceTableFlag;
      for (const nlohmann::json& table : tables) item.inputs.push_back(table.dump());
      items.push_back(std::move(item));
    }
    return items;
  }

 private:
  static std::string Trim(const std::string& s) {
    const size_t a = s.find_first_not_of(" \t\r");
    if (a == std::string::npos) return {};
    return s.substr(a, s.find_last_not_of(" \t\r") - a + 1);
  }
};

// One [[source]] table, as MountConfigFile passes it.
Status AddSourceTable(MountConfig* c, const std::string& json) {
  nlohmann::json t = nlohmann::json::parse(json, nullptr, false);
  if (!t.is_object()) return Status::Invalid("malformed [[source]] table");
  SourceSpec spec;
  for (const auto& [key, value] : t.items()) {
    const std::string v = value.is_string() ? value.get<std::string>() : value.dump();
    if (key == "path") {
      spec.path = v;
    } else if (key == "url") {
      spec.url = v;
    } else {
      spec.options.emplace_back(key, v);
    }
  }
  if (spec.url.empty()) {
    return Status::Invalid(
        "a [[source]] table needs url = \"...\" (path = \"/...\" too, for "
        "several)");
  }
  c->sources.push_back(std::move(spec));
  return Status::Ok();
}

}  // namespace

std::span<const MountOption> MountOptionTable() { return kOptions; }

const MountOption* FindMountOption(std::string_view key) {
  std::string name(key);
  for (char& ch : name) {
    if (ch == '_') ch = '-';
  }
  for (const MountOption& o : kOptions) {
    if (name == o.name) return &o;
  }
  return nullptr;
}

std::string FstabKey(const MountOption& option) {
  std::string key = option.name;
  for (char& ch : key) {
    if (ch == '-') ch = '_';
  }
  return key;
}

Status ApplyMountOption(const MountOption& option, const std::string& value, MountConfig* config) {
  OptionValue v;
  switch (option.type) {
    case OptionType::kText:
      v.text = value;
      break;
    case OptionType::kSize: {
      auto size = ParseSize(value);
      if (!size.ok()) return size.status();
      v.size = *size;
      break;
    }
    case OptionType::kNumber: {
      size_t used = 0;
      try {
        v.number = std::stoll(value, &used);
      } catch (...) {
        used = 0;
      }
      if (used == 0 || used != value.size()) {
        return Status::Invalid("'" + value + "' is not a number");
      }
      if (v.number < option.lo || v.number > option.hi) {
        return Status::Invalid(value + " not in range " + std::to_string(option.lo) + " to " +
                               std::to_string(option.hi));
      }
      break;
    }
    case OptionType::kChoice: {
      std::vector<std::string> all;
      std::stringstream ss(option.choices);
      for (std::string c; std::getline(ss, c, '|');) all.push_back(c);
      if (std::find(all.begin(), all.end(), value) == all.end()) {
        std::string list;  // "a, b or c"
        for (size_t i = 0; i < all.size(); ++i) {
          list += (i == 0 ? "" : i + 1 == all.size() ? " or " : ", ") + all[i];
        }
        return Status::Invalid("must be " + list + ", not '" + value + "'");
      }
      v.text = value;
      break;
    }
    case OptionType::kFlag:
      if (value == "false" || value == "0" || value == "no") return Status::Ok();
      if (!value.empty() && value != "true" && value != "1" && value != "yes") {
        return Status::Invalid("takes no value (or true/false), not '" + value + "'");
      }
      break;
  }
  return option.set(config, v);
}

Status ApplyMountOptions(const std::string& options, MountConfig* config) {
  std::string to_libfuse;
  std::stringstream ss(options);
  std::string opt;
  while (std::getline(ss, opt, ',')) {
    if (opt.empty()) continue;
    const size_t eq = opt.find('=');
    const std::string key = opt.substr(0, eq);
    const std::string value = eq == std::string::npos ? "" : opt.substr(eq + 1);
    if (const MountOption* o = FindMountOption(key); o != nullptr && o->fstab) {
      if (Status s = ApplyMountOption(*o, value, config); !s.ok()) {
        return Status::Invalid("option " + key + ": " + s.message());
      }
    } else if (!IsMountHelperOption(key)) {
      if (!to_libfuse.empty()) to_libfuse += ",";
      to_libfuse += opt;
    }
  }
  if (!to_libfuse.empty()) {
    config->fuse_options += (config->fuse_options.empty() ? "" : ",") + to_libfuse;
  }
  return Status::Ok();
}

Status ResolveSources(MountConfig* config) {
  if (!config->source.empty()) {
    if (!config->sources.empty()) {
      return Status::Invalid("give the source as SOURCE or as --source, not both");
    }
    return Status::Ok();
  }
  if (config->sources.empty()) {
    return Status::Invalid(
        "no source: give SOURCE MOUNTPOINT, or --source PATH=URL (repeated) "
        "and MOUNTPOINT");
  }
  std::vector<std::string> prefixes;
  for (SourceSpec& s : config->sources) {
    auto prefix = NormalizeSourcePath(s.path);
    if (!prefix.ok()) return prefix.status();
    s.path = "/" + *prefix;
    prefixes.push_back(*prefix);
  }
  TIERFS_RETURN_IF_ERROR(CheckSourcePaths(prefixes));
  for (SourceSpec& s : config->sources) {
    const std::string where = "source " + s.path + ": ";
    MountConfig own;
    own.store = config->store;
    for (const auto& [key, value] : s.options) {
      const MountOption* o = FindMountOption(key);
      if (o == nullptr) return Status::Invalid(where + "unknown option '" + key + "'");
      if (!o->store) {
        return Status::Invalid(where + "option " + key +
                               " applies to the whole mount, not to one source");
      }
      if (Status st = ApplyMountOption(*o, value, &own); !st.ok()) {
        return Status::Invalid(where + "option " + key + ": " + st.message());
      }
    }
    s.store = own.store;
    if (!s.s3_access_key_id.empty()) {
      s.store.s3_access_key_id = s.s3_access_key_id;
      s.store.s3_secret_access_key = s.s3_secret_access_key;
      s.store.s3_session_token = s.s3_session_token;
    }
  }
  if (config->sources.size() == 1 && config->sources[0].path == "/") {
    config->source = config->sources[0].url;
    config->store = config->sources[0].store;
    config->sources.clear();
  }
  return Status::Ok();
}

void AddMountOptions(CLI::App* cmd, MountConfig* config, bool store_only) {
  if (!store_only) {
    cmd->add_option_function<std::vector<std::string>>(
           std::string("--") + kSourceTableFlag,
           [config](const std::vector<std::string>& tables) {
             for (const std::string& t : tables) {
               if (Status s = AddSourceTable(config, t); !s.ok()) {
                 throw CLI::ValidationError("[[source]]", s.message());
               }
             }
           },
           "")
        ->group("")
        ->type_size(1)
        ->expected(1)
        ->allow_extra_args(false)
        ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
  }
  for (const MountOption& o : kOptions) {
    if (store_only && !o.store) continue;
    std::string flag = std::string("--") + o.name;
    if (o.short_name != nullptr) flag = std::string(o.short_name) + "," + flag;
    const MountOption* row = &o;
    auto apply = [row, config](const std::string& value) {
      if (Status s = ApplyMountOption(*row, value, config); !s.ok()) {
        throw CLI::ValidationError(std::string("--") + row->name, s.message());
      }
    };
    if (o.type == OptionType::kFlag) {
      // A flag counts its uses; in a config file "key = false" counts none.
      cmd->add_flag_function(
          flag,
          [apply](int64_t count) {
            if (count > 0) apply("");
          },
          o.help);
      continue;
    }
    if (o.repeated) {
      // One value per use (never greedy: `--source A=B MOUNTPOINT` leaves the mountpoint).
      cmd->add_option_function<std::vector<std::string>>(
             flag,
             [apply](const std::vector<std::string>& values) {
               for (const std::string& v : values) apply(v);
             },
             o.help)
          ->type_name("TEXT")
          ->type_size(1)
          ->expected(1)
          ->allow_extra_args(false)
          ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll);
      continue;
    }
    const char* type_name = o.type == OptionType::kSize     ? "SIZE"
                            : o.type == OptionType::kNumber ? "N"
                            : o.type == OptionType::kChoice ? o.choices
                                                            : "TEXT";
    cmd->add_option_function<std::string>(flag, apply, o.help)->type_name(type_name);
  }
}

void AddMountConfigFile(CLI::App* app) {
  app->set_config("--config", "", "TOML file of mount options (keys = long option names)");
  app->config_formatter(std::make_shared<MountConfigFile>());
  app->allow_config_extras(CLI::config_extras_mode::error);
}

}  // namespace tierfs

namespace tierfs {

BuildOptions IndexBuildOptions(const MountConfig& config) {
  BuildOptions b;
  auto label = [](const StoreOptions& s) {
    if (s.archives == 0) return std::string();
    std::string l;
    if (s.archives & ArchiveMask(ArchiveKind::kTar)) l += "tar";
    if (s.archives & ArchiveMask(ArchiveKind::kZip)) l += l.empty() ? "zip" : "+zip";
    return l + (s.archive_strip_suffix ? " strip" : "");
  };
  auto options = [](const StoreOptions& s) {
    return ArchiveOptions{s.archives, s.archive_strip_suffix};
  };
  if (config.sources.empty()) {
    b.archive_label = label(config.store);
    if (config.store.archives != 0) {
      b.archives = [a = options(config.store)](std::string_view) { return a; };
    }
    return b;
  }
  // A namespace: each source's own, by the key prefix it is served under.
  std::vector<std::pair<std::string, ArchiveOptions>> by_prefix;
  for (const SourceSpec& s : config.sources) {
    if (s.store.archives == 0) continue;
    by_prefix.emplace_back(s.path.substr(1), options(s.store));
    b.archive_label += (b.archive_label.empty() ? "" : ";") + s.path + "=" + label(s.store);
  }
  if (by_prefix.empty()) return b;
  b.archives = [by_prefix](std::string_view key) {
    for (const auto& [prefix, a] : by_prefix) {
      if (prefix.empty() ||
          (key.size() > prefix.size() && key.starts_with(prefix) && key[prefix.size()] == '/')) {
        return a;
      }
    }
    return ArchiveOptions{};
  };
  return b;
}

}  // namespace tierfs
