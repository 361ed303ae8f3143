#!/usr/bin/env bash
# One replica down must never fail a write. node0 is killed (the mount then
# suspects it for a few seconds), restarted at once, and missed a write;
# then node1 dies. The next write reaches node2, is refused by node0 (it is
# behind) and cannot reach node1: it must still succeed, by asking node0
# after all and bringing it up to the write's version, and a fresh mount
# must read it with node1 down.
source "$(dirname "$0")/lib.sh"
up
head -c 65536 /dev/urandom > "$M/f"
w() { python3 -c 'import os,sys; fd=os.open(sys.argv[1], os.O_WRONLY); os.pwrite(fd, sys.argv[2].encode()*4096, 0); os.close(fd)' "$M/f" "$1"; }
kill -9 "$(pid_of node0)"
w A || fail "write with node0 dead"
up  # node0 back at once, before the mount stops suspecting it
sleep 1
w B || fail "write with node0 just back"
kill -9 "$(pid_of node1)"
w C || fail "write with only node1 dead: EIO although two replicas are alive"
ok "a write with one replica down and one behind succeeds"
mount_second "$T/m2"
python3 -c 'import sys; d=open(sys.argv[1],"rb").read(4096); sys.exit(d != b"C"*4096)' "$T/m2/f" ||
  fail "a fresh mount does not read the last write with node1 down"
ok "a fresh mount reads it with node1 down"
