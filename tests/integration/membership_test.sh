#!/bin/bash
# Membership changes while users work: a fifth node added while a writer
# runs, then a node removed (drained) while a reader runs. Every file is
# checked byte for byte, and every block at 3 current copies on distinct
# nodes, asked of the block daemons.
source "$(dirname "$0")/lib.sh"
NODES=4 up --meta-arg=--idle-pass-ms=2000
SRC=$T/src
mkdir -p "$SRC"

# Writer: files of odd sizes, each written, closed and then kept as the truth.
writer() {
  local i=0 sizes=(1 4095 65537 1048576 4194303 4194304 4194305 9000001 12582912 333333)
  while [ ! -e "$T/stop_writer" ]; do
    local n=f$i s=${sizes[$((i % ${#sizes[@]}))]}
    head -c "$s" /dev/urandom >"$T/tmp.$n"
    cp "$T/tmp.$n" "$M/$n" || { echo "write $n failed" >"$T/writer.err"; return; }
    mv "$T/tmp.$n" "$SRC/$n"
    i=$((i + 1))
  done
}
for i in 0 1 2 3 4 5; do head -c $((i * 3000000 + 17)) /dev/urandom >"$SRC/base$i"; cp "$SRC/base$i" "$M/base$i"; done

writer &
WRITER=$!
sleep 2
"$BIN/ringfs" node add --dir "$D" >"$T/add.out" || fail "node add: $(cat "$T/add.out")"
grep -q "moving" "$T/add.out" || fail "node add prints the plan: $(cat "$T/add.out")"
sleep 4
touch "$T/stop_writer"
wait $WRITER
[ ! -e "$T/writer.err" ] || fail "$(cat "$T/writer.err") during the add"
wait_healthy 90
[ "$("$BIN/ringfs" node list --dir "$D" | awk '$5 == "in"' | wc -l)" -eq 5 ] || fail "5 nodes in"
[ "$(node_state node4)" = up ] || fail "the new node is up"
blocks4=$("$BIN/ringfs" node list --dir "$D" --json | python3 -c "import json,sys; print([n['blocks'] for n in json.load(sys.stdin)['nodes'] if n['id'] == $(node_id_of node4)][0])")
[ "$blocks4" -gt 0 ] || fail "no data moved to the new node"
check_files "$SRC" "$M"
ok "node added under a writer: $(ls "$SRC" | wc -l) files intact, $blocks4 blocks on the new node"

# Adding it again, or an address that never registered, is refused.
! "$BIN/ringfs" node add "tcp://127.0.0.1:$(port_of node4)" --dir "$D" 2>"$T/err" || fail "double add"
grep -q "already in" "$T/err" || fail "double add message: $(cat "$T/err")"
! "$BIN/ringfs" node add tcp://192.0.2.1:1 --dir "$D" 2>"$T/err" || fail "unknown add"
! "$BIN/ringfs" node remove 999 --dir "$D" 2>"$T/err" || fail "unknown remove"
grep -q "no node 999" "$T/err" || fail "unknown remove message: $(cat "$T/err")"

# Reader: every file, again and again, must read back exactly.
reader() {
  while [ ! -e "$T/stop_reader" ]; do
    for f in "$SRC"/*; do
      cmp -s "$f" "$M/$(basename "$f")" || { echo "read $(basename "$f") differs" >"$T/reader.err"; return; }
    done
  done
}
victim=$(node_id_of node1)
"$BIN/ringfs" node remove "$victim" --dir "$D" --dry-run >"$T/dry.out" || fail "dry run"
grep -q "would move" "$T/dry.out" || fail "dry run output: $(cat "$T/dry.out")"
[ "$("$BIN/ringfs" node list --dir "$D" | awk -v id="$victim" '$1 == id { print $5 }')" = in ] ||
  fail "a dry run changed the map"
drop_caches
reader &
READER=$!
"$BIN/ringfs" node remove "$victim" --dir "$D" >"$T/remove.out" || fail "node remove: $(cat "$T/remove.out")"
for i in $(seq 1 120); do
  st=$("$BIN/ringfs" node list --all --dir "$D" | awk -v id="$victim" '$1 == id { print $5 }')
  [ "$st" = out ] && break
  sleep 0.5
done
[ "$st" = out ] || fail "node $victim not drained: $st"
sleep 2
touch "$T/stop_reader"
wait $READER
[ ! -e "$T/reader.err" ] || fail "$(cat "$T/reader.err") during the drain"
wait_healthy 60
drop_caches
check_files "$SRC" "$M"
# The drained node holds none of the files' blocks any more.
left=$(find "$D/node1/blocks" -type f 2>/dev/null | wc -l)
[ "$left" -eq 0 ] || fail "drained node still has $left block files"
ok "node $victim drained under a reader and out; every block still at 3 copies"
