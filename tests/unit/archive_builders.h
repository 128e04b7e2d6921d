// Tar and zip archives built in memory for tests, including malformed ones.
#pragma once

#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <cstring>
#include <string>
#include <vector>

namespace tierfs::testing {

class TarBuilder {
 public:
  // One header (and its data, padded). `type`: '0' file, '5' dir, '2' symlink, '1' hard
  // link, 'L' GNU long name, 'x' PAX, or anything else.
  TarBuilder& Add(const std::string& name, const std::string& data, char type = '0',
                  const std::string& link = "", const std::string& prefix = "") {
    std::string h(512, '\0');
    std::memcpy(h.data(), name.data(), std::min<size_t>(name.size(), 100));
    Octal(h, 100, 8, 0644);
    Octal(h, 108, 8, 0);
    Octal(h, 116, 8, 0);
    Octal(h, 124, 12, data.size());
    Octal(h, 136, 12, 1700000000);
    h[156] = type;
    std::memcpy(h.data() + 157, link.data(), std::min<size_t>(link.size(), 100));
    std::memcpy(h.data() + 257,
                "ustar\0"
                "00",
                8);
    std::memcpy(h.data() + 345, prefix.data(), std::min<size_t>(prefix.size(), 155));
    std::memset(h.data() + 148, ' ', 8);
    unsigned sum = 0;
    for (char c : h) sum += static_cast<uint8_t>(c);
    char chk[8];
    std::snprintf(chk, sizeof chk, "%06o", sum);
    std::memcpy(h.data() + 148, chk, 7);
    out_ += h;
    out_ += data;
    out_.append((512 - data.size() % 512) % 512, '\0');
    return *this;
  }
  TarBuilder& Pax(const std::string& key, const std::string& value) {
    std::string rec = " " + key + "=" + value + "\n";
    size_t len = rec.size() + 1;
    while (std::to_string(len).size() + rec.size() != len) ++len;
    return Add("PaxHeader", std::to_string(len) + rec, 'x');
  }
  std::string Finish() const { return out_ + std::string(1024, '\0'); }
  const std::string& bytes() const { return out_; }

 private:
  static void Octal(std::string& h, size_t at, size_t width, uint64_t v) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%0*llo", static_cast<int>(width - 1),
                  static_cast<unsigned long long>(v));
    std::memcpy(h.data() + at, buf, width - 1);
  }
  std::string out_;
};

class ZipBuilder {
 public:
  struct Options {
    bool deflate = false;
    bool encrypted = false;
    uint16_t method = 0xffff;  // override the method field
    uint32_t mode = 0100644;   // unix mode (made by unix)
    bool zip64 = false;        // sizes and offset through the zip64 extra field
    std::string local_extra;   // bytes in the local header's extra field only
  };
  ZipBuilder& Add(const std::string& name, const std::string& data, Options o) {
    std::string packed = data;
    uint16_t method = 0;
    if (o.deflate) {
      packed = Deflate(data);
      method = 8;
    }
    if (o.method != 0xffff) method = o.method;
    const uint32_t crc = static_cast<uint32_t>(
        crc32(0, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
    const uint64_t offset = out_.size();
    std::string local;
    Le(local, 0x04034b50, 4);
    Le(local, 20, 2);
    Le(local, o.encrypted ? 1 : 0, 2);
    Le(local, method, 2);
    Le(local, 0, 4);  // time, date
    Le(local, crc, 4);
    Le(local, packed.size(), 4);
    Le(local, data.size(), 4);
    Le(local, name.size(), 2);
    Le(local, o.local_extra.size(), 2);
    out_ += local + name + o.local_extra + packed;
    std::string extra;
    if (o.zip64) {
      Le(extra, 0x0001, 2);
      Le(extra, 24, 2);
      Le(extra, data.size(), 8);
      Le(extra, packed.size(), 8);
      Le(extra, offset, 8);
    }
    std::string c;
    Le(c, 0x02014b50, 4);
    Le(c, 0x031e, 2);  // made by unix
    Le(c, 20, 2);
    Le(c, o.encrypted ? 1 : 0, 2);
    Le(c, method, 2);
    Le(c, 0, 4);
    Le(c, crc, 4);
    Le(c, o.zip64 ? 0xffffffff : packed.size(), 4);
    Le(c, o.zip64 ? 0xffffffff : data.size(), 4);
    Le(c, name.size(), 2);
    Le(c, extra.size(), 2);
    Le(c, 0, 2);  // comment
    Le(c, 0, 2);  // disk
    Le(c, 0, 2);  // internal
    Le(c, static_cast<uint64_t>(o.mode) << 16, 4);
    Le(c, o.zip64 ? 0xffffffff : offset, 4);
    central_ += c + name + extra;
    ++count_;
    return *this;
  }
  ZipBuilder& Add(const std::string& name, const std::string& data) { return Add(name, data, {}); }
  // `claim`: the member count the end record states (default: the real one).
  // `zip64_end`: the counts and offsets in a zip64 end record (the classic one says 0xff..).
  std::string Finish(int64_t claim = -1, bool zip64_end = false) const {
    std::string out = out_ + central_;
    if (zip64_end) {
      const uint64_t at = out.size();
      std::string z;
      Le(z, 0x06064b50, 4);
      Le(z, 44, 8);
      Le(z, 0x031e, 2);
      Le(z, 45, 2);
      Le(z, 0, 8);  // disks
      Le(z, count_, 8);
      Le(z, count_, 8);
      Le(z, central_.size(), 8);
      Le(z, out_.size(), 8);
      Le(z, 0x07064b50, 4);  // the locator
      Le(z, 0, 4);
      Le(z, at, 8);
      Le(z, 1, 4);
      std::string e;
      Le(e, 0x06054b50, 4);
      Le(e, 0, 4);
      Le(e, 0xffff, 2);
      Le(e, 0xffff, 2);
      Le(e, 0xffffffff, 4);
      Le(e, 0xffffffff, 4);
      Le(e, 0, 2);
      return out + z + e;
    }
    std::string e;
    Le(e, 0x06054b50, 4);
    Le(e, 0, 4);
    const uint64_t n = claim >= 0 ? static_cast<uint64_t>(claim) : count_;
    Le(e, n, 2);
    Le(e, n, 2);
    Le(e, central_.size(), 4);
    Le(e, out_.size(), 4);
    Le(e, 0, 2);
    return out + e;
  }

  static std::string Deflate(const std::string& data) {
    z_stream z = {};
    deflateInit2(&z, 6, Z_DEFLATED, -MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
    std::string out(deflateBound(&z, data.size()) + 16, '\0');
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(data.data()));
    z.avail_in = static_cast<uInt>(data.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    deflate(&z, Z_FINISH);
    out.resize(z.total_out);
    deflateEnd(&z);
    return out;
  }

 private:
  static void Le(std::string& s, uint64_t v, int bytes) {
    for (int i = 0; i < bytes; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  }
  std::string out_, central_;
  uint64_t count_ = 0;
};

}  // namespace tierfs::testing
