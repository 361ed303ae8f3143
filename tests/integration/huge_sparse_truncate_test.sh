#!/usr/bin/env bash
# Shrinking a huge sparse file while a block daemon is down: the truncation
# must not cost (time, memory, metadata) in proportion to the file's nominal
# size, and must not leave the client unable to close the file afterwards.
source "$(dirname "$0")/lib.sh"

size_of() { stat -c %s "$1" 2>&1 || true; }
responsive() { timeout -k 1 5 stat "$M" >/dev/null || fail "the mount stopped answering (stat of its root) $*"; }
# Bytes written through the mount and closed; the close must succeed.
small_write() {
  timeout -k 5 20 python3 - "$1" <<'PY'
import os, sys
p = sys.argv[1]
f = open(p, "r+b")
f.write(b"hello")
try:
    f.close()
except OSError as e:
    sys.exit(f"close after writing 5 bytes to {p}: {e}")
with open(p, "rb") as f:
    got = f.read()
if got[:5] != b"hello":
    sys.exit(f"{p} reads {got[:16]!r} after writing b'hello'")
PY
}

up
# A client that loops over 2^61 nominal blocks must not take the machine down
# with it: cap its address space (it uses well under 2 GiB normally).
prlimit --pid "$(pid_of mount)" --as=$((4 << 30))

truncate -s 1T "$M/f" || fail "truncate -s 1T"
kill -9 "$(pid_of node1)"
wait_node node1 down
bad=()
start=$SECONDS
if ! timeout -k 5 20 truncate -s 0 "$M/f" 2>"$T/err"; then
  bad+=("truncate -s 0 of a 1 TiB sparse file with node1 down failed after $((SECONDS - start)) s: $(cat "$T/err")")
fi
echo "truncate -s 0 of a 1 TiB sparse file with node1 down: $((SECONDS - start)) s"
[ "$(size_of "$M/f")" = 0 ] || bad+=("size after truncate -s 0: $(size_of "$M/f")")
responsive "after truncating a 1 TiB sparse file"
timeout 20 bash -c 'echo hi > "$1"' _ "$M/f" 2>"$T/err" || bad+=("echo hi > f after the truncation: $(cat "$T/err")")
[ "$(timeout 20 cat "$M/f")" = hi ] || bad+=("f does not read back 'hi' after echo hi > f")
small_write "$M/f" 2>"$T/err" || bad+=("$(cat "$T/err")")
up
wait_node node1 up
small_write "$M/f" 2>"$T/err" || bad+=("after node1 is back: $(cat "$T/err")")
mount_second "$T/m2"
[ "$(head -c 5 "$T/m2/f")" = hello ] || bad+=("a second mount does not read f's last write")
failed=()
if [ ${#bad[@]} = 0 ]; then
  ok "a 1 TiB sparse file truncated with a node down can still be written and closed"
else
  failed+=("closes of f fail after truncating it from 1 TiB with a node down (the missed blocks, one per nominal block, are reported in one oversized message): $(IFS=';'; echo "${bad[*]}")")
  echo "FAIL (continuing): ${failed[-1]}" >&2
fi

# The largest size the kernel accepts (2^63 - 1), shrunk with a node down.
kill -9 "$(pid_of node1)"
wait_node node1 down
python3 -c 'import sys; open(sys.argv[1], "wb").close()' "$M/g"
timeout -k 5 20 python3 -c 'import os, sys; os.truncate(sys.argv[1], 2**63 - 1)' "$M/g" ||
  fail "truncate(g, 2^63 - 1) by path with node1 down"
[ "$(size_of "$M/g")" = $((2**63 - 1)) ] || fail "size of g: $(size_of "$M/g")"
start=$SECONDS
rc=0
timeout -k 5 20 python3 -c 'import os, sys; os.truncate(sys.argv[1], 0)' "$M/g" || rc=$?
echo "truncate(g, 0) of a 2^63-1 byte sparse file with node1 down: rc $rc after $((SECONDS - start)) s"
if [ $rc = 124 ] || [ $rc = 137 ]; then
  failed+=("truncate(g, 0) of a 2^63-1 byte sparse file with node1 down did not finish in 20 s: work in proportion to the nominal size")
elif [ $rc != 0 ]; then
  failed+=("truncate(g, 0) of a 2^63-1 byte sparse file with node1 down failed (rc $rc)")
fi
if ! timeout -k 1 5 stat "$M" >/dev/null 2>"$T/err"; then
  failed+=("the mount stopped answering (stat of its root) after that: $(cat "$T/err")")
  grep -q bad_alloc "$D/logs/mount.log" 2>/dev/null &&
    failed+=("the client ran out of its 4 GiB address space (std::bad_alloc): memory in proportion to the nominal size")
elif [ "$(size_of "$M/g")" != 0 ]; then
  failed+=("size of g after truncate to 0: $(size_of "$M/g")")
elif ! small_write "$M/g" 2>"$T/err"; then
  failed+=("after truncating g from 2^63-1 bytes with a node down: $(cat "$T/err")")
fi
[ ${#failed[@]} = 0 ] || fail "$(IFS=$'\n'; echo "${failed[*]}")"
ok "truncate of a 2^63-1 byte sparse file to 0 with node1 down, and its closes"
