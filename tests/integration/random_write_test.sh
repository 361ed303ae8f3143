#!/usr/bin/env bash
# Random and small writes, buffered as many ranges per block and uploaded
# together, keep every byte: random writes of odd sizes into a sparse file
# and over existing data, with a block daemon killed (kill -9) in the middle,
# then read back after close from a second mount and compared with a model;
# 300 small files written on one mount and read on the other; and the same
# file reopened and partly rewritten, read back at once (close-to-open).
source "$(dirname "$0")/lib.sh"
NODES=4 up
mount_second "$T/b"

python3 - "$M" "$T/b" "$D" <<'PY' || fail "random writes"
import os, random, signal, sys, time
a, b, d = sys.argv[1:4]
rng = random.Random(1234)
size = 3 * 4 * 1024 * 1024 + 12345
model = bytearray(size)
path = a + "/rnd"
fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o644)
killed = False
for i in range(3000):
    n = rng.choice([1, 7, 511, 512, 513, 4095, 4096, 4097, 65536, 70001])
    off = rng.randrange(0, size - n)
    data = rng.randbytes(n)
    os.pwrite(fd, data, off)
    model[off:off + n] = data
    if i == 1500 and not killed:
        pid = int(open(d + "/run/node1.pid").read())
        os.kill(pid, signal.SIGKILL)  # writes carry on with the other copies
        killed = True
end = max(i for i in range(size) if model[i]) + 1 if any(model) else 0
os.close(fd)
with open(b + "/rnd", "rb") as f:
    got = f.read()
want = bytes(model[:len(got)])
assert len(got) == os.stat(a + "/rnd").st_size, "sizes differ between mounts"
assert got == bytes(model[:len(got)]), "mount b read different bytes than were written"
assert all(x == 0 for x in model[len(got):]), "the file is shorter than what was written"
# Reopen on b, rewrite parts, close; a must see them at once.
fd = os.open(b + "/rnd", os.O_RDWR)
for i in range(500):
    n = rng.randrange(1, 9000)
    off = rng.randrange(0, len(got) - n)
    data = rng.randbytes(n)
    os.pwrite(fd, data, off)
    model[off:off + n] = data
os.close(fd)
with open(a + "/rnd", "rb") as f:
    assert f.read() == bytes(model[:len(got)]), "mount a: rewrite from mount b not seen"
# Small files.
files = {}
os.mkdir(a + "/small")
for i in range(300):
    data = rng.randbytes(rng.choice([0, 1, 100, 3583, 3584, 3585, 4096, 10000]))
    with open(f"{a}/small/f{i}", "wb") as f:
        f.write(data)
    files[i] = data
for i, data in files.items():
    with open(f"{b}/small/f{i}", "rb") as f:
        assert f.read() == data, f"small file f{i} differs on mount b"
print("random writes, rewrites and small files intact across mounts")
PY
ok "random writes with a blockd killed, read back from another mount"
"$BIN/ringfs" up --dir "$D" >/dev/null  # the killed node comes back
drop_caches
python3 - "$T/b" <<'PY' || fail "read after restart"
import os, sys
with open(sys.argv[1] + "/rnd", "rb") as f:
    f.read()
PY
ok "readable after the killed node returned"
