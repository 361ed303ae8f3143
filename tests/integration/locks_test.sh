#!/usr/bin/env bash
# Advisory locks across mounts (meta/locks.h): flock and fcntl locks taken
# through one mount block conflicting ones through another; blocking waits
# are granted on release and interruptible; a close releases; a killed
# mount's locks go when its session expires; truncations from two mounts
# are serialized.
source "$(dirname "$0")/lib.sh"
up --meta-arg=--session-timeout-ms=3000 --meta-arg=--lock-wait-ms=1000
mount_second "$T/m2"
B=$T/m2
echo data > "$M/f"

python3 - "$M/f" "$B/f" <<'PY' || fail "lock semantics across two mounts"
import errno, fcntl, os, signal, struct, sys, threading, time
a_path, b_path = sys.argv[1], sys.argv[2]

def expect_err(code, fn, what):
    try:
        fn()
    except OSError as e:
        assert e.errno == code, f"{what}: errno {e.errno}, wanted {code}"
        return
    raise AssertionError(f"{what}: succeeded, wanted errno {code}")

# A lock the kernel frees at a description's release, which it sends just
# after close() returns: taken within 2 s.
def granted_within_2s(take, what):
    for i in range(100):
        try:
            return take()
        except BlockingIOError:
            time.sleep(0.02)
    raise AssertionError(what + " by 2 s")

# --- flock: exclusive on A refuses B; shared ones coexist; a wait ends at unlock.
fa = os.open(a_path, os.O_RDWR)
fb = os.open(b_path, os.O_RDWR)
fcntl.flock(fa, fcntl.LOCK_EX)
expect_err(errno.EWOULDBLOCK, lambda: fcntl.flock(fb, fcntl.LOCK_SH | fcntl.LOCK_NB), "flock SH against EX")
got = []
def wait_flock():
    fcntl.flock(fb, fcntl.LOCK_EX)
    got.append(time.monotonic())
t = threading.Thread(target=wait_flock)
t.start()
time.sleep(0.5)
assert not got, "a blocking flock was granted while the other mount held it"
released = time.monotonic()
fcntl.flock(fa, fcntl.LOCK_UN)
t.join(5)
assert got and got[0] >= released, "blocking flock not granted after the unlock"
assert got[0] - released < 0.5, f"grant took {got[0] - released:.3f}s after the unlock"
expect_err(errno.EWOULDBLOCK, lambda: fcntl.flock(fa, fcntl.LOCK_EX | fcntl.LOCK_NB), "flock EX against EX")
fcntl.flock(fb, fcntl.LOCK_SH)  # downgrade
fcntl.flock(fa, fcntl.LOCK_SH | fcntl.LOCK_NB)
# Closing the description releases its flock.
os.close(fb)
os.close(fa)
fa = os.open(a_path, os.O_RDWR)
# B's shared lock went with its close (at the release, just after close()).
granted_within_2s(lambda: fcntl.flock(fa, fcntl.LOCK_EX | fcntl.LOCK_NB), "a flock lock outlived its description's close")
os.close(fa)
print("flock ok")

# --- fcntl record locks: byte ranges, F_GETLK, waits, release at close.
fa = os.open(a_path, os.O_RDWR)
fb = os.open(b_path, os.O_RDWR)
fcntl.lockf(fa, fcntl.LOCK_EX, 100, 0)       # bytes 0..99
fcntl.lockf(fa, fcntl.LOCK_SH, 100, 200)     # bytes 200..299
expect_err(errno.EAGAIN, lambda: fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 99), "write lock on a write-locked byte")
expect_err(errno.EAGAIN, lambda: fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 10, 250), "write lock on a read-locked range")
fcntl.lockf(fb, fcntl.LOCK_SH | fcntl.LOCK_NB, 10, 250)  # read locks share
fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 100, 100)  # bytes 100..199 are free
fcntl.lockf(fb, fcntl.LOCK_UN, 0, 0)
# F_GETLK from B describes A's lock.
q = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 50, 10, 0)
r = struct.unpack("hhqqi", fcntl.fcntl(fb, fcntl.F_GETLK, q))
assert r[0] == fcntl.F_WRLCK and r[2] == 0 and r[3] == 100, f"F_GETLK saw {r}"
q = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 100, 100, 0)
r = struct.unpack("hhqqi", fcntl.fcntl(fb, fcntl.F_GETLK, q))
assert r[0] == fcntl.F_UNLCK, f"F_GETLK on a free range saw {r}"
# A blocking wait is granted when A closes any descriptor of the file.
got = []
def wait_lockf():
    fcntl.lockf(fb, fcntl.LOCK_EX, 0, 0)
    got.append(time.monotonic())
t = threading.Thread(target=wait_lockf)
t.start()
time.sleep(0.5)
assert not got, "F_SETLKW granted while the other mount held the range"
other = os.open(a_path, os.O_RDONLY)
released = time.monotonic()
os.close(other)  # POSIX: any close drops the process's locks on the file
t.join(5)
assert got and got[0] >= released, "F_SETLKW not granted after the holder's close"
expect_err(errno.EAGAIN, lambda: fcntl.lockf(fa, fcntl.LOCK_SH | fcntl.LOCK_NB, 1, 0), "read lock under B's write lock")
fcntl.lockf(fb, fcntl.LOCK_UN, 0, 0)
print("fcntl ok")

# --- an interrupted F_SETLKW fails with EINTR, promptly.
fcntl.lockf(fa, fcntl.LOCK_EX, 0, 0)
class Alarm(Exception):
    pass
def on_alarm(*a):
    raise Alarm()
signal.signal(signal.SIGALRM, on_alarm)
signal.setitimer(signal.ITIMER_REAL, 0.3)
start = time.monotonic()
try:
    # The handler raises, so Python does not retry the interrupted call.
    fcntl.fcntl(fb, fcntl.F_SETLKW, struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0))
    raise AssertionError("F_SETLKW succeeded under another mount's lock")
except Alarm:
    pass
took = time.monotonic() - start
assert took < 2.0, f"interrupted wait took {took:.2f}s"
# The cancelled wait left nothing behind: A's unlock leaves the file free.
fcntl.lockf(fa, fcntl.LOCK_UN, 0, 0)
fcntl.lockf(fb, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)
fcntl.lockf(fb, fcntl.LOCK_UN, 0, 0)
print("interrupt ok")

# --- OFD locks: per open file description, even within one process.
F_OFD_GETLK, F_OFD_SETLK, F_OFD_SETLKW = 36, 37, 38
d1 = os.open(a_path, os.O_RDWR)
d2 = os.open(a_path, os.O_RDWR)
wr = struct.pack("hhqqi", fcntl.F_WRLCK, os.SEEK_SET, 0, 0, 0)
fcntl.fcntl(d1, F_OFD_SETLK, wr)
expect_err(errno.EAGAIN, lambda: fcntl.fcntl(d2, F_OFD_SETLK, wr), "OFD lock of another description")
expect_err(errno.EAGAIN, lambda: fcntl.fcntl(fb, F_OFD_SETLK, wr), "OFD lock through the other mount")
os.close(d1)  # the description's last close drops its OFD lock...
# ...at its FUSE release, which the kernel sends after close() returns.
granted_within_2s(lambda: fcntl.fcntl(d2, F_OFD_SETLK, wr), "an OFD lock outlived its description's close")
os.close(d2)
print("ofd ok")

# --- a cycle of waiters across mounts: EDEADLK for the one that closes it.
fcntl.lockf(fa, fcntl.LOCK_EX, 1, 0)
fcntl.lockf(fb, fcntl.LOCK_EX, 1, 1)
res = []
def a_waits():
    try:
        fcntl.lockf(fa, fcntl.LOCK_EX, 1, 1)
        res.append("granted")
    except OSError as e:
        res.append(e.errno)
t = threading.Thread(target=a_waits)
t.start()
time.sleep(0.5)
# One process through two mounts is two lock owners (one per session): A's
# owner waits for B's, so B's waiting for A's would close a cycle.
expect_err(errno.EDEADLK, lambda: fcntl.lockf(fb, fcntl.LOCK_EX, 1, 0), "a wait closing a cycle")
fcntl.lockf(fb, fcntl.LOCK_UN, 0, 0)
t.join(5)
assert res == ["granted"], f"the first waiter got {res}"
os.close(fa)
os.close(fb)
print("deadlock ok")
PY
ok "flock, fcntl, F_GETLK, F_SETLKW, EINTR, OFD and EDEADLK across two mounts"

# Locks are where mounts agree on data (as on NFS): a lock grant shows the
# other mount's committed writes to a descriptor held open since before,
# size included; an unlock uploads and commits what was written under it.
python3 - "$M" "$B" <<'PY' || fail "data coherence at lock and unlock"
import fcntl, os, sys
a, b = sys.argv[1:]
with open(a + "/c1", "wb") as f: f.write(b"0" * 4096)
fb = os.open(b + "/c1", os.O_RDWR)
assert os.pread(fb, 4, 0) == b"0000"  # cached on B
fa = os.open(a + "/c1", os.O_RDWR)
fcntl.lockf(fa, fcntl.LOCK_EX)
os.pwrite(fa, b"1111", 0)
os.write(os.open(a + "/c1", os.O_WRONLY | os.O_APPEND), b"A" * 4096)
fcntl.lockf(fa, fcntl.LOCK_UN)  # uploads and commits; fa stays open
fcntl.lockf(fb, fcntl.LOCK_SH)
got = os.pread(fb, 4, 0)
assert got == b"1111", f"held descriptor read {got} after the lock"
assert os.fstat(fb).st_size == 8192, f"size {os.fstat(fb).st_size} after the lock"
assert os.pread(fb, 4, 4096) == b"AAAA"
fcntl.lockf(fb, fcntl.LOCK_UN)
os.close(fa); os.close(fb)
PY
echo 0 > "$M/counter"
for m in "$M" "$B"; do python3 - "$m/counter" <<'PY' &
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(100):
    fcntl.lockf(fd, fcntl.LOCK_EX)
    n = int(os.pread(fd, 20, 0).split()[0])
    os.pwrite(fd, f"{n + 1:<19}\n".encode(), 0)
    fcntl.lockf(fd, fcntl.LOCK_UN)
PY
done
wait %1 && wait %2 || fail "a locked counter writer failed"
[ "$(awk '{print $1}' "$M/counter")" = 200 ] || fail "locked increments from two mounts: $(cat "$M/counter"), want 200"
# Without locks, a descriptor open across another mount's appends follows
# the size (tail -f polls fstat).
echo line1 > "$M/log"
timeout 3 tail -f "$B/log" > "$T/tail.out" &
tp=$!
sleep 0.5
echo line2 >> "$M/log"
wait $tp || true
[ "$(wc -l < "$T/tail.out")" = 2 ] || fail "tail -f on the other mount printed $(wc -l < "$T/tail.out") lines, want 2"
ok "lock grant revalidates, unlock commits: 200 locked increments from two mounts; tail -f follows appends"

# The service restarted (kill -9) under held locks: each mount's next beat
# takes its locks back, and until every session has, no new lock is
# granted (one could be a holder's). A wait across the restart goes on.
cat > "$T/hold.py" <<'PY'
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
fcntl.lockf(fd, fcntl.LOCK_EX, 10, 100)  # bytes 100..109
open(sys.argv[2], "w").close()
while os.path.exists(sys.argv[2]):
    time.sleep(0.05)
os.close(fd)  # releases both
PY
python3 "$T/hold.py" "$M/f" "$T/holding" &
holder=$!
for _ in $(seq 1 50); do [ -e "$T/holding" ] && break; sleep 0.1; done
[ -e "$T/holding" ] || fail "the holder did not take its locks"
kill -9 "$(pid_of meta)"
up --meta-arg=--session-timeout-ms=3000 --meta-arg=--lock-wait-ms=1000  # the service alone comes back
cat > "$T/probe.py" <<'PY'
import fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for i in range(int(sys.argv[2])):
    for fn in (lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
               lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 1, 105)):  # byte 105
        try:
            fn()
            raise SystemExit(f"probe {i}: a lock granted that the holder has")
        except BlockingIOError:
            pass
PY
python3 "$T/probe.py" "$B/f" 20 || fail "after the restart"
sleep 4  # past every session's beat: the grace is over, the locks are back
python3 "$T/probe.py" "$B/f" 5 || fail "the holder's locks were not taken back after the restart"
grep -q "took back 2 of 2 locks" "$D/logs/meta.log" || fail "the service did not log the holder's locks taken back"
# A blocking wait on the other mount is granted when the holder lets go.
python3 - "$B/f" "$T/holding" <<'PY' || fail "a wait after the restart"
import fcntl, os, sys, threading, time
fd = os.open(sys.argv[1], os.O_RDWR)
t = threading.Timer(0.5, lambda: os.unlink(sys.argv[2]))
t.start()
start = time.monotonic()
fcntl.flock(fd, fcntl.LOCK_EX)
assert time.monotonic() - start >= 0.4, "granted before the holder let go"
PY
wait $holder
ok "locks taken back after a kill -9 of the service; none granted meanwhile; waits go on"

# A mount killed while holding locks: they go when its session expires,
# and a waiter on the other mount gets them.
python3 - "$B/f" <<'PY' &
import fcntl, os, sys, time
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
open(sys.argv[1] + ".held", "w").close()
time.sleep(120)
PY
holder=$!
for _ in $(seq 1 50); do [ -e "$M/f.held" ] && break; sleep 0.1; done
[ -e "$M/f.held" ] || fail "the holder did not take its locks"
python3 - "$M/f" <<'PY' || fail "the other mount took a lock the holder has"
import errno, fcntl, os, sys
fd = os.open(sys.argv[1], os.O_RDWR)
for fn in (lambda: fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB),
           lambda: fcntl.lockf(fd, fcntl.LOCK_EX | fcntl.LOCK_NB, 0, 0)):
    try:
        fn()
        raise SystemExit("lock granted under the holder's")
    except BlockingIOError:
        pass
PY
pkill -9 -f -- "ringfs-mount.*$B" || fail "no second mount to kill"
kill -9 $holder 2>/dev/null; wait $holder 2>/dev/null || true
fusermount3 -uz "$B"
cat > "$T/wait_locks.py" <<'PY'
import fcntl, os, sys, time
start = time.monotonic()
fd = os.open(sys.argv[1], os.O_RDWR)
fcntl.flock(fd, fcntl.LOCK_EX)        # blocking: granted at the session's expiry
fcntl.lockf(fd, fcntl.LOCK_EX, 0, 0)
print(f"{time.monotonic() - start:.1f}")
PY
took=$(timeout 20 python3 "$T/wait_locks.py" "$M/f") || fail "locks of a killed mount were not released"
ok "a killed mount's locks released after ${took}s (session timeout 3 s)"

# Truncations of one file from two mounts at once: each is serialized at
# the service, so the file stays readable and both mounts agree on it.
mount_second "$B"
head -c 3000000 /dev/urandom > "$M/t"
for m in "$M" "$B"; do
  ( for i in $(seq 1 60); do truncate -s $(( (RANDOM * 97) % 3000000 )) "$m/t" || exit 1; done ) &
done
wait %1 || fail "a truncation failed on the first mount"
wait %2 || fail "a truncation failed on the second mount"
drop_caches
size=$(stat -c %s "$M/t")
cmp "$M/t" "$B/t" || fail "the two mounts disagree after concurrent truncations"
[ "$(wc -c < "$M/t")" = "$size" ] || fail "file unreadable to its size after concurrent truncations"
ok "120 concurrent truncations from two mounts: file readable, mounts agree (size $size)"
