#!/usr/bin/env bash
# Who may read the mount: only the mounting user unless -o allow_other; with allow_other,
# default_permissions makes the kernel enforce the modes recorded in the index (a 0600
# file stays private). Checked as the unprivileged user "nobody".
source "$(dirname "$0")/lib.sh"
need_fuse
command -v setpriv > /dev/null || { echo "SKIP: setpriv missing"; exit 77; }
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups -- "$@"; }

chmod 755 "$WORK"
SRC=$WORK/src MNT=$WORK/mnt
mkdir -p "$SRC/private" "$MNT"
echo "for everyone" > "$SRC/public.txt" && chmod 644 "$SRC/public.txt"
echo "owner only" > "$SRC/secret.txt" && chmod 600 "$SRC/secret.txt"
echo "in a private dir" > "$SRC/private/inner.txt" && chmod 644 "$SRC/private/inner.txt"
chmod 700 "$SRC/private"
chmod 755 "$MNT"

mount_tierfs "$SRC" "$MNT" --cache-dir "$WORK/cache"
[ "$(cat "$MNT/secret.txt")" = "owner only" ] || fail "the owner cannot read its own file"
out=$(as_nobody cat "$MNT/public.txt" 2>&1) && fail "another user read the mount without allow_other: $out"
grep -q "Permission denied" <<<"$out" || fail "without allow_other: $out"
as_nobody ls "$MNT" > /dev/null 2>&1 && fail "another user listed the mount without allow_other"
pass "without allow_other: only the mounting user gets in ($out)"
unmount_tierfs "$MNT"

mount_tierfs "$SRC" "$MNT" --cache-dir "$WORK/cache" -o allow_other
[ "$(as_nobody cat "$MNT/public.txt")" = "for everyone" ] || fail "allow_other: a 0644 file is not readable"
out=$(as_nobody cat "$MNT/secret.txt" 2>&1) && fail "a 0600 file was readable by another user: $out"
grep -q "Permission denied" <<<"$out" || fail "0600 file: $out"
out=$(as_nobody ls "$MNT/private" 2>&1) && fail "a 0700 dir was listable by another user"
as_nobody cat "$MNT/private/inner.txt" > /dev/null 2>&1 && fail "a file under a 0700 dir was readable"
[ "$(stat -c %a "$MNT/secret.txt")" = 600 ] || fail "mode not from the index: $(stat -c %a "$MNT/secret.txt")"
[ "$(cat "$MNT/private/inner.txt")" = "in a private dir" ] || fail "the owner cannot read under its 0700 dir"
pass "allow_other + default_permissions: 0644 readable by others, 0600 file and 0700 dir refused"

# The cache dir and what is in it belong to the daemon's user, mode 0700.
[ "$(stat -c %a "$WORK/cache")" = 700 ] || fail "cache dir mode $(stat -c %a "$WORK/cache")"
as_nobody ls "$WORK/cache" > /dev/null 2>&1 && fail "another user can list the cache dir"
pass "cache dir is 0700: other users cannot read cached blocks"
unmount_tierfs "$MNT"
