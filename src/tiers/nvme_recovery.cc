// NvmeTier start-up: the layout check, segment files, and recovery of what survived
// (a sealed segment's directory, or a scan of the segment that was active at a crash).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/log.h"
#include "tiers/nvme_internal.h"
#include "tiers/nvme_tier.h"
#include "tiers/uring_io.h"

namespace tierfs {
namespace fs = std::filesystem;
using nvme_internal::AlignedBuffer;
using nvme_internal::kLayoutFormat;
using nvme_internal::kMaxSegment;

namespace {

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
  // Seal it now so the next start-up reads a directory instead of scanning again (Init()
  // puts it in the eviction order with the others).
  WriteDirectory(i);
  s.sealed = true;
}

}  // namespace tierfs
