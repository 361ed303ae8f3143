#!/usr/bin/env bash
# O_DIRECT: direct opens bypass the page cache, a direct write is on the
# replicas and committed when it returns, and buffered descriptors on the
# same mount and direct or buffered ones on another mount read it. Async
# direct I/O (libaio, io_uring) through fio, verified from the other mount.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
B=$T/m2

python3 - "$M" "$B" <<'PY' || fail "direct and buffered I/O on one file"
import mmap, os, sys
a, b = sys.argv[1:]
MiB = 1 << 20
def aligned(fill, n=MiB):
    m = mmap.mmap(-1, n)
    m.write(fill * n)
    return m
def dread(fd, off, n=4096):
    m = mmap.mmap(-1, n)
    got = os.preadv(fd, [m], off)
    return m[:got]
with open(a + "/d", "wb") as f:
    f.write(b"a" * 8 * MiB)
held_a = os.open(a + "/d", os.O_RDONLY)
held_b = os.open(b + "/d", os.O_RDONLY)
direct_b = os.open(b + "/d", os.O_RDONLY | os.O_DIRECT)
for fd in (held_a, held_b):
    assert os.pread(fd, 4, MiB) == b"aaaa"  # in the page caches now
assert dread(direct_b, MiB)[:4] == b"aaaa"
w = os.open(a + "/d", os.O_RDWR | os.O_DIRECT)
assert os.pwritev(w, [aligned(b"b")], MiB) == MiB
assert os.pwritev(w, [aligned(b"c")], 20 * MiB) == MiB  # past the end, over a hole
# The writer stays open: nothing waits for its close.
assert os.pread(held_a, 4, MiB) == b"bbbb", "a buffered descriptor on the writer's mount"
assert dread(w, MiB)[:4] == b"bbbb", "the direct descriptor itself"
assert dread(direct_b, MiB)[:4] == b"bbbb", "a direct descriptor on the other mount"
assert dread(direct_b, 20 * MiB)[:4] == b"cccc", "a direct read past the old end on the other mount"
assert os.fstat(direct_b).st_size == 21 * MiB, os.fstat(direct_b).st_size
fresh = os.open(b + "/d", os.O_RDONLY)
assert os.pread(fresh, 4, MiB) == b"bbbb" and os.pread(fresh, 4, 20 * MiB) == b"cccc", "a new open on the other mount"
# Unaligned direct I/O works too (FOPEN_DIRECT_IO passes it through).
assert os.pwrite(w, b"xyz", 5) == 3
assert os.pread(w, 8, 3) == b"aaxyzaaa"
# A buffered descriptor open on the other mount since before the write
# follows it within moments (the change event revalidates it).
import time
for i in range(100):
    if os.pread(fresh, 8, 3) == b"aaxyzaaa":
        break
    time.sleep(0.01)
assert os.pread(fresh, 8, 3) == b"aaxyzaaa", f"after 1 s: {os.pread(fresh, 8, 3)}"
for fd in (held_a, held_b, direct_b, w, fresh):
    os.close(fd)
PY
ok "O_DIRECT writes seen at once by buffered and direct descriptors on both mounts"

fio_job() {  # fio_job FILE ENGINE DIRECT EXTRA...
  local f=$1 engine=$2 direct=$3
  shift 3
  fio --name=j --filename="$f" --size=16m --bs=4k --rw=randwrite --ioengine="$engine" --iodepth=16 \
    --direct="$direct" --verify=crc32c --randrepeat=1 --output=/dev/null "$@"
}
for engine in libaio io_uring; do
  fio_job "$M/aio.$engine" "$engine" 1 --do_verify=0 || fail "fio $engine direct writes on the first mount"
  fio_job "$B/aio.$engine" psync 0 --verify_only || fail "$engine direct writes read back buffered on the other mount"
  fio_job "$B/aio.$engine" "$engine" 1 --verify_only || fail "$engine direct writes read back direct on the other mount"
  fio_job "$M/aio.$engine" psync 0 --verify_only || fail "$engine direct writes read back buffered on the writer's mount"
done
# The check can fail: a file without the pattern does not verify.
truncate -s 16m "$M/blank"
! fio_job "$B/blank" psync 0 --verify_only 2>/dev/null || fail "fio verified a file of zeros"
ok "libaio and io_uring direct writes (16 MiB, 4 KiB random, depth 16) verified through both mounts"
