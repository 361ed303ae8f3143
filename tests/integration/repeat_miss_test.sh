#!/usr/bin/env bash
# A replica that misses writes twice, with a repair in between: the second
# miss must be recorded like the first. The writing client remembers the
# first miss and must not treat the second as already known; otherwise the
# metadata service believes the repaired replica is current and readers get
# the bytes of the first overwrite back from it.
source "$(dirname "$0")/lib.sh"
NODES=3

# verdict PATH: what reading PATH gives: "C" (4 MiB of C), "EIO", or a description.
verdict() {
  timeout 60 python3 - "$1" <<'PY' || echo "no answer in 60 s"
import errno, sys
try:
    with open(sys.argv[1], "rb") as f:
        got = f.read()
except OSError as e:
    print("EIO" if e.errno == errno.EIO else f"error {e}")
    sys.exit()
if got == b"C" * 2**22:
    print("C")
else:
    print(f"{len(got)} bytes: " + ", ".join(f"{got.count(c)} {chr(c)!r}" for c in b"ABC" if got.count(c))
          + (f" (first byte {got[:1]!r})" if got else ""))
PY
}
write_all() {  # write_all CHAR: overwrite block 0 in place with CHAR
  python3 -c 'import sys; sys.stdout.buffer.write(sys.argv[1].encode() * 2**22)' "$1" > "$T/$1"
  dd if="$T/$1" of="$M/f" bs=1M conv=notrunc status=none || fail "overwrite with $1"
}
stale_marks() { "$BIN/ringfs" locate "$M/f" | grep -c "stale (not read)" || true; }

up
python3 -c 'import sys; sys.stdout.buffer.write(b"A" * 2**22)' > "$M/f"
# The node a reader tries first for block 0: the one that must not serve old bytes.
first=$("$BIN/ringfs" locate "$M/f" | sed -n 's/^block 0: .*placement \([0-9]*\).*/\1/p')
N=$(node_of_id "$first")
[ -n "$N" ] || fail "cannot find the first replica of block 0: $("$BIN/ringfs" locate "$M/f")"
echo "block 0 is read first from node id $first ($N)"

kill -9 "$(pid_of "$N")"
wait_node "$N" down
write_all B
[ "$(stale_marks)" = 1 ] || fail "first miss not recorded: $("$BIN/ringfs" locate "$M/f")"
up
wait_node "$N" up
for _ in $(seq 1 60); do [ "$(stale_marks)" = 0 ] && break; sleep 0.5; done
[ "$(stale_marks)" = 0 ] || fail "first miss not repaired in 30 s: $("$BIN/ringfs" locate "$M/f")"
ok "$N missed the overwrite with B and was repaired"

kill -9 "$(pid_of "$N")"
wait_node "$N" down
write_all C
echo "after the second miss: $("$BIN/ringfs" locate "$M/f" | grep '^block 0')"
up
wait_node "$N" up
sleep 3

bad=()
drop_caches
mount_second "$T/m2"
v=$(verdict "$T/m2/f")
[ "$v" = C ] || bad+=("a fresh mount with all nodes up reads $v, want 4 MiB of C")

# $N the only live replica: it must serve C or nothing.
others=()
for n in $(seq 0 $((NODES - 1))); do [ "node$n" = "$N" ] || others+=("node$n"); done
STOPPED=("$(pid_of "${others[0]}")" "$(pid_of "${others[1]}")")
kill -STOP "${STOPPED[@]}"
wait_node "${others[0]}" down 30
wait_node "${others[1]}" down 30
drop_caches
mount_second "$T/m3"
v=$(verdict "$T/m3/f")
[ "$v" = C ] || [ "$v" = EIO ] || bad+=("with $N the only live replica a fresh mount reads $v, want C or EIO")
kill -CONT "${STOPPED[@]}"
STOPPED=()
wait_node "${others[0]}" up 30
wait_node "${others[1]}" up 30

drop_caches
v=$(verdict "$M/f")
[ "$v" = C ] || bad+=("the writing mount reads $v with all nodes up, want 4 MiB of C")

[ ${#bad[@]} = 0 ] || fail "second miss of $N after a repair (not recorded as stale): $(IFS=';'; echo "${bad[*]}")"
ok "a replica that missed writes twice never serves the older bytes"
