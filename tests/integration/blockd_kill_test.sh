#!/usr/bin/env bash
# One block daemon killed with SIGKILL: every file still reads back right
# (through a fresh mount with cold caches), and new writes still succeed.
source "$(dirname "$0")/lib.sh"
up
mkdir "$M/d"
for i in $(seq 1 20); do head -c $((i * 300000)) /dev/urandom > "$M/d/f$i"; done
head -c $((20 * 1024 * 1024)) /dev/urandom > "$M/d/big"
(cd "$M/d" && md5sum *) > "$T/sums"
kill -9 "$(pid_of node1)"
drop_caches
mount_second "$T/m2"
(cd "$T/m2/d" && md5sum -c --quiet "$T/sums") || fail "reads after SIGKILL of a block daemon"
ok "all files read back with node1 dead"
head -c $((9 * 1024 * 1024)) /dev/urandom > "$T/new"
cp "$T/new" "$T/m2/d/new" || fail "write with a node down"
cmp "$T/new" "$M/d/new" || fail "new file through the first mount"
ok "writes route around the dead node"
# The restarted daemon keeps its blocks.
up
fusermount3 -u "$T/m2"; EXTRA_MOUNTS=()
mount_second "$T/m3"
(cd "$T/m3/d" && md5sum -c --quiet "$T/sums") || fail "reads after restart"
ok "restart keeps data"
