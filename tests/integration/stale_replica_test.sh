#!/usr/bin/env bash
# A block daemon that was down while a file was overwritten holds the old
# bytes when it comes back. It must never serve them: readers skip it, and
# when it is the only replica left the read fails (EIO) instead of returning
# old data.
source "$(dirname "$0")/lib.sh"
up
head -c $((6 * 1024 * 1024)) /dev/urandom > "$T/v1"
head -c $((6 * 1024 * 1024)) /dev/urandom > "$T/v2"
cp "$T/v1" "$M/f"
kill -9 "$(pid_of node2)"
# Overwrite in place (same inode, same blocks) while node2 is down.
dd if="$T/v2" of="$M/f" bs=1M conv=notrunc status=none || fail "overwrite with a node down"
up  # node2 returns with v1's bytes
sleep 4  # its heartbeat marks it alive in the map again
drop_caches
mount_second "$T/m2"
cmp "$T/v2" "$T/m2/f" || fail "a reader got bytes other than the last write"
ok "the returned node's old bytes are not read"
n=$("$BIN/ringfs" locate "$M/f" | grep -c "stale (not read) on ")
[ "$n" = 2 ] || fail "ringfs locate shows $n stale blocks, want 2: $("$BIN/ringfs" locate "$M/f")"
ok "ringfs locate shows the stale replicas"
kill -9 "$(pid_of node0)" "$(pid_of node1)"
drop_caches
mount_second "$T/m3"
if cat "$T/m3/f" > "$T/got" 2> "$T/err"; then
  cmp -s "$T/v1" "$T/got" && fail "old data served from the stale replica"
  fail "read succeeded with only a stale replica left"
fi
grep -q "Input/output error" "$T/err" || fail "expected EIO, got: $(cat "$T/err")"
ok "with only the stale replica left the read fails with EIO"
