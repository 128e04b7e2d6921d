#include "ufs/manifest_store.h"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>
#include <vector>

#include "ufs/http_client.h"

namespace tierfs {
namespace {

struct ManifestFile {
  std::string path;
  uint64_t size;
  std::string etag;
};

std::string CleanPath(std::string p) {
  while (p.rfind("./", 0) == 0) p.erase(0, 2);
  while (!p.empty() && p[0] == '/') p.erase(0, 1);
  return p;
}

// A manifest path must name a file inside the tree: no empty, "." or ".." component and
// no NUL. Returns what is wrong, or an empty string.
std::string PathProblem(const std::string& path) {
  if (path.empty()) return "is empty";
  if (path.find('\0') != std::string::npos) return "holds a NUL byte";
  size_t start = 0;
  while (true) {
    size_t slash = path.find('/', start);
    std::string_view part(path.data() + start,
                          (slash == std::string::npos ? path.size() : slash) - start);
    if (part.empty()) return "has an empty component";
    if (part == "." || part == "..") return "has a '" + std::string(part) + "' component";
    if (part.size() > 255) return "has a component over 255 bytes";
    if (slash == std::string::npos) return "";
    start = slash + 1;
  }
}

// Every file path is a file and every proper prefix a directory, never both, never twice.
Status CheckTree(const std::vector<ManifestFile>& files) {
  std::set<std::string> file_paths, dir_paths;
  for (const auto& f : files) {
    if (!file_paths.insert(f.path).second)
      return Status::Invalid("manifest: '" + f.path + "' is listed twice");
    for (size_t slash = f.path.find('/'); slash != std::string::npos;
         slash = f.path.find('/', slash + 1)) {
      dir_paths.insert(f.path.substr(0, slash));
    }
  }
  for (const auto& d : dir_paths) {
    if (file_paths.count(d))
      return Status::Invalid("manifest: '" + d + "' is both a file and a directory");
  }
  return Status::Ok();
}

Result<std::vector<ManifestFile>> Parse(const std::string& text) {
  std::vector<ManifestFile> files;
  size_t first = text.find_first_not_of(" \t\r\n");
  if (first != std::string::npos && text[first] == '[') {
    auto j = nlohmann::json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_array()) return Status::Invalid("manifest: malformed JSON");
    for (size_t i = 0; i < j.size(); ++i) {
      const auto& item = j[i];
      if (!item.is_object() || !item.contains("path") || !item["path"].is_string() ||
          !item.contains("size") || !item["size"].is_number_unsigned()) {
        return Status::Invalid("manifest: entry " + std::to_string(i) +
                               " needs \"path\" and \"size\"");
      }
      std::string path = CleanPath(item["path"].get<std::string>());
      if (std::string problem = PathProblem(path); !problem.empty()) {
        return Status::Invalid("manifest: entry " + std::to_string(i) + ": path '" + path + "' " +
                               problem);
      }
      const auto& etag = item.contains("etag") ? item["etag"] : nlohmann::json("");
      if (!etag.is_string())
        return Status::Invalid("manifest: entry " + std::to_string(i) + ": etag must be a string");
      files.push_back({std::move(path), item["size"].get<uint64_t>(), etag.get<std::string>()});
    }
    TIERFS_RETURN_IF_ERROR(CheckTree(files));
    return files;
  }
  std::istringstream in(text);
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    size_t start = line.find_first_not_of(" \t");
    if (start == std::string::npos || line[start] == '#') continue;
    std::istringstream fields(line);
    std::string raw, size, etag, extra;
    fields >> raw >> size >> etag >> extra;
    std::string path;
    uint64_t bytes = 0;
    try {
      size_t used = 0;
      if (size.empty() || size[0] < '0' || size[0] > '9') throw std::invalid_argument(size);
      bytes = std::stoull(size, &used);
      if (used != size.size()) throw std::invalid_argument(size);
    } catch (...) {
      return Status::Invalid("manifest line " + std::to_string(n) +
                             ": expected 'path size [etag]'");
    }
    if (!extra.empty() || !PercentDecode(raw, &path)) {
      return Status::Invalid("manifest line " + std::to_string(n) +
                             ": expected 'path size [etag]'");
    }
    path = CleanPath(path);
    if (std::string problem = PathProblem(path); !problem.empty()) {
      return Status::Invalid("manifest line " + std::to_string(n) + ": path '" + path + "' " +
                             problem);
    }
    files.push_back({std::move(path), bytes, etag});
  }
  TIERFS_RETURN_IF_ERROR(CheckTree(files));
  return files;
}

class ManifestStore : public Store {
 public:
  ManifestStore(std::unique_ptr<Store> base, const std::vector<ManifestFile>& files)
      : base_(std::move(base)) {
    dirs_.insert("");
    for (const auto& f : files) {
      if (f.path.empty()) continue;
      size_t slash = f.path.rfind('/');
      std::string dir = slash == std::string::npos ? "" : f.path.substr(0, slash);
      ObjectInfo info;
      info.name = slash == std::string::npos ? f.path : f.path.substr(slash + 1);
      info.type = ObjectType::kFile;
      info.size = f.size;
      info.version = f.etag.empty() ? "" : "etag:" + f.etag;
      files_[f.path] = info;
      children_[dir].push_back(std::move(info));
      // Register every ancestor directory once.
      while (dirs_.insert(dir).second) {
        size_t up = dir.rfind('/');
        std::string parent = up == std::string::npos ? "" : dir.substr(0, up);
        ObjectInfo d;
        d.name = up == std::string::npos ? dir : dir.substr(up + 1);
        d.type = ObjectType::kDirectory;
        children_[parent].push_back(std::move(d));
        dir = parent;
      }
    }
  }

  std::string Url() const override { return base_->Url(); }
  nlohmann::json RoutesJson() const override { return base_->RoutesJson(); }

  Result<ObjectInfo> Stat(const std::string& key) override {
    if (dirs_.count(key)) {
      ObjectInfo d;
      d.name = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
      d.type = ObjectType::kDirectory;
      return d;
    }
    auto it = files_.find(key);
    if (it == files_.end()) return Status::NotFound("'" + key + "' is not in the manifest");
    return it->second;
  }

  Status List(const std::string& key, const ListSink& sink) override {
    if (!dirs_.count(key))
      return Status::NotFound("'" + key + "' is not a directory in the manifest");
    auto it = children_.find(key);
    if (it == children_.end()) return Status::Ok();
    for (ObjectInfo info : it->second) TIERFS_RETURN_IF_ERROR(sink(std::move(info)));
    return Status::Ok();
  }

  Result<size_t> ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                           ReadVia* via) override {
    return base_->ReadRange(ref, offset, length, buf, via);
  }

 private:
  std::unique_ptr<Store> base_;
  std::set<std::string> dirs_;
  std::map<std::string, ObjectInfo> files_;
  std::map<std::string, std::vector<ObjectInfo>> children_;
};

}  // namespace

Result<std::unique_ptr<Store>> OpenManifestStore(std::unique_ptr<Store> base,
                                                 const std::string& manifest) {
  auto files = Parse(manifest);
  if (!files.ok()) return files.status();
  return std::unique_ptr<Store>(new ManifestStore(std::move(base), *files));
}

Result<std::string> LoadManifest(const std::string& file_or_url, const StoreOptions& options) {
  if (file_or_url.rfind("http://", 0) == 0 || file_or_url.rfind("https://", 0) == 0) {
    HttpClient http(options.http);
    HttpRequest req;
    req.url = file_or_url;
    req.max_body = 1ULL << 30;
    auto resp = http.Send(req);
    if (!resp.ok()) return resp.status();
    if (resp->status != 200) {
      return Status(ErrnoForHttpStatus(resp->status),
                    "manifest " + file_or_url + ": HTTP " + std::to_string(resp->status));
    }
    return std::move(resp->body);
  }
  std::ifstream in(file_or_url, std::ios::binary);
  if (!in) return Status(ENOENT, "cannot read manifest '" + file_or_url + "'");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

void WriteManifestLine(std::ostream& out, const std::string& key, uint64_t size,
                       const std::string& version) {
  std::string path;
  for (unsigned char c : key) {
    if (c <= ' ' || c == '%' || c == 0x7f) {
      char hex[4];
      std::snprintf(hex, sizeof hex, "%%%02X", c);
      path += hex;
    } else {
      path.push_back(static_cast<char>(c));
    }
  }
  out << path << ' ' << size;
  if (version.rfind("etag:", 0) == 0) out << ' ' << version.substr(5);
  out << '\n';
}

}  // namespace tierfs
