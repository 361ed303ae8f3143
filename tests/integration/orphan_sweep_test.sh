#!/usr/bin/env bash
# Unlinked files held open by a client: kept while that client lives (even
# across a metadata service restart, which relearns opens from the clients'
# session beats), reclaimed once the client dies and its session expires.
source "$(dirname "$0")/lib.sh"
up
head -c $((5 * 1024 * 1024)) /dev/urandom > "$T/v"
cp "$T/v" "$M/f"
ino=$(stat -c %i "$M/f")
blocks_of() { find "$D"/node*/blocks -path "*/$(printf %x "$ino")/*" -type f 2>/dev/null | wc -l; }
mount_second "$T/m2"
exec 8< "$T/m2/f"   # this shell holds the file open on the second mount
rm "$M/f"

# The metadata service restarts; the holder's session beat re-announces the
# open file before the sweep (after one session timeout, 20 s) may run.
kill -9 "$(pid_of meta)"
up
sleep 26
[ "$(blocks_of)" -gt 0 ] || fail "an open file was reclaimed after a metadata restart"
drop_caches
cmp - "$T/v" <&8 || fail "the open descriptor lost the file"
ok "an open unlinked file survives a metadata restart"

# The holding client dies without closing: its session expires and the
# sweep reclaims the file.
kill -9 "$(pgrep -f -- "ringfs-mount --meta=.* $T/m2")"
exec 8<&-
fusermount3 -uz "$T/m2" 2>/dev/null || true
for _ in $(seq 1 80); do [ "$(blocks_of)" = 0 ] && break; sleep 0.5; done
[ "$(blocks_of)" = 0 ] || fail "the file a dead client held was never reclaimed"
ok "a dead client's unlinked file is reclaimed after its session expires"
