#!/usr/bin/env bash
# File handles for NFS re-export: name_to_handle_at() gives a handle that
# open_by_handle_at() opens again after the kernel forgot the inode (caches
# dropped), through the same mount or another one of the cluster, for files
# and directories; a removed file's handle is stale (ESTALE).
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
mkdir -p "$M/d/e"
echo hello > "$M/d/e/f"
python3 - "$M" "$T/m2" <<'PY' || fail "file handles"
import ctypes, errno, os, sys
a, b = sys.argv[1:]
libc = ctypes.CDLL(None, use_errno=True)
class FileHandle(ctypes.Structure):
    _fields_ = [("handle_bytes", ctypes.c_uint), ("handle_type", ctypes.c_int), ("f_handle", ctypes.c_ubyte * 128)]
AT_FDCWD = -100
def handle(path):
    h = FileHandle()
    h.handle_bytes = 128
    mount_id = ctypes.c_int()
    if libc.name_to_handle_at(AT_FDCWD, path.encode(), ctypes.byref(h), ctypes.byref(mount_id), 0) != 0:
        raise OSError(ctypes.get_errno(), "name_to_handle_at " + path)
    return h
def open_handle(mount, h, flags=os.O_RDONLY):
    mfd = os.open(mount, os.O_RDONLY | os.O_DIRECTORY)
    fd = libc.open_by_handle_at(mfd, ctypes.byref(h), flags)
    err = ctypes.get_errno()
    os.close(mfd)
    if fd < 0:
        raise OSError(err, "open_by_handle_at")
    return fd
def forget():
    with open("/proc/sys/vm/drop_caches", "w") as f:
        f.write("2")  # dentries and inodes: the kernel must ask by handle
hf, hd = handle(a + "/d/e/f"), handle(a + "/d/e")
forget()
fd = open_handle(a, hf)
assert os.read(fd, 100) == b"hello\n", "a file reopened by handle reads wrong"
os.close(fd)
fd = open_handle(a, hd)
assert sorted(os.listdir(fd)) == ["f"], "a directory reopened by handle lists wrong"
os.close(fd)
# The same handle through another mount of the cluster (an NFS server
# restarted on another machine) names the same file.
fd = open_handle(b, hf)
assert os.read(fd, 100) == b"hello\n", "handle through the other mount"
os.close(fd)
# Written through one, read through the handle on the other.
with open(a + "/d/e/f", "w") as f:
    f.write("changed\n")
forget()
fd = open_handle(b, hf)
assert os.read(fd, 100) == b"changed\n"
os.close(fd)
# A removed file's handle is stale, never another file.
os.unlink(a + "/d/e/f")
forget()
try:
    open_handle(b, hf)
    raise AssertionError("a removed file's handle opened")
except OSError as e:
    assert e.errno == errno.ESTALE, f"removed file's handle: errno {e.errno}"
PY
ok "name_to_handle_at/open_by_handle_at survive dropped caches and work across mounts; removed: ESTALE"
