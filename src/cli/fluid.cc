#include "cli/fluid.h"

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cli/mount_options.h"

namespace tierfs {
namespace {

// Encrypted options: the value Fluid hands over is the path of a file with the secret.
const std::map<std::string, std::string>& SecretOptions() {
  static const std::map<std::string, std::string> m{
      {"aws_access_key_id", "AWS_ACCESS_KEY_ID"},
      {"aws_secret_access_key", "AWS_SECRET_ACCESS_KEY"},
      {"aws_session_token", "AWS_SESSION_TOKEN"}};
  return m;
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

std::string ShellQuote(const std::string& s) {
  if (!s.empty() && s.find_first_not_of("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                        "0123456789@%+=:,./_-") == std::string::npos) {
    return s;
  }
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Folds one options object into `options` (key → value, keys with '_').
Status CollectOptions(const nlohmann::json& obj, const std::string& where,
                      std::map<std::string, std::string>* options) {
  if (obj.is_null()) return Status::Ok();
  if (!obj.is_object()) return Status::Invalid("config.json: " + where + " must be an object");
  for (const auto& [k, v] : obj.items()) {
    std::string key = k;
    for (char& c : key) {
      if (c == '-') c = '_';
    }
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

}  // namespace

Result<FluidMount> FluidMountFromConfig(const std::string& json_text) {
  nlohmann::json j = nlohmann::json::parse(json_text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object())
    return Status::Invalid("config.json is not a JSON object");
  if (!j.contains("targetPath") || !j["targetPath"].is_string() ||
      j["targetPath"].get<std::string>().empty() || j["targetPath"].get<std::string>()[0] != '/') {
    return Status::Invalid("config.json: targetPath must be an absolute path");
  }
  if (!j.contains("mounts") || !j["mounts"].is_array() || j["mounts"].empty()) {
    return Status::Invalid("config.json: mounts must list the Dataset's mount");
  }
  if (j["mounts"].size() > 1) {
    return Status::Invalid("config.json: the Dataset has " + std::to_string(j["mounts"].size()) +
                           " mounts; tierfs serves one source per mount (use one Dataset each)");
  }
  const nlohmann::json& m = j["mounts"][0];
  if (!m.is_object() || !m.contains("mountPoint") || !m["mountPoint"].is_string()) {
    return Status::Invalid("config.json: mounts[0].mountPoint must be a string");
  }
  if (j.contains("accessModes") && j["accessModes"].is_array()) {
    for (const auto& mode : j["accessModes"]) {
      if (mode.is_string() && mode.get<std::string>().rfind("ReadWrite", 0) == 0) {
        return Status::Invalid("config.json: accessModes has " + mode.get<std::string>() +
                               "; tierfs is read-only (use ReadOnlyMany)");
      }
    }
  }

  FluidMount out;
  MountConfig& c = out.config;
  std::string source = m["mountPoint"].get<std::string>();
  if (source.rfind("local://", 0) == 0) source = source.substr(8);  // Fluid's host paths
  if (source.rfind("pvc://", 0) == 0) {
    return Status::Invalid("config.json: mountPoint " + source +
                           " is a PVC; tierfs reads http(s)://, s3://, nfs:// or a path");
  }
  c.source = source;
  c.mountpoint = j["targetPath"].get<std::string>();
  c.foreground = true;

  std::map<std::string, std::string> options;
  TIERFS_RETURN_IF_ERROR(
      CollectOptions(j.value("runtimeOptions", nlohmann::json()), "runtimeOptions", &options));
  TIERFS_RETURN_IF_ERROR(
      CollectOptions(m.value("options", nlohmann::json()), "mounts[0].options", &options));
  // Fluid mounts for other pods' containers: they must be able to read it.
  options.emplace("allow_other", "true");

  std::string o;
  for (const auto& [key, value] : options) {
    if (auto secret = SecretOptions().find(key); secret != SecretOptions().end()) {
      auto v = ReadSecretFile(key, value);
      if (!v.ok()) return v.status();
      out.env[secret->second] = *v;
      continue;
    }
    // Flags arrive as "true"/"false" (or an empty string): a bare key, or nothing.
    if (value == "false") continue;
    if (!o.empty()) o += ',';
    o += value == "true" || value.empty() ? key : key + "=" + value;
  }
  TIERFS_RETURN_IF_ERROR(ApplyMountOptions(o, &c));

  out.command_line = "tierfs mount " + ShellQuote(c.source) + " " + ShellQuote(c.mountpoint) +
                     " -f" + (o.empty() ? "" : " -o " + ShellQuote(o));
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
    for (const auto& [name, value] : fm->env)
      std::printf("# %s is set from a secret file\n", name.c_str());
    return 0;
  }
  for (const auto& [name, value] : fm->env) ::setenv(name.c_str(), value.c_str(), 1);
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
