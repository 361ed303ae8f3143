#!/usr/bin/env bash
# A block daemon that was down while a file was overwritten holds the old
# bytes when it comes back. It must never serve them: readers skip it, and
# while it is the only replica reachable the read fails (EIO) instead of
# returning old data. Once a good replica is reachable, the metadata service
# repairs it, and it then serves the new bytes on its own.
source "$(dirname "$0")/lib.sh"
up
head -c $((6 * 1024 * 1024)) /dev/urandom > "$T/v1"
head -c $((6 * 1024 * 1024)) /dev/urandom > "$T/v2"
cp "$T/v1" "$M/f"
kill -9 "$(pid_of node2)"
# Overwrite in place (same inode, same blocks) while node2 is down.
dd if="$T/v2" of="$M/f" bs=1M conv=notrunc status=none || fail "overwrite with a node down"
n=$("$BIN/ringfs" locate "$M/f" | grep -c "stale (not read) on ")
[ "$n" = 2 ] || fail "ringfs locate shows $n stale blocks, want 2: $("$BIN/ringfs" locate "$M/f")"
ok "the missed writes are recorded (ringfs locate shows them)"

# The good replicas stop (their heartbeats too), then node2 returns with v1
# (started by hand: `ringfs up` would wait for the stopped nodes).
STOPPED=("$(pid_of node0)" "$(pid_of node1)")
kill -STOP "${STOPPED[@]}"
"$BIN/ringfs-blockd" --dir "$D/node2" --meta "$(meta_endpoint)" --zone zone0 \
  --listen "tcp://127.0.0.1:$(sed -n 's/^node2_port=//p' "$D/cluster.conf")" >"$T/node2.log" 2>&1 &
sleep 5  # node2 alive again, node0 and node1 marked down
drop_caches
mount_second "$T/m2"
if cat "$T/m2/f" > "$T/got" 2> "$T/err"; then
  cmp -s "$T/v1" "$T/got" && fail "old data served from the stale replica"
  fail "read succeeded with only a stale replica reachable"
fi
grep -q "Input/output error" "$T/err" || fail "expected EIO, got: $(cat "$T/err")"
ok "with only the stale replica reachable the read fails with EIO"

kill -CONT "${STOPPED[@]}"
STOPPED=()
for _ in $(seq 1 60); do
  "$BIN/ringfs" locate "$M/f" | grep -q "stale (not read)" || break
  sleep 0.5
done
"$BIN/ringfs" locate "$M/f" | grep -q "stale (not read)" && fail "not repaired: $("$BIN/ringfs" locate "$M/f")"
ok "repaired once a good replica was back"
kill -9 "$(pid_of node0)" "$(pid_of node1)"
drop_caches
mount_second "$T/m3"
cmp "$T/v2" "$T/m3/f" || fail "the repaired replica alone does not hold the last write"
ok "the repaired replica alone serves the last write"
