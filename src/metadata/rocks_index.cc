// The only file that includes RocksDB. Key layout (format 2):
//   D|be64(parent)|name      -> be64(ino) EncodeEntry(entry)                lookup by name
//   L|be64(parent)|be64(pos) -> be64(ino) be32(len) name EncodeEntry(entry) readdir, resumable
//   I|be64(ino)              -> EncodeEntry(entry)                          attributes by inode
//   M                        -> JSON IndexMeta
// Attributes are stored with the name records too, so a lookup is one Get and a readdir
// one sequential scan (format 1 needed a second Get per name: find ran 3x slower).
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/slice_transform.h>
#include <rocksdb/table.h>
#include <rocksdb/write_batch.h>
#include <unistd.h>

#include <atomic>
#include <nlohmann/json.hpp>
#include <thread>
#include <unordered_set>

#include "common/blocking.h"
#include "common/log.h"
#include "metadata/index.h"
#include "metadata/index_writer.h"

namespace tierfs {
namespace {

constexpr int kFormatVersion = 2;

// Big-endian integers, so keys sort numerically.
template <typename T>
void PutBe(std::string* out, T v) {
  for (int i = sizeof(T) - 1; i >= 0; --i) out->push_back(static_cast<char>((v >> (i * 8)) & 0xff));
}

template <typename T>
T GetBe(const char* p) {
  T v = 0;
  for (size_t i = 0; i < sizeof(T); ++i) v = static_cast<T>((v << 8) | static_cast<uint8_t>(p[i]));
  return v;
}

void PutBe64(std::string* out, uint64_t v) { PutBe(out, v); }
uint64_t GetBe64(const char* p) { return GetBe<uint64_t>(p); }
void PutBe32(std::string* out, uint32_t v) { PutBe(out, v); }
uint32_t GetBe32(const char* p) { return GetBe<uint32_t>(p); }

std::string DirKey(uint64_t parent, std::string_view name) {
  std::string k = "D";
  PutBe64(&k, parent);
  k.append(name);
  return k;
}

std::string PosKey(uint64_t parent, uint64_t pos) {
  std::string k = "L";
  PutBe64(&k, parent);
  PutBe64(&k, pos);
  return k;
}

std::string InodeKey(uint64_t ino) {
  std::string k = "I";
  PutBe64(&k, ino);
  return k;
}

// The index's share of the daemon's memory: blocks read from the index stay here, so the
// page cache being dropped or filled by data reads does not send lookups to the disk. One
// cache for the process: two revisions open during a switch share the bound.
constexpr size_t kBlockCacheBytes = 64 << 20;

std::shared_ptr<rocksdb::Cache> SharedBlockCache() {
  static const std::shared_ptr<rocksdb::Cache> cache = rocksdb::NewLRUCache(kBlockCacheBytes);
  return cache;
}

rocksdb::Options BaseOptions() {
  rocksdb::Options options;
  rocksdb::BlockBasedTableOptions table;
  table.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  table.block_cache = SharedBlockCache();
  table.cache_index_and_filter_blocks = false;
  options.table_factory.reset(rocksdb::NewBlockBasedTableFactory(table));
  options.compression = rocksdb::kLZ4Compression;
  options.max_open_files = 256;
  options.info_log_level = rocksdb::InfoLogLevel::WARN_LEVEL;
  options.keep_log_file_num = 2;
  return options;
}

Status FromRocks(const rocksdb::Status& s, const std::string& what) {
  if (s.ok()) return Status::Ok();
  if (s.IsNotFound()) return Status::NotFound(what + ": not found");
  return Status::Io(what + ": " + s.ToString());
}

nlohmann::json MetaToJson(const IndexMeta& m) {
  nlohmann::json j = {{"format_version", m.format_version},
                      {"source", m.source},
                      {"built_at", m.built_at},
                      {"files", m.files},
                      {"dirs", m.dirs},
                      {"symlinks", m.symlinks},
                      {"bytes", m.bytes},
                      {"large_bytes", m.large_bytes},
                      {"skipped", m.skipped}};
  if (m.archives > 0) {
    j["archives"] = m.archives;
    j["members"] = m.members;
  }
  if (!m.archive_label.empty()) j["archive_options"] = m.archive_label;
  for (const IndexMeta::SourceCount& s : m.sources) {
    j["sources"].push_back({{"prefix", s.prefix}, {"files", s.files}, {"bytes", s.bytes}});
  }
  return j;
}

class RocksIndex : public Index {
 public:
  RocksIndex(std::unique_ptr<rocksdb::DB> db, IndexMeta meta, std::shared_ptr<rocksdb::Cache> cache)
      : db_(std::move(db)), meta_(std::move(meta)), cache_(std::move(cache)) {}

  ~RocksIndex() override {
    stop_warmup_ = true;
    if (warmup_.joinable()) warmup_.join();
  }

  void StartWarmup() override {
    if (warmup_.joinable() || cache_ == nullptr) return;
    warmup_ = std::thread([this] {
      // One sequential pass with large read-ahead; stops once the cache is nearly full
      // (a bigger index keeps whatever lookups touch, LRU).
      rocksdb::ReadOptions ro;
      ro.readahead_size = 4 << 20;
      ro.fill_cache = true;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      uint64_t n = 0;
      for (it->SeekToFirst(); it->Valid() && !stop_warmup_; it->Next()) {
        if (++n % 4096 == 0 && cache_->GetUsage() > cache_->GetCapacity() * 9 / 10) break;
      }
      TLOG_DEBUG("index warm-up: {} records, {} bytes in memory", n, cache_->GetUsage());
    });
  }

  uint64_t CachedBytes() const override { return cache_ ? cache_->GetUsage() : 0; }

  Result<Entry> Lookup(uint64_t parent, std::string_view name) override {
    rocksdb::PinnableSlice value;
    auto s = Get(DirKey(parent, name), &value);
    if (s.IsNotFound()) return Status::NotFound(std::string(name));
    if (!s.ok() || value.size() < 8) return Status::Io("index lookup: " + s.ToString());
    return DecodeEntry(GetBe64(value.data()), std::string_view(value.data() + 8, value.size() - 8));
  }

  Result<Entry> GetAttr(uint64_t ino) override {
    rocksdb::PinnableSlice value;
    auto s = Get(InodeKey(ino), &value);
    if (s.IsNotFound()) return Status::NotFound("inode " + std::to_string(ino));
    if (!s.ok()) return Status::Io("index getattr: " + s.ToString());
    return DecodeEntry(ino, std::string_view(value.data(), value.size()));
  }

  Status ReadDir(uint64_t ino, uint64_t pos, const DirSink& sink) override {
    std::string prefix = "L";
    PutBe64(&prefix, ino);
    // From memory first; where the listing needs the disk, hand over and go on from there.
    for (const bool memory_only : {true, false}) {
      rocksdb::ReadOptions ro;
      if (memory_only) ro.read_tier = rocksdb::kBlockCacheTier;
      std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
      for (it->Seek(PosKey(ino, pos)); it->Valid() && it->key().starts_with(prefix); it->Next()) {
        rocksdb::Slice k = it->key(), v = it->value();
        if (k.size() != 17 || v.size() < 12) return Status::Io("corrupt directory record");
        const uint32_t name_len = GetBe32(v.data() + 8);
        if (name_len > v.size() - 12) return Status::Io("corrupt directory record");
        std::string_view name(v.data() + 12, name_len);
        auto entry = DecodeEntry(GetBe64(v.data()), std::string_view(v.data() + 12 + name_len,
                                                                     v.size() - 12 - name_len));
        if (!entry.ok()) return entry.status();
        pos = GetBe64(k.data() + 9);
        if (!sink(name, *entry, pos)) return Status::Ok();
        ++pos;
      }
      if (!memory_only || !it->status().IsIncomplete()) {
        return FromRocks(it->status(), "index readdir");
      }
      ++disk_reads_;
      AboutToBlock();
    }
    return Status::Ok();
  }

  uint64_t DiskReads() const override { return disk_reads_; }

  const IndexMeta& Meta() const override { return meta_; }

 private:
  // A point read that may wait for the disk tells whoever runs it first (AboutToBlock: the
  // FUSE loop hands its device to another worker), so a lookup that misses the block
  // cache never stalls the lookups behind it. It reads from memory only first (block
  // cache, memtables) and only when that is not enough goes to the disk.
  rocksdb::Status Get(const std::string& key, rocksdb::PinnableSlice* value) {
    rocksdb::ReadOptions memory_only;
    memory_only.read_tier = rocksdb::kBlockCacheTier;
    auto s = db_->Get(memory_only, db_->DefaultColumnFamily(), key, value);
    if (!s.IsIncomplete()) return s;
    value->Reset();
    ++disk_reads_;
    AboutToBlock();
    return db_->Get(rocksdb::ReadOptions(), db_->DefaultColumnFamily(), key, value);
  }

  std::atomic<uint64_t> disk_reads_{0};
  std::unique_ptr<rocksdb::DB> db_;
  IndexMeta meta_;
  std::shared_ptr<rocksdb::Cache> cache_;
  std::atomic<bool> stop_warmup_{false};
  std::thread warmup_;
};

class RocksIndexWriter : public IndexWriter {
 public:
  explicit RocksIndexWriter(std::unique_ptr<rocksdb::DB> db) : db_(std::move(db)) {}

  Result<bool> InodeTaken(uint64_t ino) override {
    if (pending_inos_.count(ino)) return true;
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), InodeKey(ino), &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "index build");
    return true;
  }

  Result<bool> NameTaken(uint64_t parent, std::string_view name) override {
    if (batch_.Count() > 0) TIERFS_RETURN_IF_ERROR(Flush());
    std::string value;
    auto s = db_->Get(rocksdb::ReadOptions(), DirKey(parent, name), &value);
    if (s.IsNotFound()) return false;
    if (!s.ok()) return FromRocks(s, "index build");
    return true;
  }

  Status Put(const Entry& entry, std::string_view name) override {
    const std::string encoded = EncodeEntry(entry);
    if (entry.ino != kRootIno) {
      std::string value;
      PutBe64(&value, entry.ino);
      value.append(encoded);
      batch_.Put(DirKey(entry.parent, name), value);
    }
    batch_.Put(InodeKey(entry.ino), encoded);
    pending_inos_.insert(entry.ino);
    if (batch_.Count() >= 20000) return Flush();
    return Status::Ok();
  }

  Status Finish(const IndexMeta& meta) override {
    TIERFS_RETURN_IF_ERROR(Flush());
    // One ordered pass over D records gives every directory's children in name order.
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    uint64_t parent = 0, pos = 0;
    for (it->Seek("D"); it->Valid() && it->key().starts_with("D"); it->Next()) {
      rocksdb::Slice k = it->key(), v = it->value();
      if (k.size() < 9 || v.size() < 8) return Status::Io("index build: bad directory record");
      uint64_t p = GetBe64(k.data() + 1);
      if (p != parent) {
        parent = p;
        pos = 0;
      }
      std::string value(v.data(), 8);  // ino
      PutBe32(&value, static_cast<uint32_t>(k.size() - 9));
      value.append(k.data() + 9, k.size() - 9);  // name
      value.append(v.data() + 8, v.size() - 8);  // attributes
      batch_.Put(PosKey(p, pos++), value);
      if (batch_.Count() >= 20000) TIERFS_RETURN_IF_ERROR(Flush());
    }
    TIERFS_RETURN_IF_ERROR(FromRocks(it->status(), "index build"));
    it.reset();
    batch_.Put("M", MetaToJson(meta).dump());
    TIERFS_RETURN_IF_ERROR(Flush());
    TIERFS_RETURN_IF_ERROR(FromRocks(db_->Flush(rocksdb::FlushOptions()), "index flush"));
    rocksdb::CompactRangeOptions cro;
    cro.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
    TIERFS_RETURN_IF_ERROR(FromRocks(db_->CompactRange(cro, nullptr, nullptr), "index compact"));
    TIERFS_RETURN_IF_ERROR(FromRocks(db_->Close(), "index close"));
    db_.reset();
    return Status::Ok();
  }

 private:
  Status Flush() {
    if (batch_.Count() == 0) return Status::Ok();
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;  // the whole index is flushed and synced in Finish()
    auto s = db_->Write(wo, &batch_);
    batch_.Clear();
    pending_inos_.clear();
    return FromRocks(s, "index write");
  }

  std::unique_ptr<rocksdb::DB> db_;
  rocksdb::WriteBatch batch_;
  std::unordered_set<uint64_t> pending_inos_;  // inodes in batch_, not yet readable via Get
};

}  // namespace

Result<std::unique_ptr<IndexWriter>> IndexWriter::Create(const std::string& path) {
  rocksdb::Options options = BaseOptions();
  options.create_if_missing = true;
  options.error_if_exists = true;
  options.write_buffer_size = 64 << 20;
  options.IncreaseParallelism(2);
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::Open(options, path, &raw);
  if (!s.ok()) return Status::Io("cannot create index at '" + path + "': " + s.ToString());
  return std::unique_ptr<IndexWriter>(new RocksIndexWriter(std::unique_ptr<rocksdb::DB>(raw)));
}

Result<std::unique_ptr<Index>> OpenIndex(const std::string& path) {
  if (::access(path.c_str(), F_OK) != 0) {
    return Status::FromErrno(errno, "cannot open index '" + path + "'");
  }
  rocksdb::Options options = BaseOptions();
  options.create_if_missing = false;
  rocksdb::DB* raw = nullptr;
  auto s = rocksdb::DB::OpenForReadOnly(options, path, &raw);
  if (!s.ok()) {
    return Status::Io("cannot open index '" + path + "': " + s.ToString());
  }
  std::unique_ptr<rocksdb::DB> db(raw);
  std::string meta_json;
  s = db->Get(rocksdb::ReadOptions(), "M", &meta_json);
  if (!s.ok()) return Status::Io("index '" + path + "' is incomplete or not a tierfs index");
  IndexMeta meta;
  try {
    auto j = nlohmann::json::parse(meta_json);
    meta.format_version = j.at("format_version").get<int>();
    meta.source = j.at("source").get<std::string>();
    meta.built_at = j.at("built_at").get<int64_t>();
    meta.files = j.at("files").get<uint64_t>();
    meta.dirs = j.at("dirs").get<uint64_t>();
    meta.symlinks = j.at("symlinks").get<uint64_t>();
    meta.bytes = j.at("bytes").get<uint64_t>();
    meta.skipped = j.value("skipped", uint64_t{0});
    meta.large_bytes = j.value("large_bytes", int64_t{-1});
    meta.archives = j.value("archives", uint64_t{0});
    meta.members = j.value("members", uint64_t{0});
    meta.archive_label = j.value("archive_options", std::string());
    for (const auto& s : j.value("sources", nlohmann::json::array())) {
      meta.sources.push_back({s.at("prefix").get<std::string>(), s.at("files").get<uint64_t>(),
                              s.at("bytes").get<uint64_t>()});
    }
  } catch (const std::exception& e) {
    return Status::Io("index '" + path + "' has a corrupt meta record");
  }
  if (meta.format_version != kFormatVersion) {
    return Status::Invalid("index '" + path + "' has format " +
                           std::to_string(meta.format_version) + ", this tierfs reads " +
                           std::to_string(kFormatVersion) + "; rebuild it");
  }
  auto* table = options.table_factory->GetOptions<rocksdb::BlockBasedTableOptions>();
  return std::unique_ptr<Index>(
      new RocksIndex(std::move(db), std::move(meta), table ? table->block_cache : nullptr));
}

int IndexFormatVersion() { return kFormatVersion; }

}  // namespace tierfs
