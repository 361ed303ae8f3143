#!/bin/bash
# A node restarted with its data folder wiped (a replaced disk): the cluster
# sees a new store, writes the old one off, and refills the node by
# re-replication in its old place. Nothing is read from the empty store in
# the meantime.
source "$(dirname "$0")/lib.sh"
NODES=5 up --meta-arg=--idle-pass-ms=2000
SRC=$T/src
mkdir -p "$SRC"
for i in $(seq 0 7); do head -c $((i * 1900000 + 333)) /dev/urandom >"$SRC/f$i"; cp "$SRC/f$i" "$M/f$i"; done
old=$(node_id_of node2)
before=$(find "$D/node2/blocks" -type f | wc -l)
[ "$before" -gt 0 ] || fail "node2 holds nothing to lose"
kill -9 "$(pid_of node2)"
rm -rf "$D/node2"
"$BIN/ringfs" up --dir "$D" >/dev/null || fail "restart"
for i in $(seq 1 40); do
  new=$(node_id_of node2)
  [ -n "$new" ] && [ "$new" != "$old" ] && break
  sleep 0.25
done
[ -n "$new" ] && [ "$new" != "$old" ] || fail "the wiped store kept id $old"
[ "$("$BIN/ringfs" node list --all --dir "$D" | awk -v id="$old" '$1 == id { print $5 }')" = out ] ||
  fail "old id $old not out"
drop_caches
for f in "$SRC"/*; do cmp "$f" "$M/$(basename "$f")" || fail "read of $(basename "$f") while refilling"; done
wait_healthy 90
after=$(find "$D/node2/blocks" -type f | wc -l)
[ "$after" -eq "$before" ] || fail "node2 refilled with $after blocks, had $before (same place: same blocks)"
drop_caches
check_files "$SRC" "$M"
ok "wiped node2 (id $old) came back as id $new in the same place, refilled with its $after blocks"
