#include "ufs/fake_store.h"

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace tierfs {
namespace {
std::string Parent(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? "" : key.substr(0, slash);
}
std::string Base(const std::string& key) {
  size_t slash = key.rfind('/');
  return slash == std::string::npos ? key : key.substr(slash + 1);
}
}  // namespace

void FakeStore::AddParents(const std::string& key) {
  if (key.empty()) return;
  std::string parent = Parent(key);
  if (!objects_.count(parent)) {
    AddParents(parent);
    Object dir;
    dir.info.name = Base(parent);
    dir.info.type = ObjectType::kDirectory;
    dir.info.mode = 0755;
    objects_[parent] = std::move(dir);
  }
}

void FakeStore::AddFile(const std::string& key, std::string data, std::string version) {
  MutexLock lock(mu_);
  AddParents(key);
  Object obj;
  obj.info.name = Base(key);
  obj.info.type = ObjectType::kFile;
  obj.info.size = data.size();
  obj.info.mode = 0644;
  obj.info.mtime_ns = 1700000000LL * 1000000000LL;
  obj.info.version = std::move(version);
  obj.data = std::move(data);
  objects_[key] = std::move(obj);
}

void FakeStore::AddDir(const std::string& key) {
  MutexLock lock(mu_);
  AddParents(key);
  Object obj;
  obj.info.name = Base(key);
  obj.info.type = ObjectType::kDirectory;
  obj.info.mode = 0755;
  objects_[key] = std::move(obj);
}

void FakeStore::AddSymlink(const std::string& key, std::string target) {
  MutexLock lock(mu_);
  AddParents(key);
  Object obj;
  obj.info.name = Base(key);
  obj.info.type = ObjectType::kSymlink;
  obj.info.size = target.size();
  obj.info.mode = 0777;
  obj.info.link_target = std::move(target);
  objects_[key] = std::move(obj);
}

void FakeStore::ReplaceFile(const std::string& key, std::string data, std::string version) {
  AddFile(key, std::move(data), std::move(version));
}

void FakeStore::Remove(const std::string& key) {
  MutexLock lock(mu_);
  objects_.erase(key);
}

Status FakeStore::Enter() {
  int64_t us = latency_us_.load();
  if (us > 0) std::this_thread::sleep_for(std::chrono::microseconds(us));
  int n = fail_next_.load();
  while (n > 0) {
    if (fail_next_.compare_exchange_weak(n, n - 1)) {
      return Status(fail_errno_.load(), "injected fault");
    }
  }
  return Status::Ok();
}

Result<ObjectInfo> FakeStore::Stat(const std::string& key) {
  ++stat_calls_;
  TIERFS_RETURN_IF_ERROR(Enter());
  MutexLock lock(mu_);
  auto it = objects_.find(key);
  if (it == objects_.end()) return Status::NotFound("no object '" + key + "'");
  return it->second.info;
}

Status FakeStore::List(const std::string& key, const ListSink& sink) {
  ++list_calls_;
  TIERFS_RETURN_IF_ERROR(Enter());
  std::vector<ObjectInfo> children;
  {
    MutexLock lock(mu_);
    auto it = objects_.find(key);
    if (it == objects_.end()) return Status::NotFound("no directory '" + key + "'");
    if (it->second.info.type != ObjectType::kDirectory) return Status(ENOTDIR, key);
    for (auto& [k, obj] : objects_) {
      if (!k.empty() && Parent(k) == key) children.push_back(obj.info);
    }
  }
  for (auto& child : children) TIERFS_RETURN_IF_ERROR(sink(std::move(child)));
  return Status::Ok();
}

Result<size_t> FakeStore::ReadRange(const ObjectRef& ref, uint64_t offset, size_t length, char* buf,
                                    ReadVia* via) {
  if (via != nullptr) *via = ReadVia::kOrigin;
  const uint64_t call = ++read_calls_;
  if (const uint64_t every = stall_every_.load(); every > 0 && call % every == 0) {
    std::this_thread::sleep_for(std::chrono::milliseconds(stall_ms_.load()));
  }
  uint64_t now = ++concurrent_;
  uint64_t seen = max_concurrent_.load();
  while (now > seen && !max_concurrent_.compare_exchange_weak(seen, now)) {
  }
  struct Leave {
    std::atomic<uint64_t>& c;
    ~Leave() { --c; }
  } leave{concurrent_};
  TIERFS_RETURN_IF_ERROR(Enter());
  MutexLock lock(mu_);
  auto it = objects_.find(ref.key);
  if (it == objects_.end()) return Status::NotFound("no object '" + ref.key + "'");
  const Object& obj = it->second;
  if (!ref.version.empty() && obj.info.version != ref.version) {
    return Status::Io("'" + ref.key + "' changed since it was indexed");
  }
  if (offset >= obj.data.size()) return size_t{0};
  size_t n = std::min<size_t>(length, obj.data.size() - offset);
  std::copy_n(obj.data.data() + offset, n, buf);
  read_bytes_ += n;
  return n;
}

}  // namespace tierfs
