#!/usr/bin/env bash
# Attribute changes on a file with writes still buffered (tar's write,
# futimens, fchown, fchmod, close): the first one uploads the writes and
# carries their commit. What must hold, seen from this mount and from a
# second one: the data; an mtime set after the last write is kept; a write
# after it makes the mtime the write's again; mode and owner stick; the size
# seen on the open descriptor includes the buffered writes; fsync commits
# them. Also with a block daemon killed mid-sequence.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/b"

check() {
  python3 - "$M" "$T/b" "$1" <<'PY'
import os, sys, time
a, b, tag = sys.argv[1:4]

def data(n, seed):
    return bytes((i * 131 + seed) % 251 for i in range(n))

def both(path, what, cond):
    for root in (a, b):
        t0 = time.time()
        while True:
            st = os.stat(f"{root}/{path}")
            if cond(st):
                break
            if time.time() - t0 > 1.5:
                sys.exit(f"{tag} {path}: {what} on {root}: {st}")
            time.sleep(0.02)

for n in (1, 4095, 4096, 30000, 5 * 2**20 + 17):
    # tar's sequence: the mtime set after the writes survives their commit.
    p = f"{tag}-tar-{n}"
    fd = os.open(f"{a}/{p}", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    os.write(fd, data(n, 1))
    os.utime(fd, ns=(5_000_000_000, 7_000_000_123))
    os.fchown(fd, 12, 34)
    os.fchmod(fd, 0o640)
    if os.fstat(fd).st_size != n:
        sys.exit(f"{p}: fstat size {os.fstat(fd).st_size} while writes are buffered")
    os.close(fd)
    both(p, "mtime kept through the commit", lambda st: st.st_mtime_ns == 7_000_000_123)
    both(p, "size", lambda st: st.st_size == n)
    both(p, "mode and owner", lambda st: (st.st_mode & 0o777, st.st_uid, st.st_gid) == (0o640, 12, 34))
    with open(f"{b}/{p}", "rb") as f:
        if f.read() != data(n, 1):
            sys.exit(f"{p}: data read on the second mount differs")

    # A write after the explicit mtime: the file's mtime is the write's.
    p = f"{tag}-late-{n}"
    fd = os.open(f"{a}/{p}", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data(n, 2))
    os.utime(fd, ns=(5_000_000_000, 7_000_000_000))
    before = time.time_ns()
    os.write(fd, b"tail")
    os.close(fd)
    both(p, "mtime of a write after the utime", lambda st: st.st_mtime_ns >= before - 2_000_000_000)
    both(p, "size", lambda st: st.st_size == n + 4)

    # chmod alone with writes buffered: the commit stamps its own time.
    p = f"{tag}-chmod-{n}"
    before = time.time_ns()
    fd = os.open(f"{a}/{p}", os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd, data(n, 3))
    os.fchmod(fd, 0o600)
    os.fsync(fd)  # commits: visible elsewhere before the close
    both(p, "size after fsync, before close", lambda st: st.st_size == n)
    both(p, "mtime after fsync", lambda st: st.st_mtime_ns >= before - 2_000_000_000)
    os.close(fd)
    with open(f"{b}/{p}", "rb") as f:
        if f.read() != data(n, 3):
            sys.exit(f"{p}: data read on the second mount differs")
print(f"{tag}: ok")
PY
}

check healthy || fail "attribute changes with buffered writes, healthy cluster"
ok "tar's write, futimens, fchown, fchmod, close: data, mtime, mode and owner on both mounts"

kill -9 "$(pid_of node1)"
check node-down || fail "attribute changes with buffered writes, a block daemon killed"
ok "the same with a block daemon killed"
up
