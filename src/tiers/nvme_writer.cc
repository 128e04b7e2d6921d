// NvmeTier's writer thread: gathers queued blocks into batched writes, seals full
// segments (their directory into the tail), and makes room by evicting the oldest sealed
// segment, giving blocks read since they were written a second chance.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstring>

#include "common/log.h"
#include "tiers/nvme_internal.h"
#include "tiers/nvme_tier.h"
#include "tiers/uring_io.h"

namespace tierfs {
using nvme_internal::AlignedBuffer;

void NvmeTier::Start() {
  MutexLock lock(queue_mu_);
  if (writer_.joinable()) return;
  stopping_ = false;
  writer_ = std::thread([this] {
    SetThreadName("tierfs-nvme");
    WriterLoop();
  });
}

void NvmeTier::Stop() {
  {
    MutexLock lock(queue_mu_);
    if (!writer_.joinable()) return;
    stopping_ = true;
    queue_cv_.notify_all();
  }
  space_cv_.notify_all();
  writer_.join();
  SealActive();
}

void NvmeTier::Flush() {
  MutexLock lock(queue_mu_);
  ++flush_waiters_;
  queue_cv_.notify_one();
  drained_cv_.wait(lock.native(), [&]() REQUIRES(queue_mu_) {
    return (queue_.empty() && !in_flight_) || !writer_.joinable();
  });
  --flush_waiters_;
}

void NvmeTier::WriterLoop() {
  while (true) {
    std::deque<Pending> work;
    {
      MutexLock lock(queue_mu_);
      queue_cv_.wait(lock.native(),
                     [&]() REQUIRES(queue_mu_) { return stopping_ || !queue_.empty(); });
      if (queue_.empty()) break;  // stopping, and everything queued is written
      // Gather a few milliseconds of blocks into one write: a stream of small files
      // otherwise costs a disk write (on a VM, an exit to the host) per file, competing
      // with the reads that fetch them.
      gathering_ = true;
      queue_cv_.wait_for(lock.native(), kGatherWindow, [&]() REQUIRES(queue_mu_) {
        return stopping_ || flush_waiters_ > 0 || queued_bytes_ >= staging_size_;
      });
      gathering_ = false;
      work.swap(queue_);
      queued_bytes_ = 0;
      in_flight_ = true;
    }
    space_cv_.notify_all();
    WriteBatch(std::move(work));
    MutexLock lock(queue_mu_);
    in_flight_ = false;
    if (queue_.empty()) drained_cv_.notify_all();
  }
  MutexLock lock(queue_mu_);
  drained_cv_.notify_all();
}

void NvmeTier::WriteBatch(std::deque<Pending> work) {
  while (!work.empty()) {
    Pending p = std::move(work.front());
    work.pop_front();
    {
      Shard& shard = ShardFor(p.key.hash);
      MutexLock lock(shard.mu);
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

void NvmeTier::WriteDirectory(uint32_t i) {
  Segment& seg = *segments_[i];
  std::vector<char> dir;
  EncodeDirectory(seg.generation.load(), seg.entries, &dir);
  AlignedBuffer buf(dir.size());
  std::memcpy(buf.data, dir.data(), dir.size());
  auto n = UringWrite(seg.fd, buf.data, buf.size, data_bytes_);
  if (!n.ok()) {
    ++counters_.errors;
    TLOG_WARN("nvme cache: cannot seal segment {}: {}", i, n.status().message());
  }
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
  WriteDirectory(i);
  seg.sealed = true;
  sealed_fifo_.push_back(i);
}

bool NvmeTier::TakeFreeSegment(uint32_t* i) {
  while (!free_.empty()) {
    *i = free_.front();
    free_.pop_front();
    // A segment file kept from before, or a new one.
    const Status st = segments_[*i]->fd >= 0 ? Status::Ok() : OpenSegmentFile(*i, /*create=*/true);
    if (st.ok()) return true;
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
  return false;
}

bool NvmeTier::EvictOldest(uint32_t* i, std::vector<Pending>* keep) {
  if (sealed_fifo_.empty()) return false;
  *i = sealed_fifo_.front();
  sealed_fifo_.pop_front();
  Segment& victim = *segments_[*i];
  const uint32_t gen = victim.generation.load();
  uint64_t keep_bytes = 0;
  for (const DirEntry& e : victim.entries) {
    const Hash128 key{e.key_lo, e.key_hi};
    bool accessed = false;
    if (!Erase(key, *i, gen, std::nullopt, &accessed)) continue;
    ++counters_.evictions;
    const size_t rec = RecordBytes(e.length);
    // Second chance for blocks read since they were written, up to half a segment.
    if (!accessed || keep_bytes + rec > data_bytes_ / 2) continue;
    auto block = Block::AllocateWithOffset(rec, kRecordHeaderSize);
    auto n =
        UringRead(victim.fd, block->storage(), rec, static_cast<uint64_t>(e.offset_units) * kUnit);
    RecordHeader h;
    std::memcpy(&h, block->storage(), sizeof h);
    if (!n.ok() || *n != rec ||
        !RecordValid(h, key, e.index, block->data(), rec - kRecordHeaderSize)) {
      continue;
    }
    block->set_size(h.length);
    keep_bytes += rec;
    ++reinserted_;
    keep->push_back(Pending{BlockKey{{}, {}, e.index, key}, std::move(block), true});
  }
  return true;
}

void NvmeTier::OpenNextSegment(const Pending& incoming, bool admission_checked,
                               std::deque<Pending>* work) {
  uint32_t i = 0;
  std::vector<Pending> keep;
  const bool fresh = TakeFreeSegment(&i);
  if (!fresh) {
    // Evicting for `incoming`: it must pass admission (unless the caller just checked it).
    if (!admission_checked && RefusedWhenFull(incoming)) return;
    if (!EvictOldest(&i, &keep)) return;
  }
  active_by_eviction_ = !fresh;
  Segment& seg = *segments_[i];
  // New generation before any byte is overwritten: readers of old locations then treat a
  // failed verification as a plain miss.
  seg.generation = next_generation_++;
  seg.entries.clear();
  seg.write_offset = 0;
  seg.sealed = false;
  AlignedBuffer zero(kUnit);
  if (!UringWrite(seg.fd, zero.data, kUnit, data_bytes_).ok()) {
    ++counters_.errors;  // the old directory stays: its records fail verification (misses)
  }
  active_ = static_cast<int>(i);
  // Blocks given a second chance go first, in their old order.
  for (auto it = keep.rbegin(); it != keep.rend(); ++it) work->push_front(std::move(*it));
}

}  // namespace tierfs
