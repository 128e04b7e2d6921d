#include "common/size.h"

#include <cctype>
#include <cmath>
#include <cstdio>

namespace tierfs {

Result<uint64_t> ParseSize(std::string_view text) {
  const std::string original(text);
  auto bad = [&] {
    return Status::Invalid("invalid size '" + original + "' (use e.g. 512M, 4G, 2Gi)");
  };
  if (text.empty() || text.size() > 32) return bad();
  size_t i = 0;
  uint64_t whole = 0;
  bool digits = false;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (whole > (UINT64_MAX - 9) / 10) return bad();
    whole = whole * 10 + static_cast<uint64_t>(text[i] - '0');
    ++i;
    digits = true;
  }
  double frac = 0;
  if (i < text.size() && text[i] == '.') {
    ++i;
    double scale = 0.1;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
      frac += scale * (text[i] - '0');
      scale /= 10;
      ++i;
      digits = true;
    }
  }
  if (!digits) return bad();
  std::string_view suffix = text.substr(i);
  int shift = 0;
  if (!suffix.empty()) {
    switch (std::toupper(static_cast<unsigned char>(suffix[0]))) {
      case 'K':
        shift = 10;
        break;
      case 'M':
        shift = 20;
        break;
      case 'G':
        shift = 30;
        break;
      case 'T':
        shift = 40;
        break;
      case 'P':
        shift = 50;
        break;
      case 'B':
        shift = 0;
        break;
      default:
        return bad();
    }
    std::string_view rest = suffix.substr(1);
    if (shift == 0 && !rest.empty()) return bad();
    if (rest == "i" || rest == "iB" || rest == "B" || rest.empty()) {
      // accepted spellings
    } else {
      return bad();
    }
  }
  if (shift > 0 && whole > (UINT64_MAX >> shift)) return bad();
  uint64_t value = whole << shift;
  double extra = std::floor(frac * std::ldexp(1.0, shift));
  if (extra > 0) {
    if (value > UINT64_MAX - static_cast<uint64_t>(extra)) return bad();
    value += static_cast<uint64_t>(extra);
  }
  return value;
}

std::string FormatSize(uint64_t bytes) {
  static const char* kUnits[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
  double v = static_cast<double>(bytes);
  int u = 0;
  while (v >= 1024 && u < 5) {
    v /= 1024;
    ++u;
  }
  char buf[32];
  if (u == 0) {
    std::snprintf(buf, sizeof buf, "%llu B", static_cast<unsigned long long>(bytes));
  } else {
    std::snprintf(buf, sizeof buf, "%.1f %s", v, kUnits[u]);
  }
  return buf;
}

}  // namespace tierfs
