#include "cli/fluid.h"

#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "cli/mount_options.h"
#include "ufs/namespace_store.h"

namespace tierfs {
namespace {

using json = nlohmann::json;
using OptionMap = std::map<std::string, std::string>;  // key (with '_') → value

// The field of `spec` an encrypted S3 option sets, or nullptr for other keys.
std::string* SecretField(SourceSpec* spec, const std::string& key) {
  if (key == "aws_access_key_id") return &spec->s3_access_key_id;
  if (key == "aws_secret_access_key") return &spec->s3_secret_access_key;
  if (key == "aws_session_token") return &spec->s3_session_token;
  return nullptr;
}

bool IsSecret(const std::string& key) {
  SourceSpec probe;
  return SecretField(&probe, key) != nullptr;
}

Result<std::string> ReadSecretFile(const std::string& key, const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in)
    return Status::FromErrno(errno, "option " + key + ": cannot read secret file '" + path + "'");
  // A secret is short; a path to something endless (/dev/zero) must not eat the memory.
  constexpr size_t kMaxSecret = 64 << 10;
  std::string v(kMaxSecret + 1, '\0');
  in.read(v.data(), static_cast<std::streamsize>(v.size()));
  v.resize(static_cast<size_t>(in.gcount()));
  if (v.size() > kMaxSecret)
    return Status::Invalid("option " + key + ": secret file '" + path + "' is over 64 KiB");
  while (!v.empty() && (v.back() == '\n' || v.back() == '\r' || v.back() == ' ')) v.pop_back();
  if (v.empty()) return Status::Invalid("option " + key + ": secret file '" + path + "' is empty");
  return v;
}

// A secret option's value: the file it names (Fluid's configmap storage), or the value
// itself (Fluid's secret storage).
Result<std::string> SecretValue(const std::string& key, const std::string& value) {
  if (!value.empty() && value[0] == '/') return ReadSecretFile(key, value);
  if (value.empty()) return Status::Invalid("option " + key + " is empty");
  return value;
}

std::string ShellQuote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@%+=:,./_-") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string KeyOf(const std::string& name) {
  std::string key = name;
  for (char& c : key) {
    if (c == '-') c = '_';
  }
  return key;
}

// Folds one options object into `options`.
Status CollectOptions(const json& obj, const std::string& where, OptionMap* options) {
  if (obj.is_null()) return Status::Ok();
  if (!obj.is_object()) return Status::Invalid("config.json: " + where + " must be an object");
  for (const auto& [k, v] : obj.items()) {
    const std::string key = KeyOf(k);
    if (key.empty() || key.find_first_of(",= ") != std::string::npos) {
      return Status::Invalid("config.json: " + where + " has a bad option name '" + k + "'");
    }
    std::string value;
    if (v.is_string()) {
      value = v.get<std::string>();
    } else if (v.is_boolean()) {
      value = v.get<bool>() ? "true" : "false";
    } else if (v.is_number()) {
      value = v.dump();
    } else {
      return Status::Invalid("config.json: " + where + "." + k + " must be a string");
    }
    if (value.find(',') != std::string::npos) {
      return Status::Invalid("config.json: " + where + "." + k + " must not contain ','");
    }
    (*options)[key] = value;
  }
  return Status::Ok();
}

// Folds a Dataset's encryptOptions list ({name, valueFrom: {secretKeyRef: {name, key}}})
// into `options` as the paths where Fluid mounts those secrets.
Status CollectEncryptOptions(const json& list, const std::string& where,
                             const std::string& secrets_dir, OptionMap* options) {
  if (list.is_null()) return Status::Ok();
  if (!list.is_array()) return Status::Invalid("config.json: " + where + " must be a list");
  for (size_t i = 0; i < list.size(); ++i) {
    const std::string at = where + "[" + std::to_string(i) + "]";
    const json& e = list[i];
    const json* ref = nullptr;
    if (e.is_object() && e.contains("valueFrom") && e["valueFrom"].is_object() &&
        e["valueFrom"].contains("secretKeyRef")) {
      ref = &e["valueFrom"]["secretKeyRef"];
    }
    if (!e.is_object() || !e.contains("name") || !e["name"].is_string() || ref == nullptr ||
        !ref->is_object() || !ref->contains("name") || !(*ref)["name"].is_string() ||
        !ref->contains("key") || !(*ref)["key"].is_string()) {
      return Status::Invalid("config.json: " + at +
                             " must be {name, valueFrom: {secretKeyRef: {name, key}}}");
    }
    const std::string secret = (*ref)["name"].get<std::string>();
    const std::string key = (*ref)["key"].get<std::string>();
    for (const std::string& part : {secret, key}) {
      if (part.empty() || part == "." || part == ".." || part.find('/') != std::string::npos) {
        return Status::Invalid("config.json: " + at + " names a bad secret '" + part + "'");
      }
    }
    (*options)[KeyOf(e["name"].get<std::string>())] = secrets_dir + "/" + secret + "/" + key;
  }
  return Status::Ok();
}

// Where Fluid lays out mounts[i]: its `path`, else /{name}.
Result<std::string> MountPath(const json& m, const std::string& where) {
  if (m.contains("path") && !m["path"].is_null()) {
    if (!m["path"].is_string())
      return Status::Invalid("config.json: " + where + ".path must be a string");
    const std::string path = m["path"].get<std::string>();
    if (!path.empty()) return path;
  }
  if (!m.contains("name") || !m["name"].is_string() || m["name"].get<std::string>().empty()) {
    return Status::Invalid("config.json: " + where +
                           " has neither a path nor a name (Fluid serves it at /{name})");
  }
  const std::string name = m["name"].get<std::string>();
  if (name == "." || name == ".." || name.find('/') != std::string::npos) {
    return Status::Invalid("config.json: " + where + ".name '" + name +
                           "' is not a directory name (give a path instead)");
  }
  return "/" + name;
}

// The source URL of a Fluid mountPoint.
Result<std::string> SourceUrl(const json& m, const std::string& where) {
  if (!m.contains("mountPoint") || !m["mountPoint"].is_string() ||
      m["mountPoint"].get<std::string>().empty()) {
    return Status::Invalid("config.json: " + where + ".mountPoint must be a string");
  }
  std::string source = m["mountPoint"].get<std::string>();
  if (source.rfind("local://", 0) == 0) source = source.substr(8);  // Fluid's host paths
  if (source.rfind("pvc://", 0) == 0) {
    return Status::Invalid("config.json: " + where + ".mountPoint " + source +
                           " is a PVC; tierfs reads http(s)://, s3://, nfs:// or a path");
  }
  return source;
}

std::string OptionList(const OptionMap& options) {
  std::string o;
  for (const auto& [key, value] : options) {
    // Flags arrive as "true"/"false" (or an empty string): a bare key, or nothing.
    if (value == "false") continue;
    if (!o.empty()) o += ',';
    o += value == "true" || value.empty() ? key : key + "=" + value;
  }
  return o;
}

// What one entry of `mounts` gives: its source, and the options that are the whole mount's.
struct FluidSource {
  SourceSpec spec;
  OptionMap store;  // its remote-access options (shown in the command line)
};

}  // namespace

Result<FluidMount> FluidMountFromConfig(const std::string& json_text,
                                        const std::string& secrets_dir) {
  json j = json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Invalid("config.json is not a JSON object");
  if (!j.contains("targetPath") || !j["targetPath"].is_string() ||
      j["targetPath"].get<std::string>().empty() || j["targetPath"].get<std::string>()[0] != '/') {
    return Status::Invalid("config.json: targetPath must be an absolute path");
  }
  if (!j.contains("mounts") || !j["mounts"].is_array() || j["mounts"].empty()) {
    return Status::Invalid("config.json: mounts must list the Dataset's mounts");
  }
  if (j.contains("accessModes") && j["accessModes"].is_array()) {
    for (const auto& mode : j["accessModes"]) {
      if (mode.is_string() && mode.get<std::string>().rfind("ReadWrite", 0) == 0) {
        return Status::Invalid("config.json: accessModes has " + mode.get<std::string>() +
                               "; tierfs is read-only (use ReadOnlyMany)");
      }
    }
  }

  OptionMap runtime, shared;
  TIERFS_RETURN_IF_ERROR(
      CollectOptions(j.value("runtimeOptions", json()), "runtimeOptions", &runtime));
  TIERFS_RETURN_IF_ERROR(
      CollectOptions(j.value("sharedOptions", json()), "sharedOptions", &shared));
  TIERFS_RETURN_IF_ERROR(CollectEncryptOptions(j.value("sharedEncryptOptions", json()),
                                               "sharedEncryptOptions", secrets_dir, &shared));
  // runtimeOptions: the mount's; its remote-access options are every source's defaults.
  OptionMap wide, source_defaults;
  for (const auto& [key, value] : runtime) {
    const MountOption* o = FindMountOption(key);
    ((o != nullptr && o->store) || IsSecret(key) ? source_defaults : wide)[key] = value;
  }

  std::vector<FluidSource> sources;
  OptionMap from_mounts;                       // the whole mount's options given by mounts
  std::map<std::string, std::string> said_by;  // key → the mount that gave it
  std::set<std::string> names;
  const json& mounts = j["mounts"];
  for (size_t i = 0; i < mounts.size(); ++i) {
    const std::string where = "mounts[" + std::to_string(i) + "]";
    const json& m = mounts[i];
    if (!m.is_object()) return Status::Invalid("config.json: " + where + " must be an object");
    if (m.contains("name") && m["name"].is_string() &&
        !names.insert(m["name"].get<std::string>()).second) {
      return Status::Invalid("config.json: two mounts are named '" + m["name"].get<std::string>() +
                             "'");
    }
    FluidSource src;
    auto url = SourceUrl(m, where);
    if (!url.ok()) return url.status();
    auto path = MountPath(m, where);
    if (!path.ok()) return path.status();
    src.spec.url = *url;
    src.spec.path = *path;

    OptionMap options = source_defaults;
    for (const auto& [key, value] : shared) options[key] = value;
    TIERFS_RETURN_IF_ERROR(
        CollectOptions(m.value("options", json()), where + ".options", &options));
    TIERFS_RETURN_IF_ERROR(CollectEncryptOptions(m.value("encryptOptions", json()),
                                                 where + ".encryptOptions", secrets_dir, &options));
    for (const auto& [key, value] : options) {
      if (std::string* field = SecretField(&src.spec, key); field != nullptr) {
        auto v = SecretValue(key, value);
        if (!v.ok()) return Status::Invalid("config.json: " + where + ": " + v.status().message());
        *field = *v;
        continue;
      }
      const MountOption* o = FindMountOption(key);
      if (o != nullptr && o->store) {
        src.spec.options.emplace_back(key, value);
        src.store[key] = value;
        continue;
      }
      // The whole mount's (or libfuse's): the mounts that give it must agree.
      auto [it, added] = from_mounts.emplace(key, value);
      if (!added && it->second != value) {
        return Status::Invalid("config.json: option " + key + " is '" + it->second + "' in " +
                               said_by[key] + " but '" + value + "' in " + where +
                               "; it applies to the whole mount");
      }
      said_by.emplace(key, where);
    }
    sources.push_back(std::move(src));
  }
  for (const auto& [key, value] : from_mounts) wide[key] = value;  // the mounts' win
  // Fluid mounts for other pods' containers: they must be able to read it.
  wide.emplace("allow_other", "true");

  FluidMount out;
  MountConfig& c = out.config;
  c.mountpoint = j["targetPath"].get<std::string>();
  c.foreground = true;
  const std::string o = OptionList(wide);
  if (Status s = ApplyMountOptions(o, &c); !s.ok())
    return Status::Invalid("config.json: " + s.message());
  for (const FluidSource& s : sources) c.sources.push_back(s.spec);
  if (Status s = ResolveSources(&c); !s.ok()) return Status::Invalid("config.json: " + s.message());

  if (!c.source.empty()) {
    // One source at the root: the mount of one source, all its options in -o.
    OptionMap all = wide;
    for (const auto& [key, value] : sources[0].store) all[key] = value;
    const std::string list = OptionList(all);
    out.command_line = "tierfs mount " + ShellQuote(c.source) + " " + ShellQuote(c.mountpoint) +
                       " -f" + (list.empty() ? "" : " -o " + ShellQuote(list));
    return out;
  }
  out.command_line = "tierfs mount";
  std::string per_source;
  for (size_t i = 0; i < sources.size(); ++i) {
    const std::string& path = c.sources[i].path;  // as ResolveSources wrote it
    out.command_line += " --source " + ShellQuote(path + "=" + c.sources[i].url);
    if (!sources[i].store.empty()) {
      per_source += "\n# source " + path + ": " + OptionList(sources[i].store);
    }
  }
  out.command_line +=
      " " + ShellQuote(c.mountpoint) + " -f" + (o.empty() ? "" : " -o " + ShellQuote(o));
  out.command_line += per_source;
  return out;
}

int RunFluidMount(const std::string& path, bool dry_run) {
  std::ifstream in(path);
  if (!in) {
    std::fprintf(stderr, "tierfs: cannot read Fluid config '%s': %s\n", path.c_str(),
                 std::strerror(errno));
    return 1;
  }
  std::stringstream ss;
  ss << in.rdbuf();
  auto fm = FluidMountFromConfig(ss.str());
  if (!fm.ok()) {
    std::fprintf(stderr, "tierfs: %s\n", fm.status().message().c_str());
    return 1;
  }
  if (dry_run) {
    std::printf("%s\n", fm->command_line.c_str());
    auto keys = [](const StoreOptions& s) { return !s.s3_access_key_id.empty(); };
    if (fm->config.sources.empty() && keys(fm->config.store))
      std::printf("# the source's S3 keys come from secrets\n");
    for (const SourceSpec& s : fm->config.sources) {
      if (keys(s.store))
        std::printf("# the S3 keys of source %s come from secrets\n", s.path.c_str());
    }
    return 0;
  }
  std::error_code ec;
  std::filesystem::create_directories(fm->config.mountpoint, ec);
  if (ec) {
    std::fprintf(stderr, "tierfs: cannot create targetPath '%s': %s\n",
                 fm->config.mountpoint.c_str(), ec.message().c_str());
    return 1;
  }
  std::fprintf(stderr, "tierfs: fluid: %s\n", fm->command_line.c_str());
  return RunMount(std::move(fm->config));
}

}  // namespace tierfs
