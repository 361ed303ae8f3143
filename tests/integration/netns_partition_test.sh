#!/bin/bash
# A cluster spread over hosts: meta, five block daemons and two mounts,
# each in its own network namespace with its own address (nothing on
# 127.0.0.1). One block daemon is cut off from the network (still running,
# not killed) while a writer overwrites files and writes new ones, then
# healed: no acknowledged write is lost, and its stale copies are
# reconciled (replaced or dropped), never served.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/netns.sh"
netns_bridge
netns_host meta 2
for i in 0 1 2 3 4; do netns_host "node$i" $((10 + i)); done
netns_host mnt1 50
netns_host mnt2 51
META="tcp://$(netns_addr 2):7000"
CLUSTER=(--meta "$META")
mkdir -p "$T/meta" "$M"
in_ns meta "$BIN/ringfs-meta" --dir "$T/meta" --listen "$META" --idle-pass-ms 2000 >"$T/meta.log" 2>&1 &
for i in 0 1 2 3 4; do
  mkdir -p "$T/node$i"
  in_ns "node$i" "$BIN/ringfs-blockd" --dir "$T/node$i" --listen "tcp://$(netns_addr $((10 + i))):7001" \
    --meta "$META" --zone "z$((i % 3))" >"$T/node$i.log" 2>&1 &
done
for i in 0 1 2 3 4; do
  addr="tcp://$(netns_addr $((10 + i))):7001"
  for t in $(seq 1 80); do
    "$BIN/ringfs" node add "$addr" --meta "$META" >/dev/null 2>&1 && break
    sleep 0.25
  done
  "$BIN/ringfs" node list --meta "$META" | grep -q "$addr .* in " || fail "node$i not admitted"
done
in_ns mnt1 "$BIN/ringfs-mount" --meta="$META" "$M" >"$T/mount1.log" 2>&1 || fail "mount 1"
M2=$T/mnt2
mkdir -p "$M2"
in_ns mnt2 "$BIN/ringfs-mount" --meta="$META" "$M2" >"$T/mount2.log" 2>&1 || fail "mount 2"
EXTRA_MOUNTS+=("$M2")
# Nothing listens on loopback.
! ss -ltnp 2>/dev/null | grep -q "127.0.0.1:7001" || fail "a daemon bound loopback"

SRC=$T/src
mkdir -p "$SRC"
for i in 0 1 2 3 4 5; do head -c $((i * 1700000 + 5)) /dev/urandom >"$SRC/f$i"; cp "$SRC/f$i" "$M/f$i"; done
for i in 0 1 2 3 4 5; do cmp "$SRC/f$i" "$M2/f$i" || fail "second mount reads f$i"; done
ok "cluster of 8 namespaces up; both mounts agree"

# Cut node3 off. Writers on both mounts keep going: overwrites of the old
# files (whose copies on node3 go stale) and new files.
netns_cut node3
for round in 0 1 2; do
  for i in 0 2 4; do
    head -c $((round * 900000 + i * 1000 + 1)) /dev/urandom >"$SRC/f$i"
    cp "$SRC/f$i" "$M/f$i" || fail "overwrite f$i with node3 cut off"
  done
  head -c $((round * 3000000 + 7)) /dev/urandom >"$SRC/n$round"
  cp "$SRC/n$round" "$M2/n$round" || fail "write n$round on mount 2 with node3 cut off"
done
for f in "$SRC"/*; do cmp "$f" "$M2/$(basename "$f")" || fail "mount 2 reads $(basename "$f") during the cut"; done
ok "writes and reads carried on with node3 cut off"

netns_heal node3
wait_healthy 120
drop_caches
check_files "$SRC" "$M"
for f in "$SRC"/*; do cmp "$f" "$M2/$(basename "$f")" || fail "mount 2 reads $(basename "$f") after the heal"; done
ok "healed: every acknowledged write intact on both mounts, node3's stale copies reconciled"
