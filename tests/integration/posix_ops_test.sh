#!/usr/bin/env bash
# Ordinary shell work on a mount: cp -r, mv, ln, ln -s, chmod, rm -rf,
# mkdir -p, and the errors POSIX promises.
source "$(dirname "$0")/lib.sh"
up

mkdir -p "$M/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p"
[ -d "$M/a/b/c/d/e/f/g/h/i/j/k/l/m/n/o/p" ] || fail "mkdir -p deep tree"
ok "mkdir -p"

cp -r /usr/include/linux "$M/linux"
diff -r /usr/include/linux "$M/linux" || fail "cp -r content differs"
ok "cp -r ($(find "$M/linux" -type f | wc -l) files)"

echo hello > "$M/f1"
mv "$M/f1" "$M/a/f2"
[ ! -e "$M/f1" ] && [ "$(cat "$M/a/f2")" = hello ] || fail "mv"
echo other > "$M/g"
mv "$M/g" "$M/a/f2"   # rename over an existing target
[ "$(cat "$M/a/f2")" = other ] || fail "rename over target"
ok "mv"

# A directory's attributes follow each change made in it at once (the client
# answers the kernel's re-check from the change's reply, not from a stale copy).
mkdir "$M/dattr"
before=$(stat -c '%h %Y' "$M/dattr")
sleep 1.1
mkdir "$M/dattr/sub"
[ "$(stat -c %h "$M/dattr")" = 3 ] || fail "directory nlink after mkdir in it"
[ "$(stat -c %Y "$M/dattr")" != "${before#* }" ] || fail "directory mtime after mkdir in it"
rmdir "$M/dattr/sub"
[ "$(stat -c %h "$M/dattr")" = 2 ] || fail "directory nlink after rmdir in it"
touch "$M/dattr/f" && rm "$M/dattr/f" && rmdir "$M/dattr" || fail "directory emptied and removed"
ok "directory attributes after changes"

ln "$M/a/f2" "$M/hard"
[ "$(stat -c %h "$M/hard")" = 2 ] || fail "hard link count"
[ "$(stat -c %i "$M/hard")" = "$(stat -c %i "$M/a/f2")" ] || fail "hard link inode"
ln -s a/f2 "$M/sym"
[ "$(readlink "$M/sym")" = a/f2 ] && [ "$(cat "$M/sym")" = other ] || fail "symlink"
ok "ln, ln -s"

chmod 640 "$M/hard"
[ "$(stat -c %a "$M/a/f2")" = 640 ] || fail "chmod"
chown 1234:5678 "$M/hard"
[ "$(stat -c %u:%g "$M/hard")" = 1234:5678 ] || fail "chown"
touch -d "2001-02-03 04:05:06" "$M/hard"
[ "$(stat -c %Y "$M/hard")" = "$(date -d '2001-02-03 04:05:06' +%s)" ] || fail "utimens"
ok "chmod, chown, touch -d"

# Errors come back as the right errno.
# expect_err MESSAGE CMD...: CMD must fail with MESSAGE on stderr.
expect_err() {
  local want=$1; shift
  if "$@" 2>"$T/err"; then fail "$* succeeded"; fi
  grep -q "$want" "$T/err" || fail "$*: wanted '$want', got: $(cat "$T/err")"
}
expect_err "File exists" mkdir "$M/a"
expect_err "not empty" rmdir "$M/a"
expect_err "No such file" cat "$M/nope"
expect_err "Not a directory" rmdir "$M/hard"
python3 - "$M" <<'PY' || fail "errno checks"
import errno, os, sys
m = sys.argv[1]
def expect(err, f, *a):
    try:
        f(*a)
    except OSError as e:
        assert e.errno == err, (f, a, e)
        return
    raise AssertionError(f"{f.__name__}{a} succeeded")
expect(errno.EISDIR, os.unlink, m + "/a")
expect(errno.ENOTDIR, os.listdir, m + "/hard")
expect(errno.ENOTEMPTY, os.rename, m + "/linux", m + "/a")
expect(errno.EINVAL, os.rename, m + "/a", m + "/a/b/sub")
expect(errno.ENAMETOOLONG, open, m + "/" + "x" * 300, "w")
# O_APPEND, truncate, xattrs, statfs
with open(m + "/app", "w") as f: f.write("one\n")
with open(m + "/app", "a") as f: f.write("two\n")
assert open(m + "/app").read() == "one\ntwo\n"
os.truncate(m + "/app", 2)
assert open(m + "/app").read() == "on"
os.truncate(m + "/app", 10)
assert open(m + "/app", "rb").read() == b"on" + b"\0" * 8
os.setxattr(m + "/app", "user.color", b"blue")
assert os.getxattr(m + "/app", "user.color") == b"blue"
assert "user.color" in os.listxattr(m + "/app")
os.removexattr(m + "/app", "user.color")
expect(errno.ENODATA, os.getxattr, m + "/app", "user.color")
st = os.statvfs(m)
assert st.f_blocks > 0 and st.f_namemax == 255
# unlinked but open
f = open(m + "/gone", "w+")
f.write("still here")
f.flush()
os.unlink(m + "/gone")
f.seek(0)
assert f.read() == "still here"
f.close()
assert not os.path.exists(m + "/gone")
PY
ok "errno, O_APPEND, truncate, xattr, statfs, unlinked-open"

# rm -rf of the whole tree
rm -rf "$M/linux" "$M/a"
[ ! -e "$M/linux" ] && [ ! -e "$M/a" ] || fail "rm -rf"
[ "$(ls "$M" | sort | tr '\n' ' ')" = "app hard sym " ] || fail "listing after rm: $(ls "$M")"
ok "rm -rf"
