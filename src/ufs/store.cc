#include "ufs/store.h"

#include <nlohmann/json.hpp>

#include "ufs/http_store.h"
#include "ufs/manifest_store.h"
#include "ufs/nfs_store.h"
#include "ufs/posix_store.h"
#include "ufs/s3_store.h"

namespace tierfs {

std::string JoinKey(std::string_view dir, std::string_view name) {
  if (dir.empty()) return std::string(name);
  std::string key;
  key.reserve(dir.size() + 1 + name.size());
  key.append(dir).append("/").append(name);
  return key;
}

Result<FetchedObject> Store::Fetch(const std::string& key, const std::string& validator,
                                   size_t max_bytes) {
  auto info = Stat(key);
  if (!info.ok()) return info.status();
  FetchedObject out;
  out.validator = info->version;
  if (!validator.empty() && validator == info->version) {
    out.not_modified = true;
    return out;
  }
  if (info->size > max_bytes) {
    return Status::Io("'" + key + "' is larger than " + std::to_string(max_bytes) + " bytes");
  }
  out.body.resize(info->size);
  auto n = ReadRange(ObjectRef{key, info->version}, 0, out.body.size(), out.body.data(), nullptr);
  if (!n.ok()) return n.status();
  out.body.resize(*n);
  return out;
}

Status Store::ListFlat(const ListSink&) {
  return Status(ENOTSUP, Url() + " is listed per directory");
}

Status Store::PutFile(const std::string& key, const std::string&) {
  return Status(ENOTSUP, Url() + " cannot be written (publishing '" + key + "')");
}

namespace {
Result<std::unique_ptr<Store>> OpenBaseStore(const std::string& url, const StoreOptions& options);
}  // namespace

Result<std::unique_ptr<Store>> OpenStore(const std::string& url, const StoreOptions& options) {
  auto store = OpenBaseStore(url, options);
  if (!store.ok() || options.manifest.empty()) return store;
  auto text = LoadManifest(options.manifest, options);
  if (!text.ok()) return text.status();
  return OpenManifestStore(std::move(*store), *text);
}

namespace {
Result<std::unique_ptr<Store>> OpenBaseStore(const std::string& url, const StoreOptions& options) {
  std::string path;
  if (!url.empty() && url[0] == '/') {
    path = url;
  } else if (url.rfind("file://", 0) == 0) {
    path = url.substr(7);
    if (path.empty() || path[0] != '/') {
      return Status::Invalid("file:// URL needs an absolute path: '" + url + "'");
    }
  } else {
    size_t colon = url.find("://");
    if (colon == std::string::npos) {
      return Status::Invalid("source '" + url +
                             "' is neither an absolute path nor a URL (file://, http://, https://, "
                             "s3://, nfs://)");
    }
    std::string scheme = url.substr(0, colon);
    if (scheme == "http" || scheme == "https") return HttpStore::Open(url, options);
    if (scheme == "s3") return S3Store::Open(url, options);
    if (scheme == "nfs") return NfsStore::Open(url, options);
    return Status(EPROTONOSUPPORT,
                  "unknown source scheme '" + scheme +
                      "://' (use a path, file://, http://, https://, s3://, nfs://)");
  }
  return PosixStore::Open(path, options.allow_offline);
}
}  // namespace

nlohmann::json Store::RoutesJson() const { return nullptr; }

}  // namespace tierfs
