#!/usr/bin/env bash
# Background scrub: rot in a copy nobody reads (a flipped data byte in one
# block, a smashed header in another) is found by the block daemon's own
# scrub, reported, and repaired from a good copy, with no client reading.
source "$(dirname "$0")/lib.sh"
up --blockd-arg=--scrub-rate=200000000 --blockd-arg=--scrub-pause-ms=300
head -c $((9 * 1024 * 1024)) /dev/urandom > "$T/v"
cp "$T/v" "$M/f"
ino=$(stat -c %i "$M/f")
# block_file INDEX: the block's file on its first placed node.
block_file() {
  local id nd=""
  id=$("$BIN/ringfs" locate "$M/f" | sed -n "s/^block $1: .*placement \([0-9]*\).*/\1/p")
  for d in "$D"/node*; do [ "$(tr -d '[:space:]' < "$d/node_id")" = "$id" ] && nd=$d; done
  block_path "$nd" "$ino" "$1"
}
b0=$(block_file 0)
b1=$(block_file 1)
[ -f "$b0" ] && [ -f "$b1" ] || fail "block files missing: $b0 $b1"
cp "$b0" "$T/good0"
cp "$b1" "$T/good1"
good_header=$(getfattr --absolute-names -e hex -n user.ringfs "$b1" 2>/dev/null | sed -n "s/^user.ringfs=//p")
[ -n "$good_header" ] || fail "block 1 has no format 4 header"
python3 - "$b0" "$b1" <<'PY'
import os, sys
with open(sys.argv[1], "r+b") as f:   # one data byte
    f.seek(4096 + 3000000); b = f.read(1); f.seek(4096 + 3000000); f.write(bytes([b[0] ^ 0x5a]))
h = bytearray(os.getxattr(sys.argv[2], "user.ringfs"))   # the header
h[4:8] = b"\xde\xad\xde\xad"
os.setxattr(sys.argv[2], "user.ringfs", bytes(h))
PY
for _ in $(seq 1 60); do
  cmp -s "$b0" "$T/good0" && cmp -s "$b1" "$T/good1" && break
  sleep 0.5
done
cmp -s "$b0" "$T/good0" || fail "the rotted data of block 0 was not repaired"
cmp -s "$b1" "$T/good1" || fail "block 1's data after its header was repaired"
[ "$(getfattr --absolute-names -e hex -n user.ringfs "$b1" 2>/dev/null | sed -n "s/^user.ringfs=//p")" = "$good_header" ] ||
  fail "the smashed header of block 1 was not repaired"
grep -q "scrub: ino $ino block 0 fails" "$D"/logs/node*.log || fail "scrub did not log block 0"
drop_caches
cmp "$T/v" "$M/f" || fail "content after the repair"
"$BIN/ringfs" locate --check "$M/f" >/dev/null || fail "copies after the repair"
ok "scrub found a rotted data chunk and a smashed header; both repaired without a read"
