#!/usr/bin/env bash
# Truncation racing write-back on the same mount: one thread keeps writing
# a file while another truncates it. Uploads must not land on some replicas
# before the cut and on others after it: once it all stops, every copy of
# every block holds the same bytes (checked on the block daemons' disks),
# and a second mount reads exactly what the writing mount reads.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M/f" <<'PY' || fail "writer/truncater threads"
import os, random, sys, threading
path = sys.argv[1]
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
stop = threading.Event()
def writer():
    r = random.Random(1)
    while not stop.is_set():
        off = r.randrange(0, 10 << 20)
        os.pwrite(fd, bytes([r.randrange(1, 256)]) * r.randrange(1, 3 << 20), off)
def truncater():
    r = random.Random(2)
    for _ in range(60):
        os.ftruncate(fd, r.randrange(0, 12 << 20))
        if r.random() < 0.3:
            os.fsync(fd)
    stop.set()
ts = [threading.Thread(target=writer), threading.Thread(target=truncater)]
for t in ts: t.start()
for t in ts: t.join()
os.close(fd)
PY
ok "60 truncations raced a writer"
ino=$(stat -c %i "$M/f")
for _ in $(seq 1 40); do
  "$BIN/ringfs" locate "$M/f" | grep -q "stale (not read)" || break
  sleep 0.5
done
"$BIN/ringfs" locate "$M/f" | grep -q "stale (not read)" && fail "replicas did not converge: $("$BIN/ringfs" locate "$M/f")"
size=$(stat -c %s "$M/f")
nblocks=$(( (size + 4194303) / 4194304 ))
for i in $(seq 0 $((nblocks - 1))); do
  sums=$(for n in "$D"/node*; do
    b=$(block_path "$n" "$ino" "$i")
    if [ -f "$b" ]; then block_data "$b" | md5sum; fi
  done | sort -u | wc -l)
  [ "$sums" -le 1 ] || fail "block $i: copies on the block daemons differ ($sums versions)"
done
ok "every copy of every block holds the same bytes"
drop_caches
cmp "$M/f" "$T/m2/f" || fail "the second mount reads other bytes than the writer's"
ok "a second mount reads what the writing mount reads"
