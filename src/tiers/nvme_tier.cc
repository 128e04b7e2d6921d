#include "tiers/nvme_tier.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include "common/blocking.h"
#include "common/log.h"
#include "tiers/uring_io.h"

namespace tierfs {
namespace fs = std::filesystem;

namespace {

constexpr uint64_t kMaxSegment = 256ULL << 20;
constexpr int kLayoutFormat = 1;

struct AlignedBuffer {
  explicit AlignedBuffer(size_t n) : size(RoundUp(n, kUnit)) {
    data = static_cast<char*>(std::aligned_alloc(kUnit, size));
    if (data == nullptr) throw std::bad_alloc();
    std::memset(data, 0, size);
  }
  ~AlignedBuffer() { std::free(data); }
  AlignedBuffer(const AlignedBuffer&) = delete;
  AlignedBuffer& operator=(const AlignedBuffer&) = delete;
  char* data;
  size_t size;
};

std::string SegmentPath(const std::string& dir, uint32_t i) {
  char name[32];
  std::snprintf(name, sizeof name, "seg-%05u", i);
  return dir + "/" + name;
}

std::string LayoutLine(uint64_t segment_size, size_t segments, size_t block_size) {
  std::ostringstream s;
  s << "format=" << kLayoutFormat << " segment_size=" << segment_size << " segments=" << segments
    << " block_size=" << block_size << "\n";
  return s.str();
}

// Directory area of a segment of `seg` bytes: room for an entry per 4 KiB unit.
uint64_t DirectoryBytes(uint64_t seg) {
  return RoundUp(kUnit + seg / kUnit * sizeof(DirEntry), kUnit);
}

// The smallest segment whose data area holds `records` records of `record_bytes`.
uint64_t SegmentForRecords(uint64_t records, uint64_t record_bytes) {
  const uint64_t data = records * record_bytes;
  uint64_t seg = data + DirectoryBytes(data);
  while ((seg - DirectoryBytes(seg)) / kUnit * kUnit < data) seg += kUnit;
  return seg;
}

}  // namespace

NvmeTier::NvmeTier(const NvmeTierOptions& options)
    : options_(options), shards_(new Shard[kShards]) {}

NvmeTier::~NvmeTier() {
  Stop();
  for (auto& seg : segments_) {
    if (seg->fd >= 0) ::close(seg->fd);
  }
  std::free(staging_);
}

Result<std::unique_ptr<NvmeTier>> NvmeTier::Open(const NvmeTierOptions& options) {
  std::unique_ptr<NvmeTier> tier(new NvmeTier(options));
  auto start = std::chrono::steady_clock::now();
  TIERFS_RETURN_IF_ERROR(tier->Init());
  tier->startup_seconds_ =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return tier;
}

Status NvmeTier::Init() {
  // Segments hold a whole number of full-size records: a 12 MiB segment of 1 MiB blocks
  // (1 MiB + 4 KiB on disk each) held 11 and left ~1 MiB of every segment idle.
  const uint64_t rec = RecordBytes(options_.block_size);
  const uint64_t min_segment = SegmentForRecords(4, rec);
  uint64_t seg = options_.segment_size;
  if (seg == 0) {
    const uint64_t target = std::clamp<uint64_t>(options_.capacity / 16, min_segment, kMaxSegment);
    seg = SegmentForRecords(std::max<uint64_t>(4, (target - DirectoryBytes(target)) / rec), rec);
  }
  if (options_.capacity / seg < 2) seg = options_.capacity / 2 / kUnit * kUnit;
  if (seg < min_segment) {
    return Status::Invalid("cache size " + std::to_string(options_.capacity >> 20) +
                           " MiB is too small for block size " +
                           std::to_string(options_.block_size >> 10) + " KiB (need at least " +
                           std::to_string((2 * min_segment + (1 << 20) - 1) >> 20) + " MiB)");
  }
  segment_size_ = seg;
  dir_bytes_ = DirectoryBytes(seg);
  data_bytes_ = (seg - dir_bytes_) / kUnit * kUnit;
  size_t count = options_.capacity / seg;
  // Hit-ratio windows scale with the cache: a window much longer than the cache's size in
  // blocks still remembers the previous epoch's misses when the next epoch starts hitting.
  admission_ = std::make_unique<EpochAdmission>(options_.capacity / options_.block_size,
                                                options_.epoch_aware, options_.min_hit_ratio);

  std::error_code ec;
  fs::create_directories(options_.dir, ec);
  if (ec) return Status(ec.value(), "cannot create '" + options_.dir + "': " + ec.message());
  ::chmod(options_.dir.c_str(), 0700);

  // A cache laid out differently (another size or block size) is discarded.
  const std::string layout_path = options_.dir + "/LAYOUT";
  std::string want = LayoutLine(seg, count, options_.block_size), have;
  {
    std::ifstream in(layout_path);
    std::getline(in, have);
    have += "\n";
  }
  if (have != want) {
    for (const auto& e : fs::directory_iterator(options_.dir, ec)) {
      if (e.path().filename().string().rfind("seg-", 0) == 0) fs::remove(e.path(), ec);
    }
    std::ofstream out(layout_path, std::ios::trunc);
    out << want;
    if (!out) return Status::Io("cannot write '" + layout_path + "'");
  }

  direct_io_ = options_.direct_io;
  // Segment files are created (and preallocated) when first written, so disk use grows
  // with what is cached; those that exist are opened and recovered now.
  for (uint32_t i = 0; i < count; ++i) {
    segments_.push_back(std::make_unique<Segment>());
    if (::access(SegmentPath(options_.dir, i).c_str(), F_OK) == 0) {
      TIERFS_RETURN_IF_ERROR(OpenSegmentFile(i, /*create=*/false));
      TIERFS_RETURN_IF_ERROR(Recover(i));
    }
  }
  std::vector<uint32_t> sealed;
  for (uint32_t i = 0; i < segments_.size(); ++i) {
    if (segments_[i]->sealed) {
      sealed.push_back(i);
    } else {
      free_.push_back(i);
    }
  }
  std::sort(sealed.begin(), sealed.end(), [&](uint32_t a, uint32_t b) {
    return segments_[a]->generation.load() < segments_[b]->generation.load();
  });
  sealed_fifo_.assign(sealed.begin(), sealed.end());

  staging_size_ = std::min<uint64_t>(data_bytes_,
                                     std::max<uint64_t>(RecordBytes(options_.block_size), 4 << 20));
  staging_ = static_cast<char*>(std::aligned_alloc(kUnit, staging_size_));
  if (staging_ == nullptr) return Status(ENOMEM, "nvme cache staging buffer");
  TLOG_DEBUG("nvme cache: up to {} segments of {} MiB in {} ({} blocks recovered)",
             segments_.size(), seg >> 20, options_.dir, blocks_.load());
  return Status::Ok();
}

Status NvmeTier::OpenSegmentFile(uint32_t i, bool create) {
  Segment& s = *segments_[i];
  std::string path = SegmentPath(options_.dir, i);
  // A segment that exists was counted when it was made; the budget is counted afresh here.
  DiskBudget* budget = options_.budget;
  if (budget != nullptr && !budget->TryReserve(segment_size_)) {
    if (!create) return Status::Invalid("the cache dir holds more segments than --cache-size");
    return Status(EDQUOT, "the cache size is reached (object files hold the rest)");
  }
  int flags = O_RDWR | O_CLOEXEC | (create ? O_CREAT : 0);
  int fd = direct_io_ ? ::open(path.c_str(), flags | O_DIRECT, 0600) : -1;
  if (fd < 0 && direct_io_ && errno == EINVAL) direct_io_ = false;  // e.g. tmpfs
  if (fd < 0) fd = ::open(path.c_str(), flags, 0600);
  if (fd < 0) {
    if (budget != nullptr) budget->Release(segment_size_);
    return Status::FromErrno(errno, "cannot open cache segment '" + path + "'");
  }
  int rc = ::posix_fallocate(fd, 0, static_cast<off_t>(segment_size_));
  if (rc != 0) {
    if (budget != nullptr) budget->Release(segment_size_);
    ::close(fd);
    if (create) ::unlink(path.c_str());
    return Status::FromErrno(rc, "cannot allocate cache segment '" + path + "'");
  }
  s.fd = fd;
  return Status::Ok();
}

Status NvmeTier::Recover(uint32_t i) {
  Segment& s = *segments_[i];
  AlignedBuffer head(kUnit);
  auto n = UringRead(s.fd, head.data, kUnit, data_bytes_);
  DirHeader h;
  if (!n.ok() || *n != kUnit || !DecodeDirHeader(head.data, &h) || h.count > data_bytes_ / kUnit) {
    RecoverByScan(i);
    return Status::Ok();
  }
  AlignedBuffer entries(std::max<size_t>(kUnit, static_cast<size_t>(h.count) * sizeof(DirEntry)));
  if (h.count > 0) {
    n = UringRead(s.fd, entries.data, entries.size, data_bytes_ + kUnit);
    if (!n.ok() || *n != entries.size) {
      RecoverByScan(i);
      return Status::Ok();
    }
  }
  auto* e = reinterpret_cast<const DirEntry*>(entries.data);
  if (!DirEntriesValid(h, e)) {
    RecoverByScan(i);
    return Status::Ok();
  }
  s.generation = h.generation;
  next_generation_ = std::max(next_generation_, h.generation + 1);
  for (uint32_t k = 0; k < h.count; ++k) {
    uint64_t end = static_cast<uint64_t>(e[k].offset_units) * kUnit + RecordBytes(e[k].length);
    if (end > data_bytes_) continue;  // cannot be ours; verification would reject it anyway
    Publish(i, e[k], h.generation);
    s.entries.push_back(e[k]);
    s.write_offset = std::max(s.write_offset, end);
  }
  s.sealed = true;
  return Status::Ok();
}

// After a crash the active segment has no directory: walk its records from the start,
// accepting only complete, verified records of the generation the first one carries.
void NvmeTier::RecoverByScan(uint32_t i) {
  Segment& s = *segments_[i];
  AlignedBuffer buf(RecordBytes(options_.block_size));
  uint64_t offset = 0;
  uint32_t generation = 0;
  while (offset + kUnit <= data_bytes_) {
    auto n = UringRead(s.fd, buf.data, kUnit, offset);
    if (!n.ok() || *n != kUnit) break;
    RecordHeader h;
    std::memcpy(&h, buf.data, sizeof h);
    if (!HeaderIntact(h) || h.length > options_.block_size) break;
    if (offset == 0) generation = h.generation;
    if (h.generation != generation) break;
    size_t rec = RecordBytes(h.length);
    if (offset + rec > data_bytes_) break;
    if (rec > kUnit) {
      n = UringRead(s.fd, buf.data + kUnit, rec - kUnit, offset + kUnit);
      if (!n.ok() || *n != rec - kUnit) break;
    }
    if (!RecordValid(h, Hash128{h.key_lo, h.key_hi}, h.index, buf.data + kRecordHeaderSize, rec))
      break;
    DirEntry e{h.key_lo, h.key_hi, h.index, static_cast<uint32_t>(offset / kUnit), h.length};
    Publish(i, e, generation);
    s.entries.push_back(e);
    offset += rec;
  }
  s.write_offset = offset;
  if (s.entries.empty()) return;  // free
  s.generation = generation;
  next_generation_ = std::max(next_generation_, generation + 1);
  // Seal it now so the next start-up reads a directory instead of scanning again.
  active_ = static_cast<int>(i);
  SealActive();
  sealed_fifo_.clear();  // Init() orders the FIFO itself
}

void NvmeTier::Publish(uint32_t seg, const DirEntry& e, uint32_t generation) {
  Hash128 key{e.key_lo, e.key_hi};
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  auto [it, inserted] = shard.map.try_emplace(key);
  if (!inserted) used_bytes_ -= RecordBytes(it->second.length);
  it->second = Loc{seg, generation, e.offset_units, e.length, e.index, false};
  used_bytes_ += RecordBytes(e.length);
  if (inserted) ++blocks_;
}

bool NvmeTier::RefusedWhenFull(const Pending& p) { return !admission_->MayEvict(p.refetched); }

void NvmeTier::Drop(const Hash128& key, const Loc& loc) {
  Shard& shard = ShardFor(key);
  std::lock_guard lock(shard.mu);
  auto it = shard.map.find(key);
  if (it == shard.map.end() || it->second.segment != loc.segment ||
      it->second.generation != loc.generation || it->second.offset_units != loc.offset_units) {
    return;
  }
  used_bytes_ -= RecordBytes(it->second.length);
  --blocks_;
  shard.map.erase(it);
}

bool NvmeTier::Find(const BlockKey& key, Loc* loc) {
  if (Skips(key)) return false;
  {
    Shard& shard = ShardFor(key.hash);
    std::lock_guard lock(shard.mu);
    auto it = shard.map.find(key.hash);
    if (it == shard.map.end()) {
      ++counters_.misses;  // a re-referenced miss enters the hit window in Put, once per fetch
      return false;
    }
    it->second.accessed = true;
    *loc = it->second;
  }
  admission_->CountLookup(true);
  return true;
}

std::shared_ptr<Block> NvmeTier::RecordBuffer(const Loc& loc) {
  try {
    return Block::AllocateWithOffset(RecordBytes(loc.length), kRecordHeaderSize);
  } catch (const std::bad_alloc&) {
    ++counters_.misses;
    return nullptr;
  }
}

std::shared_ptr<const Block> NvmeTier::Verified(const BlockKey& key, const Loc& loc,
                                                std::shared_ptr<Block> block,
                                                const Result<size_t>& n) {
  const size_t rec = RecordBytes(loc.length);
  if (!n.ok() || *n != rec) {
    ++counters_.errors;
    ++counters_.misses;
    TLOG_WARN_LIMITED(io_error_log_, "nvme cache: read failed: {}",
                      n.ok() ? "short read" : n.status().message());
    Drop(key.hash, loc);
    return nullptr;
  }
  RecordHeader h;
  std::memcpy(&h, block->storage(), sizeof h);
  if (!RecordValid(h, key.hash, key.index, block->data(), rec - kRecordHeaderSize) ||
      h.length != loc.length || h.generation != loc.generation) {
    ++counters_.misses;
    if (segments_[loc.segment]->generation.load() == loc.generation) {
      // Not a segment being rewritten under us: the bytes on disk are bad.
      ++counters_.checksum_failures;
      TLOG_WARN_LIMITED(io_error_log_,
                        "nvme cache: a block in segment {} failed verification; dropped",
                        loc.segment);
    }
    Drop(key.hash, loc);
    return nullptr;
  }
  block->set_size(h.length);
  ++counters_.hits;
  return block;
}

std::shared_ptr<const Block> NvmeTier::Get(const BlockKey& key) {
  Loc loc;
  if (!Find(key, &loc)) return nullptr;
  std::shared_ptr<Block> block = RecordBuffer(loc);
  if (block == nullptr) return nullptr;
  AboutToBlock();
  ++read_batches_;
  auto n = UringRead(segments_[loc.segment]->fd, block->storage(), RecordBytes(loc.length),
                     static_cast<uint64_t>(loc.offset_units) * kUnit);
  return Verified(key, loc, std::move(block), n);
}

void NvmeTier::GetBatch(std::span<const BlockKey* const> keys,
                        std::span<std::shared_ptr<const Block>> out) {
  struct Found {
    size_t i;
    Loc loc;
    std::shared_ptr<Block> block;
  };
  std::vector<Found> found;
  found.reserve(keys.size());
  for (size_t i = 0; i < keys.size(); ++i) {
    out[i] = nullptr;
    Loc loc;
    if (!Find(*keys[i], &loc)) continue;
    if (auto block = RecordBuffer(loc)) found.push_back(Found{i, loc, std::move(block)});
  }
  if (found.empty()) return;
  std::vector<ReadOp> ops(found.size());
  for (size_t j = 0; j < found.size(); ++j) {
    const Found& f = found[j];
    ops[j].fd = segments_[f.loc.segment]->fd;
    ops[j].buf = f.block->storage();
    ops[j].len = RecordBytes(f.loc.length);
    ops[j].offset = static_cast<uint64_t>(f.loc.offset_units) * kUnit;
  }
  AboutToBlock();
  ++read_batches_;
  UringReadBatch(ops);
  for (size_t j = 0; j < found.size(); ++j) {
    Found& f = found[j];
    out[f.i] = Verified(*keys[f.i], f.loc, std::move(f.block), ops[j].result);
  }
}

void NvmeTier::Put(const BlockKey& key, const std::shared_ptr<const Block>& block) {
  if (RecordBytes(block->size()) > data_bytes_ || Skips(key)) return;
  {
    Shard& shard = ShardFor(key.hash);
    std::lock_guard lock(shard.mu);
    if (shard.map.count(key.hash)) return;
  }
  const bool refetched = admission_->NoteFetch(key.hash);
  std::unique_lock lock(queue_mu_);
  // Backpressure: a reader faster than the disk waits (briefly) for the writer, so a cold
  // pass still lands on disk; only a stuck or failing disk makes blocks drop.
  space_cv_.wait_for(lock, std::chrono::seconds(2), [&] {
    return stopping_ || queued_bytes_ + block->size() <= options_.max_queue_bytes;
  });
  if (stopping_ || !writer_.joinable() ||
      queued_bytes_ + block->size() > options_.max_queue_bytes) {
    ++dropped_;
    return;
  }
  queued_bytes_ += block->size();
  queue_.push_back(Pending{key, block, refetched});
  // A writer gathering a batch wakes by itself when its window ends.
  if (!gathering_ || queued_bytes_ >= staging_size_) queue_cv_.notify_one();
}

void NvmeTier::Start() {
  std::lock_guard lock(queue_mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] {
    SetThreadName("tierfs-nvme");
    WriterLoop();
  });
}

void NvmeTier::Stop() {
  {
    std::lock_guard lock(queue_mu_);
    if (!writer_.joinable()) return;
    stopping_ = true;
    queue_cv_.notify_all();
  }
  space_cv_.notify_all();
  writer_.join();
  SealActive();
}

void NvmeTier::Flush() {
  std::unique_lock lock(queue_mu_);
  ++flush_waiters_;
  queue_cv_.notify_one();
  drained_cv_.wait(lock, [&] { return (queue_.empty() && !in_flight_) || !writer_.joinable(); });
  --flush_waiters_;
}

void NvmeTier::WriterLoop() {
  while (true) {
    std::deque<Pending> work;
    {
      std::unique_lock lock(queue_mu_);
      queue_cv_.wait(lock, [&] { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything queued is written
      // Gather a few milliseconds of blocks into one write: a stream of small files
      // otherwise costs a disk write (on a VM, an exit to the host) per file, competing
      // with the reads that fetch them.
      gathering_ = true;
      queue_cv_.wait_for(lock, kGatherWindow, [&] {
        return stopping_ || flush_waiters_ > 0 || queued_bytes_ >= staging_size_;
      });
      gathering_ = false;
      work.swap(queue_);
      queued_bytes_ = 0;
      in_flight_ = true;
    }
    space_cv_.notify_all();
    WriteBatch(std::move(work));
    std::lock_guard lock(queue_mu_);
    in_flight_ = false;
    if (queue_.empty()) drained_cv_.notify_all();
  }
  std::lock_guard lock(queue_mu_);
  drained_cv_.notify_all();
}

void NvmeTier::WriteBatch(std::deque<Pending> work) {
  while (!work.empty()) {
    Pending p = std::move(work.front());
    work.pop_front();
    {
      Shard& shard = ShardFor(p.key.hash);
      std::lock_guard lock(shard.mu);
      if (shard.map.count(p.key.hash)) continue;
    }
    bool staged = false;
    for (const DirEntry& e : staged_) {
      if (e.key_lo == p.key.hash.lo && e.key_hi == p.key.hash.hi) staged = true;
    }
    if (staged) continue;
    // A full cache (no free segment; the active one, if any, was made by eviction) takes
    // a block only if the admission policy would evict for it.
    const bool admission_checked = free_.empty() && (active_ < 0 || active_by_eviction_);
    if (admission_checked && RefusedWhenFull(p)) continue;
    const size_t len = p.block->size();
    const size_t rec = RecordBytes(len);
    if (active_ < 0 || segments_[active_]->write_offset + staging_used_ + rec > data_bytes_) {
      FlushStaging();
      SealActive();
      OpenNextSegment(p, admission_checked, &work);
      if (active_ < 0) {
        ++dropped_;
        continue;
      }
    }
    if (staging_used_ + rec > staging_size_) FlushStaging();
    Segment& seg = *segments_[active_];
    RecordHeader h = MakeRecordHeader(p.key.hash, p.key.index, seg.generation.load(),
                                      p.block->data(), static_cast<uint32_t>(len));
    char* dst = staging_ + staging_used_;
    std::memcpy(dst, &h, sizeof h);
    std::memcpy(dst + kRecordHeaderSize, p.block->data(), len);
    std::memset(dst + kRecordHeaderSize + len, 0, rec - kRecordHeaderSize - len);
    staged_.push_back(DirEntry{p.key.hash.lo, p.key.hash.hi, p.key.index,
                               static_cast<uint32_t>((seg.write_offset + staging_used_) / kUnit),
                               static_cast<uint32_t>(len)});
    staging_used_ += rec;
  }
  FlushStaging();
}

bool NvmeTier::FlushStaging() {
  if (staging_used_ == 0) return true;
  Segment& seg = *segments_[active_];
  auto n = UringWrite(seg.fd, staging_, staging_used_, seg.write_offset);
  bool ok = n.ok() && *n == staging_used_;
  if (ok) {
    const uint32_t gen = seg.generation.load();
    for (const DirEntry& e : staged_) {
      Publish(static_cast<uint32_t>(active_), e, gen);
      seg.entries.push_back(e);
      ++counters_.inserts;
    }
  } else {
    ++counters_.errors;
    dropped_ += staged_.size();
    TLOG_WARN("nvme cache: write of {} blocks failed: {}", staged_.size(),
              n.ok() ? "short write" : n.status().message());
  }
  seg.write_offset += staging_used_;  // on failure the region is skipped, never trusted
  staging_used_ = 0;
  staged_.clear();
  return ok;
}

void NvmeTier::SealActive() {
  if (active_ < 0) return;
  const uint32_t i = static_cast<uint32_t>(active_);
  Segment& seg = *segments_[i];
  active_ = -1;
  if (seg.entries.empty()) {
    free_.push_back(i);
    return;
  }
  std::vector<char> dir;
  EncodeDirectory(seg.generation.load(), seg.entries, &dir);
  AlignedBuffer buf(dir.size());
  std::memcpy(buf.data, dir.data(), dir.size());
  auto n = UringWrite(seg.fd, buf.data, buf.size, data_bytes_);
  if (!n.ok()) {
    ++counters_.errors;
    TLOG_WARN("nvme cache: cannot seal segment {}: {}", i, n.status().message());
  }
  seg.sealed = true;
  sealed_fifo_.push_back(i);
}

void NvmeTier::OpenNextSegment(const Pending& incoming, bool admission_checked,
                               std::deque<Pending>* work) {
  uint32_t i = 0;
  std::vector<Pending> keep;
  bool found = false;
  while (!free_.empty() && !found) {
    i = free_.front();
    free_.pop_front();
    // A segment file kept from before, or a new one.
    const Status st = segments_[i]->fd >= 0 ? Status::Ok() : OpenSegmentFile(i, /*create=*/true);
    if (st.ok()) {
      found = true;
    } else {
      // No room for another segment (ENOSPC, quota, or object files took the rest of the
      // cache size): the cache stays at the size it has.
      if (st.error() != EDQUOT) {
        ++counters_.errors;
        size_t allocated = 0;
        for (const auto& seg : segments_) allocated += seg->fd >= 0;
        TLOG_WARN("nvme cache: {}; continuing with {} segments", st.message(), allocated);
      }
      free_.clear();
    }
  }
  // Evicting for `incoming`: it must pass admission (unless the caller just checked it).
  if (!found && !admission_checked && RefusedWhenFull(incoming)) return;
  if (!found && !sealed_fifo_.empty()) {
    i = sealed_fifo_.front();
    sealed_fifo_.pop_front();
    Segment& victim = *segments_[i];
    const uint32_t gen = victim.generation.load();
    uint64_t keep_bytes = 0;
    for (const DirEntry& e : victim.entries) {
      Hash128 key{e.key_lo, e.key_hi};
      bool accessed = false;
      {
        Shard& shard = ShardFor(key);
        std::lock_guard lock(shard.mu);
        auto it = shard.map.find(key);
        if (it == shard.map.end() || it->second.segment != i || it->second.generation != gen)
          continue;
        accessed = it->second.accessed;
        used_bytes_ -= RecordBytes(it->second.length);
        --blocks_;
        shard.map.erase(it);
      }
      ++counters_.evictions;
      const size_t rec = RecordBytes(e.length);
      // Second chance for blocks read since they were written, up to half a segment.
      if (!accessed || keep_bytes + rec > data_bytes_ / 2) continue;
      auto block = Block::AllocateWithOffset(rec, kRecordHeaderSize);
      auto n = UringRead(victim.fd, block->storage(), rec,
                         static_cast<uint64_t>(e.offset_units) * kUnit);
      RecordHeader h;
      std::memcpy(&h, block->storage(), sizeof h);
      if (!n.ok() || *n != rec ||
          !RecordValid(h, key, e.index, block->data(), rec - kRecordHeaderSize)) {
        continue;
      }
      block->set_size(h.length);
      keep_bytes += rec;
      ++reinserted_;
      keep.push_back(Pending{BlockKey{{}, {}, e.index, key}, std::move(block), true});
    }
  } else if (!found) {
    return;
  }
  active_by_eviction_ = !found;
  Segment& seg = *segments_[i];
  // New generation before any byte is overwritten: readers of old locations then treat a
  // failed verification as a plain miss.
  seg.generation = next_generation_++;
  seg.entries.clear();
  seg.write_offset = 0;
  seg.sealed = false;
  AlignedBuffer zero(kUnit);
  if (!UringWrite(seg.fd, zero.data, kUnit, data_bytes_).ok())
    ++counters_.errors;  // drop the old directory
  active_ = static_cast<int>(i);
  for (auto it = keep.rbegin(); it != keep.rend(); ++it) work->push_front(std::move(*it));
}

TierStats NvmeTier::Stats() const {
  TierStats s;
  s.capacity_bytes = segments_.size() * segment_size_;
  s.used_bytes = used_bytes_;
  s.blocks = blocks_;
  counters_.Fill(&s);
  return s;
}

}  // namespace tierfs
