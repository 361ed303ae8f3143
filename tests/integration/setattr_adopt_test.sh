#!/usr/bin/env bash
# Close-to-open after an attribute change: a mount that has a file cached,
# then changes only its attributes (chmod, touch) after another mount
# rewrote it, must not keep serving its cached bytes. The data version the
# attribute change returns moved because of the other mount's write, not
# because of anything this mount wrote.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M" "$T/m2" <<'PY' || fail "a mount that ran chmod/touch after another mount rewrote the file still reads its stale cached data"
import os, sys
a, b = sys.argv[1], sys.argv[2]
MiB = 2**20

def read(p):
    with open(p, "rb") as f:
        return f.read()

def describe(got):
    return f"{len(got)} bytes: " + ", ".join(
        f"{got.count(c)} {chr(c)!r}" for c in sorted(set(got)))

bad = []
for name, new, what, change in [
        ("f", b"B", "chmod 600", lambda p: os.chmod(p, 0o600)),
        ("g", b"C", "touch", lambda p: os.utime(p)),
        ("h", b"D", "chmod 600, touch", lambda p: (os.chmod(p, 0o600), os.utime(p)))]:
    with open(f"{a}/{name}", "wb") as f:
        f.write(b"A" * MiB)
    assert read(f"{a}/{name}") == b"A" * MiB, "mount 1 does not read back its own write"
    # mount 1 has the file cached; mount 2 overwrites it in place
    with open(f"{b}/{name}", "r+b") as f:
        f.write(new * MiB)
    change(f"{a}/{name}")
    for attempt in ("first", "second"):
        got = read(f"{a}/{name}")
        if got != new * MiB:
            bad.append(f"{name}: after mount 2 wrote {new!r} and mount 1 ran {what}, mount 1's "
                       f"{attempt} open reads {describe(got)}, want all {new!r}")
    if read(f"{b}/{name}") != new * MiB:
        bad.append(f"{name}: mount 2 does not read back its own {new!r}")
if bad:
    sys.exit("\n".join(bad))
PY
ok "chmod and touch do not let a mount keep data another mount replaced"
