// Parsers for directory listings served over HTTP: Apache mod_autoindex, nginx autoindex
// (html and json) and python's http.server. Only direct children of the listed directory
// are returned; parent links, sort links, links to other hosts or elsewhere on the server
// are dropped. Names are percent-decoded; whether they are safe is the index builder's call.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/status.h"

namespace tierfs {

struct ListingEntry {
  std::string name;
  bool is_dir = false;
  std::optional<uint64_t> size;      // exact sizes only
  std::optional<std::string> mtime;  // an HTTP date, when the listing gives it exactly
};

// `dir_url` is the listed directory's URL, ending in '/'.
Result<std::vector<ListingEntry>> ParseHtmlListing(std::string_view html,
                                                   const std::string& dir_url);
Result<std::vector<ListingEntry>> ParseNginxJsonListing(std::string_view json);

// Parses an HTTP date (RFC 7231 IMF-fixdate, also RFC 850/asctime) to Unix nanoseconds.
std::optional<int64_t> ParseHttpDate(const std::string& date);

}  // namespace tierfs
