// Fuzzes the NVMe cache's segment reader with hostile segment files, the way a crash, a
// bad disk or an older buggy writer could leave them. A real cache is built once; each
// input then rewrites part of its first segment and the tier is reopened:
//   mode 0: raw bytes at an offset (torn writes, bit rot);
//   mode 1: a directory whose checksums are valid but whose entries are the input
//           (offsets past the end, overlapping records, lengths out of range);
//   mode 2: record headers with valid header checksums (what a scan has to reject).
// Whatever the damage, Open must succeed and every block Get returns must hold exactly the
// bytes that were cached for that key: a wrong byte aborts.
#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string>
#include <vector>

#include "common/checksum.h"
#include "tiers/block.h"
#include "tiers/nvme_tier.h"
#include "tiers/segment_format.h"

namespace fs = std::filesystem;
using namespace tierfs;

namespace {
constexpr size_t kBlock = 64 << 10;
constexpr int kBlocks = 12;

struct Fixture {
  std::string pristine, work;
  std::vector<std::string> data;
  std::vector<BlockKey> keys;
  uint64_t segment_size = 0;
  uint64_t dir_offset = 0;  // where the sealed directory of seg-00000 starts
};

NvmeTierOptions Options(const std::string& dir) {
  NvmeTierOptions o;
  o.dir = dir;
  o.capacity = 8 << 20;
  o.block_size = kBlock;
  o.segment_size = 2 << 20;
  o.direct_io = false;  // tmpfs and friends
  return o;
}

Fixture& Setup() {
  static Fixture* f = [] {
    auto* f = new Fixture;
    char tmpl[] = "/tmp/tierfs-segfuzz.XXXXXX";
    std::string base = ::mkdtemp(tmpl);
    f->pristine = base + "/pristine";
    f->work = base + "/work";
    for (int i = 0; i < kBlocks; ++i) {
      std::string d(kBlock - static_cast<size_t>(i) * 1000, '\0');
      for (size_t j = 0; j < d.size(); ++j)
        d[j] = static_cast<char>((j * 131 + static_cast<size_t>(i) * 7) >> 3);
      f->data.push_back(d);
      f->keys.push_back(
          MakeBlockKey(ObjectRef{"file" + std::to_string(i % 3), "v1"}, static_cast<uint64_t>(i)));
    }
    {
      auto t = NvmeTier::Open(Options(f->pristine));
      if (!t.ok()) std::abort();
      (*t)->Start();
      for (int i = 0; i < kBlocks; ++i) {
        auto b = Block::Allocate(f->data[i].size());
        std::memcpy(b->mutable_data(), f->data[i].data(), f->data[i].size());
        b->set_size(f->data[i].size());
        (*t)->Put(f->keys[i], b);
      }
      (*t)->Flush();
      f->segment_size = (*t)->segment_size();
    }
    { auto t = NvmeTier::Open(Options(f->pristine)); }  // the scan seals seg-00000
    int fd = ::open((f->pristine + "/seg-00000").c_str(), O_RDONLY);
    std::vector<char> buf(kUnit);
    for (uint64_t off = 0; off + kUnit <= f->segment_size; off += kUnit) {
      if (::pread(fd, buf.data(), kUnit, static_cast<off_t>(off)) != static_cast<ssize_t>(kUnit))
        break;
      DirHeader h;
      if (DecodeDirHeader(buf.data(), &h)) {
        f->dir_offset = off;
        break;
      }
    }
    ::close(fd);
    if (f->dir_offset == 0) std::abort();  // the harness needs a sealed segment
    return f;
  }();
  return *f;
}

void Write(const std::string& path, uint64_t offset, const void* data, size_t size) {
  int fd = ::open(path.c_str(), O_WRONLY);
  if (fd < 0) return;
  (void)!::pwrite(fd, data, size, static_cast<off_t>(offset));
  ::close(fd);
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Fixture& f = Setup();
  if (size < 5) return 0;
  // libFuzzer's timer signal may interrupt the copy (EINTR): start it again.
  for (int tries = 0;; ++tries) {
    std::error_code ec;
    fs::remove_all(f.work, ec);
    fs::copy(f.pristine, f.work, fs::copy_options::recursive, ec);
    if (!ec) break;
    if (ec.value() != EINTR || tries == 100) std::abort();
  }
  const std::string seg = f.work + "/seg-00000";
  const uint8_t mode = data[0] % 3;
  uint32_t where;
  std::memcpy(&where, data + 1, 4);
  data += 5;
  size -= 5;
  if (mode == 0) {
    Write(seg, where % f.segment_size, data,
          std::min<size_t>(size, f.segment_size - where % f.segment_size));
  } else if (mode == 1) {
    std::vector<DirEntry> entries(size / sizeof(DirEntry));
    if (!entries.empty()) std::memcpy(entries.data(), data, entries.size() * sizeof(DirEntry));
    std::vector<char> dir;
    EncodeDirectory(where, entries, &dir);
    if (f.dir_offset + dir.size() <= f.segment_size)
      Write(seg, f.dir_offset, dir.data(), dir.size());
  } else {
    RecordHeader h;
    std::memset(&h, 0, sizeof h);
    std::memcpy(&h, data, std::min(size, sizeof h));
    h.magic = kRecordMagic;
    h.header_xxh3 = Xxh3(&h, offsetof(RecordHeader, header_xxh3));
    uint64_t off = (where % (f.segment_size / kUnit)) * kUnit;
    Write(seg, off, &h, sizeof h);
    // Also break the directory so start-up has to scan.
    if (where & 1) Write(seg, f.dir_offset, "broken", 6);
  }
  auto t = NvmeTier::Open(Options(f.work));
  if (!t.ok()) std::abort();  // a damaged cache is a smaller cache, never an error
  for (int i = 0; i < kBlocks; ++i) {
    auto b = (*t)->Get(f.keys[i]);
    if (b && (b->size() != f.data[i].size() ||
              std::memcmp(b->data(), f.data[i].data(), b->size()) != 0)) {
      std::abort();  // wrong bytes served
    }
  }
  return 0;
}
