#!/usr/bin/env bash
# open(O_TRUNC) while another descriptor of the same file has buffered,
# not yet flushed writes: the truncation comes after those writes, so none
# of their bytes may survive it. POSIX: the file is exactly what was written
# after the O_TRUNC open.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M" "$T/m2" <<'PY' || fail "open(O_TRUNC) does not discard bytes another descriptor wrote before it (unflushed writes land after the truncation)"
import os, sys
a, b = sys.argv[1], sys.argv[2]
bad = []
for name, size in [("f", 100000), ("g", 5 * 2**20 + 3)]:  # within one block; across a block boundary
    p = f"{a}/{name}"
    fd1 = os.open(p, os.O_CREAT | os.O_WRONLY, 0o644)
    os.write(fd1, b"X" * size)
    fd2 = os.open(p, os.O_WRONLY | os.O_TRUNC)
    os.write(fd2, b"hi")
    os.close(fd2)
    os.close(fd1)
    for where, q in [("the writing mount", p), ("a second mount", f"{b}/{name}")]:
        with open(q, "rb") as f:
            got = f.read()
        if got != b"hi":
            bad.append(f"{name}: {where} reads {len(got)} bytes starting {got[:8]!r} "
                       f"({got.count(b'X')} 'X'), want exactly b'hi'")
        st = os.stat(q).st_size
        if st != 2:
            bad.append(f"{name}: {where} says size {st}, want 2")
if bad:
    sys.exit("\n".join(bad))
PY
ok "open(O_TRUNC) discards what other descriptors wrote before it"
