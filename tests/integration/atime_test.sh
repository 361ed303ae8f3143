#!/usr/bin/env bash
# Access times: relatime by default (a read updates atime when it is not
# after mtime or ctime, or is a day old), strictatime and noatime when
# asked, nodiratime; the update never stamps ctime, shows at once on the
# reading mount, reaches the service within about a second, and so shows
# on another mount.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/strict" -o strictatime
mount_second "$T/noatime" -o noatime,nodiratime

python3 - "$M" "$T/strict" "$T/noatime" <<'PY' || fail "access times"
import os, sys, time
rel, strict, noat = sys.argv[1:]
def st(p):
    return os.stat(p)
def read(p):
    with open(p, "rb") as f:
        f.read()
def wait_for(cond, what, secs=3.0):
    end = time.time() + secs
    while time.time() < end:
        if cond():
            return
        time.sleep(0.05)
    raise AssertionError(what)

# relatime: the first read after a write updates atime; ctime stays.
with open(rel + "/f", "wb") as f:
    f.write(b"x" * 10000)
os.utime(rel + "/f", ns=(1_000_000_000, 2_000_000_000))  # atime before mtime
before = st(rel + "/f")
read(rel + "/f")
after = st(rel + "/f")
assert after.st_atime_ns > before.st_mtime_ns, f"relatime read left atime {after.st_atime_ns}"
assert after.st_ctime_ns == before.st_ctime_ns, "an atime update stamped ctime"
assert after.st_mtime_ns == before.st_mtime_ns
# A second read right after changes nothing (atime is after mtime and ctime now).
t1 = after.st_atime_ns
time.sleep(0.05)
read(rel + "/f")
assert st(rel + "/f").st_atime_ns == t1, "relatime updated an atime already after mtime"
# It reaches the service, so another mount shows it (past its attribute time).
wait_for(lambda: st(strict + "/f").st_atime_ns == t1, "the other mount never showed the read's atime")
# An atime a day old is updated even though it is after mtime.
day = 86400 * 10**9
os.utime(rel + "/f", ns=(time.time_ns() - 2 * day, time.time_ns() - 3 * day))
old = st(rel + "/f").st_atime_ns
read(rel + "/f")
assert st(rel + "/f").st_atime_ns > old + day, "a day-old atime was not updated"

# strictatime: every read updates it.
with open(strict + "/s", "wb") as f:
    f.write(b"y" * 100)
os.utime(strict + "/s", ns=(5_000_000_000, 1_000_000_000))  # atime after mtime
fd = os.open(strict + "/s", os.O_RDONLY)
os.pread(fd, 10, 0)
a1 = os.fstat(fd).st_atime_ns
assert a1 > 5_000_000_000, "strictatime read did not update atime"
time.sleep(0.05)
os.pread(fd, 10, 0)  # the page cache may answer: a new open is a fresh read
os.close(fd)
os.system(f"echo 3 > /proc/sys/vm/drop_caches")
read(strict + "/s")
assert st(strict + "/s").st_atime_ns > a1, "strictatime: a later read did not move atime"

# noatime: reads never update it; nodiratime: listings neither.
with open(noat + "/n", "wb") as f:
    f.write(b"z" * 100)
os.utime(noat + "/n", ns=(1_000_000_000, 2_000_000_000))
read(noat + "/n")
assert st(noat + "/n").st_atime_ns == 1_000_000_000, "noatime read updated atime"
os.mkdir(noat + "/d")
os.utime(noat + "/d", ns=(1_000_000_000, 2_000_000_000))
os.listdir(noat + "/d")
assert st(noat + "/d").st_atime_ns == 1_000_000_000, "nodiratime listing updated atime"
# A listing through the relatime mount updates the directory's atime.
os.listdir(rel + "/d")
assert st(rel + "/d").st_atime_ns > 2_000_000_000, "relatime listing left the directory's atime"
# After the flush the service has it: it survives the reading mount's cache.
time.sleep(1.5)
os.system(f"echo 3 > /proc/sys/vm/drop_caches")
assert st(noat + "/d").st_atime_ns > 2_000_000_000, "the listing's atime never reached the service"
PY
ok "relatime, strictatime, noatime and nodiratime; atime updates stamp no ctime and reach other mounts"
