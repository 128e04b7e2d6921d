// The options of `tierfs mount`, defined once. Each row of MountOptionTable() is an option
// with its value type, range or choices, help text and the MountConfig field it sets; from
// it come all three spellings:
//   --cache-size 50G            the command line (AddMountOptions registers the flags)
//   -o cache_size=50G           fstab, mount -t fuse.tierfs, Fluid (ApplyMountOptions)
//   cache-size = "50G"          a --config TOML file (CLI11 feeds it to the same flags)
// and every spelling validates with ApplyMountOption, so the checks and the error text
// (after the key as the user wrote it) are the same. The man page lists the options; the
// unit test walks this table through all three spellings and through the man page.
//
// To add an option: add a field to MountConfig (or StoreOptions), a row here, a paragraph
// in packaging/man/tierfs.1. Nothing else lists options.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "cli/mount_command.h"
#include "common/status.h"
#include "metadata/index.h"

namespace CLI {
class App;
}

namespace tierfs {

enum class OptionType {
  kText,    // any string
  kSize,    // 512M, 4G, 2Gi (ParseSize)
  kNumber,  // a whole number in [lo, hi]
  kChoice,  // one of `choices`, '|'-separated
  kFlag,    // no value (-o key, key=true|false; in TOML key = true)
};

// A parsed value, by the option's type.
struct OptionValue {
  std::string text;      // kText, kChoice
  uint64_t size = 0;     // kSize
  long long number = 0;  // kNumber
};

struct MountOption {
  const char* name;  // the long flag without "--"; the TOML key; '-' -> '_' gives the -o key
  OptionType type;
  const char* help;
  long long lo = 0, hi = 0;       // kNumber: the accepted range
  const char* choices = nullptr;  // kChoice: "auto|on|off"
  // Sets the field(s); may refuse a value its type accepts (message without the key).
  Status (*set)(MountConfig* config, const OptionValue& value) = nullptr;
  bool store = false;  // a remote-access option: also taken by `index build` / `publish`
  bool fstab = true;   // has an -o spelling (false: -f and -d, which only make sense by hand)
  const char* short_name = nullptr;  // "-f"
  bool repeated = false;             // may be given many times; each use adds one value
};

std::span<const MountOption> MountOptionTable();

// The row named `key` in any spelling ("cache-size", "cache_size"), or nullptr.
const MountOption* FindMountOption(std::string_view key);

// "cache_size" for "cache-size".
std::string FstabKey(const MountOption& option);

// Checks `value` against the option's type and sets it. The message names no key; each
// spelling puts the key in front as the user wrote it.
Status ApplyMountOption(const MountOption& option, const std::string& value, MountConfig* config);

// Folds a comma-separated -o list into `config`: table keys (with '_') set fields, with
// errors "option KEY: ..."; the options mount(8) and fstab use for themselves (_netdev,
// nofail, noauto, x-systemd.*, ...) are dropped; everything else is kept for libfuse.
Status ApplyMountOptions(const std::string& options, MountConfig* config);

// Checks the mount's sources and fills each one's StoreOptions: the paths (one line for a
// bad, duplicate or nested one), each source's own options (remote-access rows only).
// A lone source at "/" becomes `source` with its options folded into `store`, the mount
// of one source it always was. Called by RunMount before anything is touched.
Status ResolveSources(MountConfig* config);

// How index builds for this mount's sources open archives (--archives, --archive-names;
// each source of a namespace its own).
BuildOptions IndexBuildOptions(const MountConfig& config);

// Registers every row as a flag of `cmd` writing into `*config` (only the store rows when
// `store_only`, for the index commands).
void AddMountOptions(CLI::App* cmd, MountConfig* config, bool store_only);

// Lets `tierfs mount --config FILE` read a TOML file of mount options (keys = the long
// option names, plus source and mountpoint); call on the top-level app.
void AddMountConfigFile(CLI::App* app);

}  // namespace tierfs
