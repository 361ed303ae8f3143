#!/usr/bin/env bash
# Names and attributes cached by one mount stay true to another's changes:
# a name created, renamed or removed on mount A is seen on mount B within
# the entry time (1 s), also in directories B holds as completely known
# (where B answers absent names without asking the service), and its
# negative knowledge goes when A changes the directory. A file's new size
# shows on B within the attribute time, and at once on open
# (close-to-open). A strict mount sees every change at once. A restarted
# metadata service makes B drop what it knew. B's complete-directory
# knowledge is in use: creating in a directory it made costs no lookup.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/b"
mount_second "$T/s" --strict

check() {
  python3 - "$M" "$T/b" "$T/s" "$1" <<'PY'
import os, sys, time
a, b, s, phase = sys.argv[1:5]

def within(what, cond, limit=1.5):
    t0 = time.time()
    while not cond():
        if time.time() - t0 > limit:
            sys.exit(f"{what}: not seen within {limit} s")
        time.sleep(0.01)
    return time.time() - t0

def exists(p):
    try:
        os.stat(p)
        return True
    except FileNotFoundError:
        return False

def size(p):
    try:
        return os.stat(p).st_size
    except FileNotFoundError:
        return -1

worst = 0.0
def note(t):
    global worst
    worst = max(worst, t)

if phase == "names":
    # A directory B made: B knows all of it (empty), and answers absent
    # names without asking.
    os.mkdir(b + "/d")
    assert not exists(b + "/d/x")
    open(a + "/d/x", "w").close()
    note(within("create on A in B's own directory", lambda: exists(b + "/d/x")))
    os.rename(a + "/d/x", a + "/d/y")
    note(within("rename on A (new name)", lambda: exists(b + "/d/y")))
    note(within("rename on A (old name gone)", lambda: not exists(b + "/d/x")))
    os.unlink(a + "/d/y")
    note(within("unlink on A", lambda: not exists(b + "/d/y")))
    # A directory B listed whole.
    os.mkdir(a + "/e")
    for i in range(50):
        open(f"{a}/e/f{i}", "w").close()
    assert len(os.listdir(b + "/e")) == 50
    assert not exists(b + "/e/late")  # answered by B alone, or cached negative
    open(a + "/e/late", "w").close()
    note(within("create on A in a directory B listed", lambda: exists(b + "/e/late")))
    os.mkdir(a + "/e/sub")
    note(within("mkdir on A in a directory B listed", lambda: os.path.isdir(b + "/e/sub")))
    os.rmdir(a + "/e/sub")
    note(within("rmdir on A", lambda: not exists(b + "/e/sub")))
    # Hard link and symlink into a directory B holds.
    os.link(a + "/e/f1", a + "/e/hard")
    os.symlink("f2", a + "/e/soft")
    note(within("link on A", lambda: exists(b + "/e/hard")))
    note(within("symlink on A", lambda: os.path.islink(b + "/e/soft")))
    # The strict mount sees it all at once.
    open(a + "/e/now", "w").close()
    assert exists(s + "/e/now"), "strict mount: a new name not seen at once"
    os.unlink(a + "/e/now")
    assert not exists(s + "/e/now"), "strict mount: a removed name still seen"
    print(f"names: slowest cross-mount change seen in {worst * 1000:.0f} ms")

elif phase == "attrs":
    with open(a + "/sz", "wb") as f:
        f.write(b"x" * 100)
    assert size(b + "/sz") == 100
    with open(a + "/sz", "ab") as f:
        f.write(b"y" * 4900)
    # close-to-open: an open on B sees the whole file at once
    with open(b + "/sz", "rb") as f:
        data = f.read()
    assert len(data) == 5000 and data.endswith(b"y"), f"open on B read {len(data)} bytes"
    with open(a + "/sz", "ab") as f:
        f.write(b"z" * 1000)
    note(within("size change on A", lambda: size(b + "/sz") == 6000))
    assert size(s + "/sz") == 6000, "strict mount: stale size"
    os.chmod(a + "/sz", 0o600)
    note(within("chmod on A", lambda: os.stat(b + "/sz").st_mode & 0o777 == 0o600))
    print(f"attrs: slowest cross-mount change seen in {worst * 1000:.0f} ms")

elif phase == "restart":
    # B holds `r` as complete; the service restarts; A creates in it.
    os.mkdir(b + "/r")
    assert not exists(b + "/r/n")
elif phase == "after-restart":
    open(a + "/r/n", "w").close()
    note(within("create on A after a service restart", lambda: exists(b + "/r/n")))
    print(f"after restart: seen in {worst * 1000:.0f} ms")
PY
}

check names || fail "names across mounts"
ok "names across mounts"
check attrs || fail "attributes across mounts"
ok "attributes across mounts"

# B's own directory: creating files there asks no lookup of the service.
setfattr -n ringfs.stats -v reset "$T/b"
mkdir "$T/b/own"
for i in $(seq 1 200); do : > "$T/b/own/f$i"; done
lookups=$(getfattr --only-values -n ringfs.stats "$T/b" 2>/dev/null | awk '$1 == "rpc.Lookup" { print $2 }')
[ "${lookups:-0}" -lt 10 ] || fail "200 creates in a directory this mount made asked $lookups lookups"
ok "creates in a directory this mount made ask no lookups (${lookups:-0} for 200)"

check restart || fail "restart setup"
kill -9 "$(pid_of meta)"
up  # restarts the metadata service on the same address
check after-restart || fail "knowledge kept across a service restart"
ok "a restarted service ends what mounts knew"
