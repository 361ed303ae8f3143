#!/usr/bin/env bash
# Close-to-open across mounts: once close() returns on one mount, open() on
# another sees the new data and size.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M" "$T/m2" <<'PY' || fail "close-to-open"
import os, sys
a, b = sys.argv[1], sys.argv[2]
for round in range(5):
    data = os.urandom(1000 + round * 3000000)
    with open(a + "/shared", "wb") as f:
        f.write(data)
    with open(b + "/shared", "rb") as f:
        assert f.read() == data, f"round {round}: mount b sees stale data"
    assert os.stat(b + "/shared").st_size == len(data)
    small = os.urandom(500)
    with open(b + "/shared", "wb") as f:
        f.write(small)
    with open(a + "/shared", "rb") as f:
        assert f.read() == small, f"round {round}: mount a sees stale data"
os.mkdir(a + "/dir")
with open(a + "/dir/x", "w") as f: f.write("x")
assert os.listdir(b + "/dir") == ["x"]
PY
ok "close-to-open between two mounts"
