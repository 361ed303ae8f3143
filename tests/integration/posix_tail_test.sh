#!/usr/bin/env bash
# The rest of POSIX, each with exact errno and content checks, with a
# second mount where what one mount did must show on the other:
# fallocate modes, renameat2 EXCHANGE and WHITEOUT, st_blocks of sparse
# files, O_TRUNC and truncate timestamps, an open directory replaced by a
# rename, a 15,000-entry listing racing renames, overlayfs on ringfs.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
B=$T/m2

python3 - "$M" "$B" <<'PY' || fail "fallocate, renameat2, st_blocks, timestamps, removed open directory"
import ctypes, errno, os, stat, sys, time
a, b = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
MiB = 1 << 20

def falloc(fd, mode, off, ln):
    r = libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(ln))
    return 0 if r == 0 else ctypes.get_errno()

def renameat2(src, dst, flags):
    AT_FDCWD = -100
    r = libc.renameat2(AT_FDCWD, src.encode(), AT_FDCWD, dst.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()

# --- fallocate
KEEP, PUNCH, COLLAPSE, ZERO, INSERT = 1, 2, 8, 0x10, 0x20
data = os.urandom(12 * MiB + 777)
with open(a + "/fa", "wb") as f:
    f.write(data)
fd = os.open(a + "/fa", os.O_RDWR)
assert falloc(fd, PUNCH, 0, 10) == errno.EOPNOTSUPP, "PUNCH_HOLE without KEEP_SIZE"
assert falloc(fd, COLLAPSE, 0, 4 * MiB) == errno.EOPNOTSUPP, "COLLAPSE_RANGE"
assert falloc(fd, INSERT, 0, 4 * MiB) == errno.EOPNOTSUPP, "INSERT_RANGE"
assert falloc(fd, 0, 0, 0) == errno.EINVAL, "zero length"
assert falloc(fd, 0, 0, 1 << 55) == errno.ENOSPC, "more than the cluster holds"
assert os.fstat(fd).st_size == len(data), "a refused fallocate changed the size"
exp = bytearray(data)
assert falloc(fd, PUNCH | KEEP, MiB + 3, 8 * MiB) == 0
exp[MiB + 3:9 * MiB + 3] = bytes(8 * MiB)
assert falloc(fd, ZERO | KEEP, 12 * MiB, 10 * MiB) == 0  # past the end, size kept
exp[12 * MiB:] = bytes(777)
assert os.fstat(fd).st_size == len(data)
assert falloc(fd, ZERO, 12 * MiB + 100, 2 * MiB) == 0  # grows the file
exp += bytes(12 * MiB + 100 + 2 * MiB - len(exp))
assert falloc(fd, 0, 20 * MiB, MiB) == 0  # mode 0 past the end: size grows, zeros read
exp += bytes(21 * MiB - len(exp))
assert falloc(fd, KEEP, 30 * MiB, MiB) == 0
os.close(fd)
for m in (a, b):
    got = open(m + "/fa", "rb").read()
    assert got == bytes(exp), f"fallocated file reads wrong through {m}"
print("fallocate ok, ino", os.stat(a + "/fa").st_ino)

# --- renameat2
RENAME_NOREPLACE, RENAME_EXCHANGE, RENAME_WHITEOUT = 1, 2, 4
open(a + "/x1", "w").write("one")
os.mkdir(a + "/xd")
open(a + "/xd/in", "w").write("in")
assert renameat2(a + "/x1", a + "/xd", RENAME_EXCHANGE) == 0
assert open(b + "/xd").read() == "one" and open(b + "/x1/in").read() == "in", "exchange seen from the other mount"
assert renameat2(a + "/x1", a + "/nothing", RENAME_EXCHANGE) == errno.ENOENT
assert renameat2(a + "/x1", a + "/xd", RENAME_EXCHANGE | RENAME_NOREPLACE) == errno.EINVAL
assert renameat2(a + "/xd", a + "/x1", RENAME_NOREPLACE) == errno.EEXIST
assert renameat2(a + "/xd", a + "/moved", RENAME_WHITEOUT) == 0
for m in (a, b):
    st = os.lstat(m + "/xd")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0, f"whiteout through {m}: {st}"
    assert open(m + "/moved").read() == "one"
print("renameat2 ok")

# --- st_blocks counts what is allocated, not the size
with open(a + "/sparse", "wb") as f:
    f.truncate(1 << 30)
    f.seek(100 * MiB)
    f.write(b"x" * 4096)
for m in (a, b):
    used = os.stat(m + "/sparse").st_blocks * 512
    assert used <= 4 * MiB, f"1 GiB sparse file with 4 KiB written uses {used} bytes through {m}"
with open(a + "/small", "wb") as f:
    f.write(b"y" * 100)
assert os.stat(b + "/small").st_blocks == 8, os.stat(b + "/small").st_blocks
with open(a + "/full", "wb") as f:
    f.write(os.urandom(9 * MiB))
assert os.stat(b + "/full").st_blocks * 512 == 9 * MiB
print("st_blocks ok")

# --- timestamps of truncations
def times(p):
    s = os.stat(p)
    return s.st_mtime_ns, s.st_ctime_ns
open(a + "/t", "w").close()
for what, fn in [("O_TRUNC of an empty file", lambda: os.close(os.open(a + "/t", os.O_WRONLY | os.O_TRUNC))),
                 ("truncate up", lambda: os.truncate(a + "/t", 5000)),
                 ("truncate down", lambda: os.truncate(a + "/t", 10)),
                 ("ftruncate up", lambda: os.truncate(b + "/t", 7 * MiB)),
                 ("O_TRUNC", lambda: os.close(os.open(b + "/t", os.O_WRONLY | os.O_TRUNC)))]:
    before = times(a + "/t")
    time.sleep(0.01)
    fn()
    for m in (a, b):
        # The other mount hears of the change within about 10 ms (events).
        for i in range(100):
            after = times(m + "/t")
            if after[0] > before[0] and after[1] > before[1]:
                break
            time.sleep(0.01)
        assert after[0] > before[0] and after[1] > before[1], f"{what}: mtime/ctime not stamped through {m}"
print("truncate timestamps ok")

# --- a directory replaced by rename() while open, on this mount and the other
for victim_side in (a, b):
    os.mkdir(a + "/old")
    os.mkdir(a + "/new")
    fd = os.open(victim_side + "/old", os.O_RDONLY | os.O_DIRECTORY)
    os.rename(a + "/new", a + "/old")
    time.sleep(1.2)  # past the other mount's attribute time
    st = os.fstat(fd)
    assert stat.S_ISDIR(st.st_mode) and st.st_nlink == 0, f"fstat of a replaced open directory: {st}"
    assert os.listdir(fd) == [], "a replaced directory still lists entries"
    os.close(fd)
    os.rmdir(a + "/old")
print("replaced open directory ok")
PY
ok "fallocate modes, renameat2 exchange/whiteout, st_blocks, truncate timestamps, replaced open directory"

# The punched blocks were emptied on every replica (their space freed).
ino=$(stat -c %i "$M/fa")
for n in "$D"/node*; do
  p=$(block_path "$n" "$ino" 1)
  [ -e "$p" ] || continue
  [ "$(stat -c %s "$p")" = 0 ] || fail "punched block 1 still holds $(stat -c %s "$p") bytes on $n"
done
ok "a punched block holds no bytes on its replicas"

# 15,000 entries listed through one mount while the other renames them
# within the directory: no name twice, none lost.
python3 - "$M/big" <<'PY'
import os, sys
os.mkdir(sys.argv[1])
for i in range(15000):
    os.close(os.open(f"{sys.argv[1]}/e{i:05d}", os.O_CREAT | os.O_WRONLY, 0o644))
PY
python3 - "$M/big" "$B/big" <<'PY' || fail "listing while renaming"
import os, sys, threading
a, b = sys.argv[1:]
stop = threading.Event()
def renamer():
    i = 0
    while not stop.is_set() and i < 15000:
        os.rename(f"{a}/e{i:05d}", f"{a}/r{i:05d}")
        i += 3
t = threading.Thread(target=renamer)
t.start()
for round in range(3):
    names = os.listdir(b)
    dup = len(names) - len(set(names))
    assert dup == 0, f"round {round}: {dup} names twice in one listing"
    assert len(names) == 15000, f"round {round}: {len(names)} entries, want 15000"
stop.set()
t.join()
PY
ok "15,000-entry listings racing renames: every name once"

# overlayfs with its upper and work directories on ringfs.
mkdir -p "$M/lower" "$M/upper" "$M/work" "$T/merged"
echo low > "$M/lower/a"
echo low2 > "$M/lower/b"
mkdir "$M/lower/dir" && echo d > "$M/lower/dir/f"
mount -t overlay overlay -o "lowerdir=$M/lower,upperdir=$M/upper,workdir=$M/work" "$T/merged" ||
  fail "overlayfs refused ringfs as its upper layer"
OTHER_MOUNTS+=("$T/merged")
echo more >> "$T/merged/a"
rm "$T/merged/b"
mv "$T/merged/dir" "$T/merged/dir2"
echo new > "$T/merged/c"
[ "$(cat "$T/merged/a")" = "$(printf 'low\nmore')" ] || fail "overlay copy-up"
[ ! -e "$T/merged/b" ] || fail "overlay delete"
[ "$(cat "$T/merged/dir2/f")" = d ] || fail "overlay directory rename"
[ "$(stat -c '%F %t:%T' "$M/upper/b")" = "character special file 0:0" ] || fail "no whiteout in the upper layer"
umount "$T/merged"
OTHER_MOUNTS=()
mount -t overlay overlay -o "lowerdir=$B/lower,upperdir=$B/upper,workdir=$B/work" "$T/merged" ||
  fail "overlayfs remount through the second mount"
OTHER_MOUNTS+=("$T/merged")
[ "$(ls "$T/merged" | tr '\n' ' ')" = "a c dir2 " ] || fail "overlay remounted lists $(ls "$T/merged")"
umount "$T/merged"
OTHER_MOUNTS=()
ok "overlayfs over ringfs: copy-up, whiteouts, directory rename, remounted through the other mount"
