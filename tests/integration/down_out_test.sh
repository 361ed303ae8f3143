#!/bin/bash
# The down-out rule: a node that stays down past --down-out-ms is marked
# out and its blocks are copied back to 3 copies from the survivors; when it
# returns it is a new node in its old place (its stale copies discarded,
# never served) and is refilled.
source "$(dirname "$0")/lib.sh"
NODES=5 up --meta-arg=--down-out-ms=4000 --meta-arg=--idle-pass-ms=2000
SRC=$T/src
mkdir -p "$SRC"
for i in 0 1 2 3 4; do head -c $((i * 2100000 + 999)) /dev/urandom >"$SRC/f$i"; cp "$SRC/f$i" "$M/f$i"; done
old=$(node_id_of node2)
kill -9 "$(pid_of node2)"
# Overwrite some while it is away: its copies of these go stale.
for i in 1 3; do head -c $((i * 1500000 + 5)) /dev/urandom >"$SRC/f$i"; cp "$SRC/f$i" "$M/f$i"; done
for t in $(seq 1 60); do
  st=$("$BIN/ringfs" node list --all --dir "$D" | awk -v id="$old" '$1 == id { print $5 }')
  [ "$st" = out ] && break
  sleep 0.5
done
[ "$st" = out ] || fail "node $old not marked out after the down-out interval: $st"
wait_healthy 90
drop_caches
check_files "$SRC" "$M"
ok "node $old marked out by the down-out rule; every block back at 3 copies on the 4 others"

"$BIN/ringfs" up --dir "$D" >/dev/null || fail "restart"
for t in $(seq 1 40); do
  new=$(node_id_of node2)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.25
done
[ -n "$new" ] && [ "$new" != "$old" ] || fail "the returning node kept id $old"
[ "$("$BIN/ringfs" node list --dir "$D" | awk -v id="$new" '$1 == id { print $5 }')" = in ] ||
  fail "the returning node is not in"
wait_healthy 90
blocks=$("$BIN/ringfs" node list --dir "$D" --json |
  python3 -c "import json,sys; print([n['blocks'] for n in json.load(sys.stdin)['nodes'] if n['id'] == $new][0])")
[ "$blocks" -gt 0 ] || fail "the returning node was not refilled"
drop_caches
check_files "$SRC" "$M"
ok "it came back as node $new in its old place and was refilled ($blocks blocks)"
