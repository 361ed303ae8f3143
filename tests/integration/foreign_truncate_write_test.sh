#!/usr/bin/env bash
# A mount holds a file open while another mount truncates it; the first then
# writes (past the old end, into a block that was cut, and into one that
# was removed) and closes. close() returned 0, so every mount must read
# those bytes: a write that came after the other mount's truncation is
# committed at the new block epoch, not dropped as older than it.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M/f" "$T/m2/f" <<'PY' || fail "a write after another mount's truncation was lost"
import os, sys
a, b = sys.argv[1], sys.argv[2]
BS = 4 << 20
with open(a, "wb") as f:
    f.write(os.urandom(2 * BS + 1000))     # blocks 0..2
fd = os.open(a, os.O_RDWR)                  # A's view: before the truncation
os.truncate(b, 3000)                        # B cuts block 0, removes 1 and 2
writes = [(5 * BS, b"X" * 5000),            # a block that never existed
          (1 * BS + 10, b"Y" * 7000),       # a block B removed
          (100, b"Z" * 200)]                # the block B cut
for off, data in writes:
    os.pwrite(fd, data, off)
os.close(fd)
bad = []
for p in (a, b):
    with open(p, "rb") as f:
        for off, data in writes:
            f.seek(off)
            if f.read(len(data)) != data:
                bad.append(f"{p}: bytes written at {off} after the truncation are gone")
if bad:
    sys.exit("\n".join(bad))
PY
ok "writes after another mount's truncation survive their close"
