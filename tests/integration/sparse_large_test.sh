#!/usr/bin/env bash
# A sparse file with data past 5 GiB: size, data and holes read back right.
source "$(dirname "$0")/lib.sh"
up
python3 - "$M/sparse" <<'PY' || fail "sparse write/read"
import os, sys
p = sys.argv[1]
off = 5 * 2**30 + 12345
data = os.urandom(3 * 2**20)
with open(p, "wb") as f:
    f.write(b"head")
    f.seek(off)
    f.write(data)
assert os.stat(p).st_size == off + len(data)
with open(p, "rb") as f:
    assert f.read(4) == b"head"
    f.seek(2**32)
    assert f.read(65536) == b"\0" * 65536  # a hole past 4 GiB
    f.seek(off - 100)
    got = f.read(100 + len(data))
    assert got == b"\0" * 100 + data
PY
mount_second "$T/m2"
python3 - "$T/m2/sparse" <<'PY' || fail "sparse read from a second mount"
import os, sys
p = sys.argv[1]
assert os.stat(p).st_size == 5 * 2**30 + 12345 + 3 * 2**20
with open(p, "rb") as f:
    f.seek(5 * 2**30)
    assert f.read(12345) == b"\0" * 12345
PY
ok "sparse file past 5 GiB"
