#!/usr/bin/env bash
# A replica whose block fails its checksum: the reader gets the right bytes
# from another replica, reports the bad copy, and the metadata service
# repairs it from a good one (checked on the block daemon's disk).
source "$(dirname "$0")/lib.sh"
up
head -c $((5 * 1024 * 1024)) /dev/urandom > "$T/v"
cp "$T/v" "$M/f"
ino=$(stat -c %i "$M/f")
first=$("$BIN/ringfs" locate "$M/f" | sed -n 's/^block 0: .*placement \([0-9]*\).*/\1/p')
nd=""
for d in "$D"/node*; do [ "$(tr -d '[:space:]' < "$d/node_id")" = "$first" ] && nd=$d; done
[ -n "$nd" ] || fail "no node directory for node id $first"
blk=$(block_path "$nd" "$ino" 0)
[ -f "$blk" ] || fail "block file $blk missing"
# Flip one data byte behind the daemon's back.
python3 - "$blk" <<'PY'
import sys
with open(sys.argv[1], "r+b") as f:
    f.seek(4096 + 100000)
    b = f.read(1)
    f.seek(4096 + 100000)
    f.write(bytes([b[0] ^ 0xff]))
PY
drop_caches
mount_second "$T/m2"
cmp "$T/v" "$T/m2/f" || fail "read with a corrupt first replica"
ok "a corrupt replica is read around"
for _ in $(seq 1 40); do
  block_data "$blk" | cmp -s - <(head -c $((4 * 1024 * 1024)) "$T/v") && break
  sleep 0.5
done
block_data "$blk" | cmp -s - <(head -c $((4 * 1024 * 1024)) "$T/v") ||
  fail "the corrupt copy on node $first was not repaired"
grep -q "repaired ino $ino block 0 on node $first" "$D/logs/meta.log" || fail "no repair logged"
"$BIN/ringfs" locate "$M/f" | grep -q "stale (not read)" && fail "still marked stale after repair"
ok "the metadata service repaired the corrupt copy from a good replica"
