#!/usr/bin/env bash
# truncate(2) by path (no open descriptor) while a block daemon is down: the
# daemon that missed the truncation still holds the old blocks when it comes
# back. They must never reappear: after the file is extended again by path,
# every byte reads as zero, on the mount that truncated and on a fresh one.
# (coreutils truncate opens the file and calls ftruncate, a different path
# through the client; os.truncate is the path-only call.)
source "$(dirname "$0")/lib.sh"

# zeros PATH WHERE: PATH is exactly 8 MiB of zero bytes.
zeros() {
  python3 - "$1" "$2" <<'PY'
import os, sys
p, where = sys.argv[1], sys.argv[2]
with open(p, "rb") as f:
    got = f.read()
want = 8 * 2**20
if len(got) != want:
    sys.exit(f"{where}: read {len(got)} bytes, want {want}")
nz = len(got) - got.count(0)
if nz:
    first = next(i for i, b in enumerate(got) if b)
    sys.exit(f"{where}: {nz} non-zero bytes (first at offset {first}: {got[first:first+1]!r}, "
             f"{got.count(b'A')} 'A' bytes), want all zeros")
PY
}

up
python3 -c 'import sys; sys.stdout.buffer.write(b"A" * (8 * 2**20))' > "$M/f"
[ "$(stat -c %s "$M/f")" = $((8 * 1024 * 1024)) ] || fail "write of 8 MiB"

kill -9 "$(pid_of node1)"
wait_node node1 down
ptrunc() { timeout 20 python3 -c 'import os, sys; os.truncate(sys.argv[1], int(sys.argv[2]))' "$@"; }
ptrunc "$M/f" 0 || fail "truncate(f, 0) by path with node1 down"
[ "$(stat -c %s "$M/f")" = 0 ] || fail "size after truncate -s 0 is $(stat -c %s "$M/f")"
ok "truncate(f, 0) by path with node1 down"

up  # restarts node1 only, with its old blocks
wait_node node1 up
ptrunc "$M/f" $((8 * 1024 * 1024)) || fail "truncate(f, 8 MiB) by path"
mount_second "$T/m2"
bad=()
zeros "$T/m2/f" "second mount" || bad+=("second mount")
drop_caches
zeros "$M/f" "first mount" || bad+=("first mount")
[ ${#bad[@]} = 0 ] || fail "$(IFS=,; echo "${bad[*]}"): old bytes read back after truncate(path, 0) with node1 down and truncate(path, 8 MiB): the down node's blocks were resurrected"
ok "blocks a down node missed the truncate of are not resurrected by extending the file"
