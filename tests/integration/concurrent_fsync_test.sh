#!/usr/bin/env bash
# Two descriptors of one file, two threads, each writing its own block and
# calling fsync at the same time, while too few replicas are reachable for
# either write to be stored (2 of 3 block daemons killed). Each fsync must
# report the failure of its own descriptor's write: an fsync that returns 0
# promises that the block is stored, and here it is on one replica only.
# (The client keeps one write error per file and the first flush or fsync
# to look at it clears it for everyone.)
source "$(dirname "$0")/lib.sh"


up
: > "$M/f"
kill -9 "$(pid_of node1)" "$(pid_of node2)"
wait_node node1 down
wait_node node2 down
timeout -k 5 60 python3 - "$M/f" > "$T/result" <<'PY' || fail "the fsync threads did not finish in 60 s"
import os, sys, threading
p = sys.argv[1]
BS = 4 * 2**20
fds = [os.open(p, os.O_WRONLY), os.open(p, os.O_WRONLY)]
ready = threading.Barrier(2)
result = [None, None]

def run(i):
    try:
        os.pwrite(fds[i], bytes([ord("A") + i]) * BS, i * BS)  # block i, whole
    except OSError as e:  # failing here is fine too
        result[i] = "write: " + os.strerror(e.errno)
    ready.wait()  # both writes are in before either fsync
    if result[i] is None:
        try:
            os.fsync(fds[i])
            result[i] = "ok"
        except OSError as e:
            result[i] = os.strerror(e.errno)

threads = [threading.Thread(target=run, args=(i,)) for i in range(2)]
for t in threads: t.start()
for t in threads: t.join()
for fd in fds:
    try:
        os.close(fd)
    except OSError:
        pass
print(f"{result[0]}|{result[1]}")
PY
IFS='|' read -r r0 r1 < "$T/result"
echo "with node1 and node2 down: fsync of block 0's descriptor: $r0; of block 1's: $r1"
up
bad=()
[ "$r0" != ok ] || bad+=("fsync of the descriptor that wrote block 0")
[ "$r1" != ok ] || bad+=("fsync of the descriptor that wrote block 1")
[ ${#bad[@]} = 0 ] || fail "$(IFS=,; echo "${bad[*]}") returned 0 although the write reached 1 of 3 replicas (2 needed): a concurrent fsync of the same file consumed the write error"
ok "each fsync reports its own descriptor's failed write"
