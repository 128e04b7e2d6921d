#include "ufs/listing.h"

#include <libxml/HTMLparser.h>
#include <libxml/tree.h>
#include <time.h>

#include <nlohmann/json.hpp>
#include <set>

#include "ufs/http_client.h"

namespace tierfs {
namespace {

// The path part of an absolute URL ("http://h:p/a/b/" -> "/a/b/"), and its origin.
void SplitUrl(const std::string& url, std::string* origin, std::string* path) {
  size_t scheme = url.find("://");
  size_t slash = scheme == std::string::npos ? 0 : url.find('/', scheme + 3);
  if (slash == std::string::npos) {
    *origin = url;
    *path = "/";
    return;
  }
  *origin = url.substr(0, slash);
  *path = url.substr(slash);
}

// Turns an href into a child entry of the directory at dir_url, if it is one.
std::optional<ListingEntry> ChildFromHref(std::string href, const std::string& dir_url) {
  if (href.empty() || href[0] == '?' || href[0] == '#') return std::nullopt;
  std::string origin, dir_path;
  SplitUrl(dir_url, &origin, &dir_path);
  std::string rel;
  if (href.find("://") != std::string::npos) {
    if (href.rfind(dir_url, 0) != 0) return std::nullopt;  // another host or elsewhere
    rel = href.substr(dir_url.size());
  } else if (href.rfind("//", 0) == 0) {
    return std::nullopt;  // scheme-relative: another host
  } else if (href[0] == '/') {
    if (href.rfind(dir_path, 0) != 0) return std::nullopt;  // parent or elsewhere
    rel = href.substr(dir_path.size());
  } else {
    if (href.find(':') != std::string::npos && href.find(':') < href.find('/')) {
      return std::nullopt;  // mailto:, javascript:, ...
    }
    rel = href;
    while (rel.rfind("./", 0) == 0) rel.erase(0, 2);
  }
  if (rel.find('?') != std::string::npos || rel.find('#') != std::string::npos) return std::nullopt;
  ListingEntry entry;
  if (!rel.empty() && rel.back() == '/') {
    entry.is_dir = true;
    rel.pop_back();
  }
  if (rel.empty() || rel.find('/') != std::string::npos) return std::nullopt;
  if (!PercentDecode(rel, &entry.name)) return std::nullopt;
  if (entry.name == "." || entry.name == "..") return std::nullopt;
  return entry;
}

void CollectLinks(xmlNode* node, std::vector<std::string>* hrefs) {
  for (xmlNode* n = node; n != nullptr; n = n->next) {
    if (n->type == XML_ELEMENT_NODE && xmlStrcasecmp(n->name, BAD_CAST "a") == 0) {
      xmlChar* href = xmlGetProp(n, BAD_CAST "href");
      if (href != nullptr) {
        hrefs->emplace_back(reinterpret_cast<const char*>(href));
        xmlFree(href);
      }
    }
    CollectLinks(n->children, hrefs);
  }
}

}  // namespace

Result<std::vector<ListingEntry>> ParseHtmlListing(std::string_view html,
                                                   const std::string& dir_url) {
  if (html.size() > (64u << 20)) return Status::Invalid("listing larger than 64 MiB");
  htmlDocPtr doc =
      htmlReadMemory(html.data(), static_cast<int>(html.size()), dir_url.c_str(), nullptr,
                     HTML_PARSE_RECOVER | HTML_PARSE_NOERROR | HTML_PARSE_NOWARNING |
                         HTML_PARSE_NONET | HTML_PARSE_NOBLANKS);
  if (doc == nullptr) return Status::Invalid("listing at " + dir_url + " is not HTML");
  std::vector<std::string> hrefs;
  CollectLinks(xmlDocGetRootElement(doc), &hrefs);
  xmlFreeDoc(doc);
  std::vector<ListingEntry> out;
  std::set<std::string> seen;
  for (auto& href : hrefs) {
    auto entry = ChildFromHref(std::move(href), dir_url);
    if (entry && seen.insert(entry->name).second) out.push_back(std::move(*entry));
  }
  return out;
}

namespace {

// item[key] if it is a string, else null. nlohmann's value()/get() throw on a type
// mismatch, so every field of a listing goes through a checked accessor like this one.
const std::string* StringField(const nlohmann::json& item, const char* key) {
  auto it = item.find(key);
  return it != item.end() && it->is_string() ? &it->get_ref<const std::string&>() : nullptr;
}

}  // namespace

Result<std::vector<ListingEntry>> ParseNginxJsonListing(std::string_view json) {
  nlohmann::json doc = nlohmann::json::parse(json, nullptr, /*allow_exceptions=*/false);
  if (!doc.is_array()) return Status::Invalid("listing is not an nginx JSON index");
  std::vector<ListingEntry> out;
  std::set<std::string> seen;
  for (const auto& item : doc) {
    if (!item.is_object()) continue;
    const std::string* name = StringField(item, "name");
    const std::string* type = StringField(item, "type");
    if (name == nullptr || type == nullptr) continue;
    ListingEntry e;
    e.name = *name;
    if (*type == "directory") {
      e.is_dir = true;
    } else if (*type == "file") {
      auto size = item.find("size");
      if (size != item.end() && size->is_number_unsigned()) e.size = size->get<uint64_t>();
    } else {
      continue;  // "other" (sockets, devices) or unknown
    }
    if (const std::string* mtime = StringField(item, "mtime")) e.mtime = *mtime;
    if (e.name.empty() || !seen.insert(e.name).second) continue;
    out.push_back(std::move(e));
  }
  return out;
}

std::optional<int64_t> ParseHttpDate(const std::string& date) {
  static const char* kFormats[] = {"%a, %d %b %Y %H:%M:%S GMT", "%A, %d-%b-%y %H:%M:%S GMT",
                                   "%a %b %e %H:%M:%S %Y"};
  for (const char* f : kFormats) {
    struct tm tm = {};
    const char* end = strptime(date.c_str(), f, &tm);
    if (end != nullptr && *end == '\0') return static_cast<int64_t>(timegm(&tm)) * 1000000000;
  }
  return std::nullopt;
}

}  // namespace tierfs
