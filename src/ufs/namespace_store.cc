#include "ufs/namespace_store.h"

#include <algorithm>
#include <nlohmann/json.hpp>
#include <set>

namespace tierfs {
namespace {

bool InTree(std::string_view key, std::string_view prefix) {
  return key.size() > prefix.size() && key.compare(0, prefix.size(), prefix) == 0 &&
         key[prefix.size()] == '/';
}

std::string Shown(const std::string& prefix) { return "/" + prefix; }

}  // namespace

Result<std::string> NormalizeSourcePath(std::string_view path) {
  const std::string quoted = "source path '" + std::string(path) + "'";
  if (path.empty() || path[0] != '/') {
    return Status::Invalid(quoted + " must start with '/' (e.g. /spark)");
  }
  std::string_view rest = path.substr(1);
  if (!rest.empty() && rest.back() == '/') rest.remove_suffix(1);
  std::string out;
  while (!rest.empty()) {
    const size_t end = std::min(rest.find('/'), rest.size());
    const std::string_view part = rest.substr(0, end);
    if (part.empty()) return Status::Invalid(quoted + " has an empty component");
    if (part == "." || part == "..") {
      return Status::Invalid(quoted + " may not contain '" + std::string(part) + "'");
    }
    for (char c : part) {
      if (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) {
        return Status::Invalid(quoted + " has a control character");
      }
    }
    out += (out.empty() ? "" : "/") + std::string(part);
    if (end == rest.size()) break;
    rest = rest.substr(end + 1);
    if (rest.empty()) return Status::Invalid(quoted + " has an empty component");
  }
  return out;
}

Status CheckSourcePaths(const std::vector<std::string>& prefixes) {
  if (prefixes.empty()) return Status::Invalid("the namespace has no source");
  if (prefixes.size() > 255) {
    return Status::Invalid(std::to_string(prefixes.size()) +
                           " sources; a mount serves 255 at most");
  }
  for (size_t i = 0; i < prefixes.size(); ++i) {
    if (prefixes[i].empty() && prefixes.size() > 1) {
      return Status::Invalid(
          "source path '/' (the whole mount) is only valid for a single "
          "source; give each of the " +
          std::to_string(prefixes.size()) + " sources its own path");
    }
    for (size_t j = 0; j < i; ++j) {
      const std::string &a = prefixes[j], &b = prefixes[i];
      if (a == b) return Status::Invalid("two sources have the path " + Shown(a));
      if (InTree(b, a) || InTree(a, b)) {
        const std::string& outer = InTree(b, a) ? a : b;
        const std::string& inner = InTree(b, a) ? b : a;
        return Status::Invalid("source path " + Shown(inner) + " is inside source " + Shown(outer) +
                               "'s tree");
      }
    }
  }
  return Status::Ok();
}

Result<std::unique_ptr<NamespaceStore>> NamespaceStore::Make(std::vector<NamespaceSource> sources) {
  std::vector<std::string> prefixes;
  prefixes.reserve(sources.size());
  for (const NamespaceSource& s : sources) prefixes.push_back(s.prefix);
  TIERFS_RETURN_IF_ERROR(CheckSourcePaths(prefixes));
  if (std::find(prefixes.begin(), prefixes.end(), "") != prefixes.end()) {
    return Status::Invalid("a namespace source needs a path other than '/'");
  }
  std::vector<Source> out;
  out.reserve(sources.size());
  for (NamespaceSource& s : sources) {
    out.push_back(
        Source{std::move(s.prefix), std::move(s.store), std::make_unique<SourceCounters>()});
  }
  // Key order of the trees: "a/b-x/..." sorts before "a/b/...", as the flat keys do.
  std::sort(out.begin(), out.end(),
            [](const Source& a, const Source& b) { return a.prefix + "/" < b.prefix + "/"; });
  return std::unique_ptr<NamespaceStore>(new NamespaceStore(std::move(out)));
}

NamespaceStore::NamespaceStore(std::vector<Source> sources) : sources_(std::move(sources)) {}

std::string NamespaceStore::Url() const {
  std::string url = "namespace:";
  for (size_t i = 0; i < sources_.size(); ++i) {
    url += (i == 0 ? "" : ";") + Shown(sources_[i].prefix) + "=" + sources_[i].store->Url();
  }
  return url;
}

std::vector<std::string> NamespaceStore::SourcePrefixes() const {
  std::vector<std::string> out;
  for (const Source& s : sources_) out.push_back(s.prefix);
  return out;
}

int NamespaceStore::SourceOf(std::string_view key) const {
  for (size_t i = 0; i < sources_.size(); ++i) {
    if (key == sources_[i].prefix || InTree(key, sources_[i].prefix)) return static_cast<int>(i);
  }
  return -1;
}

int NamespaceStore::Route(std::string_view key, std::string* inner) const {
  const int i = SourceOf(key);
  if (i < 0) return i;
  const std::string& p = sources_[static_cast<size_t>(i)].prefix;
  *inner = key.size() == p.size() ? std::string() : std::string(key.substr(p.size() + 1));
  return i;
}

bool NamespaceStore::IsAbove(std::string_view key) const {
  if (key.empty()) return true;
  for (const Source& s : sources_) {
    if (InTree(s.prefix, key)) return true;
  }
  return false;
}

void NamespaceStore::Count(size_t i, const Status& status, uint64_t bytes) const {
  SourceCounters& c = *sources_[i].counters;
  c.requests.fetch_add(1, std::memory_order_relaxed);
  if (!status.ok()) c.errors.fetch_add(1, std::memory_order_relaxed);
  if (bytes > 0) c.bytes.fetch_add(bytes, std::memory_order_relaxed);
}

Result<ObjectInfo> NamespaceStore::Stat(const std::string& key) {
  std::string inner;
  const int i = Route(key, &inner);
  if (i < 0) {
    if (!IsAbove(key)) return Status::NotFound("'" + key + "' is in no source of the namespace");
    ObjectInfo info;
    info.name = key.substr(key.rfind('/') == std::string::npos ? 0 : key.rfind('/') + 1);
    info.type = ObjectType::kDirectory;
    info.mode = 0555;
    return info;
  }
  auto r = sources_[static_cast<size_t>(i)].store->Stat(inner);
  Count(static_cast<size_t>(i), r.status());
  if (r.ok() && inner.empty()) {
    // A source's root is a directory named by its path, whatever the store calls it.
    const std::string& p = sources_[static_cast<size_t>(i)].prefix;
    r->name = p.substr(p.rfind('/') == std::string::npos ? 0 : p.rfind('/') + 1);
    if (r->type != ObjectType::kDirectory) {
      return Status(ENOTDIR, "source " + Shown(p) + " (" + SourceUrl(static_cast<size_t>(i)) +
                                 ") is not a directory");
    }
  }
  return r;
}

Status NamespaceStore::List(const std::string& key, const ListSink& sink) {
  std::string inner;
  const int i = Route(key, &inner);
  if (i >= 0) {
    Status s = sources_[static_cast<size_t>(i)].store->List(inner, sink);
    Count(static_cast<size_t>(i), s);
    return s;
  }
  if (!IsAbove(key)) return Status::NotFound("'" + key + "' is in no source of the namespace");
  // The children of a made-up directory: the next component of every path below it.
  std::set<std::string> names;
  for (const Source& s : sources_) {
    if (!key.empty() && !InTree(s.prefix, key)) continue;
    std::string rest = key.empty() ? s.prefix : s.prefix.substr(key.size() + 1);
    names.insert(rest.substr(0, rest.find('/')));
  }
  for (const std::string& name : names) {
    auto info = Stat(JoinKey(key, name));
    if (!info.ok()) return info.status();
    info->name = name;
    TIERFS_RETURN_IF_ERROR(sink(std::move(*info)));
  }
  return Status::Ok();
}

Result<size_t> NamespaceStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length,
                                         char* buf, ReadVia* via) {
  std::string inner;
  const int i = Route(ref.key, &inner);
  if (i < 0) return Status(EISDIR, "'" + ref.key + "' is a directory");
  auto r = sources_[static_cast<size_t>(i)].store->ReadRange(ObjectRef{inner, ref.version}, offset,
                                                             length, buf, via);
  Count(static_cast<size_t>(i), r.status(), r.ok() ? *r : 0);
  return r;
}

Result<FetchedObject> NamespaceStore::Fetch(const std::string& key, const std::string& validator,
                                            size_t max_bytes) {
  std::string inner;
  const int i = Route(key, &inner);
  if (i < 0) return Status(EISDIR, "'" + key + "' is a directory");
  auto r = sources_[static_cast<size_t>(i)].store->Fetch(inner, validator, max_bytes);
  Count(static_cast<size_t>(i), r.status(), r.ok() ? r->body.size() : 0);
  return r;
}

nlohmann::json NamespaceStore::RoutesJson() const {
  // The routes of every source read over HTTP, one array.
  nlohmann::json out = nlohmann::json::array();
  for (const Source& s : sources_) {
    for (auto& route : s.store->RoutesJson()) out.push_back(std::move(route));
  }
  return out.empty() ? nlohmann::json() : out;
}

}  // namespace tierfs
