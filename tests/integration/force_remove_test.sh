#!/bin/bash
# Losing machines for good: one block daemon killed with SIGKILL while a
# writer runs, then a second one; writes carry on with the survivors. Then
# `node remove --force` of both, and every block is copied back to 3
# copies on distinct nodes from what survived.
source "$(dirname "$0")/lib.sh"
NODES=5 up --meta-arg=--idle-pass-ms=2000
SRC=$T/src
mkdir -p "$SRC"
for i in 0 1 2 3; do head -c $((i * 2500000 + 4097)) /dev/urandom >"$SRC/base$i"; cp "$SRC/base$i" "$M/base$i"; done

writer() {
  local i=0
  while [ ! -e "$T/stop_writer" ]; do
    head -c $(( (i * 777777) % 9000000 + 1 )) /dev/urandom >"$T/tmp.$i"
    local t0=$(date +%s)
    cp "$T/tmp.$i" "$M/w$i" || { echo "write w$i failed" >"$T/writer.err"; return; }
    # No write may hang on a dead node for more than a few seconds.
    [ $(( $(date +%s) - t0 )) -le 15 ] || { echo "write w$i took $(( $(date +%s) - t0 )) s" >"$T/writer.err"; return; }
    mv "$T/tmp.$i" "$SRC/w$i"
    i=$((i + 1))
  done
}
writer &
WRITER=$!
sleep 2
a=$(node_id_of node1) b=$(node_id_of node3)
kill -9 "$(pid_of node1)"
sleep 4
kill -9 "$(pid_of node3)"
sleep 6
touch "$T/stop_writer"
wait $WRITER
[ ! -e "$T/writer.err" ] || fail "$(cat "$T/writer.err") with nodes dying"
ok "writes carried on through two SIGKILLs ($(ls "$SRC" | wc -l) files)"

# Refusals first: draining a node below RF, removing one twice.
wait_node node3 down
"$BIN/ringfs" node remove "$a" --force --dir "$D" >"$T/rm.out" || fail "force remove $a: $(cat "$T/rm.out")"
! "$BIN/ringfs" node remove "$a" --force --dir "$D" 2>"$T/err" || fail "second remove"
grep -q "already out" "$T/err" || fail "second remove message: $(cat "$T/err")"
"$BIN/ringfs" node remove "$b" --force --dir "$D" >"$T/rm.out" || fail "force remove $b: $(cat "$T/rm.out")"
c=$(node_id_of node0)
! "$BIN/ringfs" node remove "$c" --dir "$D" 2>"$T/err" || fail "removing below 3 nodes must be refused"
grep -q "fewer than" "$T/err" || fail "refusal message: $(cat "$T/err")"
wait_healthy 120
drop_caches
check_files "$SRC" "$M"
[ "$(status_json under_replicated)" -eq 0 ] || fail "under-replicated blocks remain"
ok "force-removed $a and $b: every block back at 3 copies on the 3 survivors"
