// Fuzzes the HTTP directory listing parsers (Apache/nginx/python HTML, nginx JSON) and the
// HTTP date parser. Names are percent-decoded, so "a%2Fb" comes back as "a/b": keeping
// such names out of the tree is IsSafeName's job at index build, checked here too.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "common/names.h"
#include "ufs/listing.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto check = [](const auto& entries) {
    if (!entries.ok()) return;
    for (const auto& e : *entries) {
      if (tierfs::IsSafeName(e.name) &&
          (e.name.find('/') != std::string::npos || e.name.find('\0') != std::string::npos ||
           e.name == "." || e.name == "..")) {
        std::abort();  // an unsafe name would reach the tree
      }
    }
  };
  check(tierfs::ParseHtmlListing(text, "http://127.0.0.1:8080/data/set/"));
  check(tierfs::ParseNginxJsonListing(text));
  (void)tierfs::ParseHttpDate(std::string(text.substr(0, 64)));
  return 0;
}
