#!/usr/bin/env bash
# The POSIX tail as an unprivileged user (uid 4101, no capabilities), with
# exact errnos, through two mounts: locks, fallocate, renameat2, O_DIRECT,
# truncation timestamps, st_blocks, relatime, and EACCES/EPERM on root's.
source "$(dirname "$0")/lib.sh"
chmod 0755 "$T"
up --allow-other
mount_second "$T/m2" -o allow_other
U=4101
mkdir "$M/home" && chown $U:$U "$M/home"
cat > "$T/user.py" <<'PY'
import ctypes, errno, fcntl, mmap, os, struct, sys, threading, time
a, b = sys.argv[1:]
assert os.getuid() != 0 and os.geteuid() != 0
libc = ctypes.CDLL(None, use_errno=True)
MiB = 1 << 20
def err(fn):
    try:
        fn()
    except OSError as e:
        return e.errno
    return 0
def falloc(fd, mode, off, ln):
    r = libc.fallocate(fd, mode, ctypes.c_long(off), ctypes.c_long(ln))
    return 0 if r == 0 else ctypes.get_errno()
def renameat2(src, dst, flags):
    r = libc.renameat2(-100, src.encode(), -100, dst.encode(), flags)
    return 0 if r == 0 else ctypes.get_errno()

# Locks across the two mounts.
with open(a + "/lk", "w") as f:
    f.write("x" * 100)
fa, fb = os.open(a + "/lk", os.O_RDWR), os.open(b + "/lk", os.O_RDWR)
fcntl.flock(fa, fcntl.LOCK_EX)
assert err(lambda: fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB)) == errno.EWOULDBLOCK
fcntl.flock(fa, fcntl.LOCK_UN)
fcntl.flock(fb, fcntl.LOCK_EX | fcntl.LOCK_NB)
fcntl.lockf(fa, fcntl.LOCK_EX, 10, 0)
assert err(lambda: fcntl.lockf(fb, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 5)) == errno.EAGAIN
got = []
t = threading.Thread(target=lambda: (fcntl.lockf(fb, fcntl.LOCK_SH, 1, 5), got.append(1)))
t.start()
time.sleep(0.3)
assert not got
fcntl.lockf(fa, fcntl.LOCK_UN, 10, 0)
t.join(5)
assert got, "F_SETLKW not granted at the unlock"
os.close(fa); os.close(fb)

# fallocate.
fd = os.open(a + "/fa", os.O_RDWR | os.O_CREAT, 0o644)
os.write(fd, os.urandom(9 * MiB))
assert falloc(fd, 2, 0, 10) == errno.EOPNOTSUPP
assert falloc(fd, 8, 0, 4 * MiB) == errno.EOPNOTSUPP
assert falloc(fd, 0, 0, 0) == errno.EINVAL
assert falloc(fd, 0, 0, 1 << 55) == errno.ENOSPC
assert falloc(fd, 3, 4 * MiB, 4 * MiB) == 0
assert os.pread(fd, 4 * MiB, 4 * MiB) == bytes(4 * MiB)
assert falloc(fd, 0, 10 * MiB, MiB) == 0 and os.fstat(fd).st_size == 11 * MiB
os.close(fd)
ro = os.open(a + "/fa", os.O_RDONLY)
assert falloc(ro, 0, 0, 4096) == errno.EBADF
os.close(ro)
with open(a + "/sparse", "wb") as f:
    f.truncate(64 * MiB)
    f.seek(40 * MiB)
    f.write(b"s" * 4096)
assert os.stat(b + "/sparse").st_blocks * 512 <= 4 * MiB, "holes of a sparse file counted"

# renameat2: EXCHANGE, and WHITEOUT (unprivileged since Linux 5.8).
open(a + "/r1", "w").write("1")
open(a + "/r2", "w").write("2")
assert renameat2(a + "/r1", a + "/r2", 2) == 0
assert open(b + "/r1").read() == "2"
assert renameat2(a + "/r1", a + "/r3", 4) == 0
import stat as st_
assert st_.S_ISCHR(os.lstat(b + "/r1").st_mode) and os.lstat(b + "/r1").st_rdev == 0
assert renameat2(a + "/r1", a + "/r2", 1) == errno.EEXIST

# O_DIRECT written on one mount, read buffered on the other.
m = mmap.mmap(-1, MiB)
m.write(b"d" * MiB)
fd = os.open(a + "/dio", os.O_RDWR | os.O_CREAT | os.O_DIRECT, 0o644)
assert os.pwritev(fd, [m], 0) == MiB
rb = os.open(b + "/dio", os.O_RDONLY)
assert os.pread(rb, 4, MiB - 4) == b"dddd"
os.close(rb); os.close(fd)

# Truncation stamps mtime and ctime, O_TRUNC of an empty file too.
open(a + "/t", "w").close()
for fn in (lambda: os.close(os.open(a + "/t", os.O_WRONLY | os.O_TRUNC)), lambda: os.truncate(a + "/t", 100),
           lambda: os.truncate(a + "/t", 1)):
    s0 = os.stat(a + "/t")
    time.sleep(0.01)
    fn()
    s1 = os.stat(a + "/t")
    assert s1.st_mtime_ns > s0.st_mtime_ns and s1.st_ctime_ns > s0.st_ctime_ns

# relatime: a read after a write moves atime.
os.utime(a + "/lk", ns=(1_000_000_000, 2_000_000_000))
open(a + "/lk").read()
assert os.stat(a + "/lk").st_atime_ns > 2_000_000_000

# Somebody else's file: no lock through a descriptor it cannot open, no utime.
assert err(lambda: os.open(a + "/../rootfile", os.O_RDWR)) == errno.EACCES
assert err(lambda: os.utime(a + "/../rootfile", ns=(1, 1))) == errno.EPERM
print("unprivileged checks ok")
PY
echo root > "$M/rootfile" && chmod 0644 "$M/rootfile"
py=$(command -v /usr/bin/python3 || command -v python3)
setpriv --reuid=$U --regid=$U --clear-groups -- "$py" "$T/user.py" "$M/home" "$T/m2/home" || fail "as uid $U"
ok "locks, fallocate, renameat2, O_DIRECT, truncation times, st_blocks and relatime as uid $U (no capabilities)"
