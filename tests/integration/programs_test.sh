#!/usr/bin/env bash
# Real programs on a mount: git (clone onto it, commit, branch switches,
# gc, fsck, clone back), make (a C project built and run from the mount,
# rebuilt only as timestamps say), rsync -aHX and tar --xattrs of a tree of
# symlinks, modes, mtimes, owners, hard links, a fifo and xattrs, onto the
# mount and back; every step also seen through a second, cold mount.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
B=$T/m2
L=$T/local
mkdir -p "$L"

# The same view of a tree on any filesystem: type, mode, size (not of
# directories: ringfs says 0, ext4 4096), links, owner, mtime in ns, target.
listing() {
  (cd "$1" && find . -printf '%p %y %m %s %n %U:%G %T@ %l\n' | sort |
    sed -E 's/^([^ ]+ d [0-7]+) [0-9]+ /\1 - /')
}
# xattrs of every entry, symlinks not followed, in path order.
xattrs() {
  (cd "$1" && find . | sort | while read -r f; do
    echo "$f"; getfattr -h -d -m - "$f" 2>/dev/null | grep -v '^#' | sort
  done)
}

# ---------------------------------------------------------------- git
export GIT_CONFIG_GLOBAL=/dev/null GIT_CONFIG_NOSYSTEM=1
export GIT_AUTHOR_NAME=t GIT_AUTHOR_EMAIL=t@t GIT_COMMITTER_NAME=t GIT_COMMITTER_EMAIL=t@t
git init -q -b main "$L/src"
python3 - "$L/src" <<'PY'
import os, sys
root = sys.argv[1]
for d in range(8):
    os.makedirs(f"{root}/d{d}/sub", exist_ok=True)
    for i in range(250):
        p = f"{root}/d{d}/sub/f{i}.txt" if i % 2 else f"{root}/d{d}/f{i}.txt"
        with open(p, "w") as f:
            f.write(f"file {d}/{i}\n" * (1 + i % 7))
with open(f"{root}/run.sh", "w") as f:
    f.write("#!/bin/sh\necho run\n")
os.chmod(f"{root}/run.sh", 0o755)
os.symlink("d0/f0.txt", f"{root}/link")
PY
git -C "$L/src" add -A
git -C "$L/src" commit -qm init
n=$(git -C "$L/src" ls-files | wc -l)
[ "$n" -ge 2000 ] || fail "git: want 2000 files, have $n"
start=$SECONDS
git clone -q "$L/src" "$M/repo" || fail "git clone onto the mount"
clone_s=$((SECONDS - start))
R=$M/repo
[ -z "$(git -C "$R" status --porcelain)" ] || fail "git status not clean after the clone: $(git -C "$R" status --porcelain | head)"
echo change >> "$R/d0/f0.txt"
echo new > "$R/d1/new.txt"
rm "$R/d2/f0.txt"
git -C "$R" mv d3 d3moved
chmod 0644 "$R/run.sh"
git -C "$R" add -A
git -C "$R" commit -qm change || fail "git commit on the mount"
[ "$(git -C "$R" log --oneline | wc -l)" = 2 ] || fail "git log: $(git -C "$R" log --oneline)"
[ "$(git -C "$R" log -1 --format=%s)" = change ] || fail "git log: last commit is not ours"
[ "$(git -C "$R" diff --no-renames --name-only HEAD~1 | wc -l)" = 504 ] || fail "git diff HEAD~1: $(git -C "$R" diff --stat HEAD~1 | tail -1)"
# Switching branches rewrites, removes and recreates hundreds of files.
git -C "$R" checkout -q -b old HEAD~1 || fail "git checkout HEAD~1"
[ -d "$R/d3" ] && [ ! -e "$R/d3moved" ] && [ -x "$R/run.sh" ] || fail "checkout of the first commit: tree wrong"
git -C "$R" checkout -q main || fail "git checkout main"
[ -z "$(git -C "$R" status --porcelain)" ] || fail "git status not clean after checkouts: $(git -C "$R" status --porcelain | head)"
git -C "$R" gc -q || fail "git gc on the mount"
git -C "$R" fsck --strict --no-progress 2>"$T/fsck.out" || fail "git fsck on the mount: $(head "$T/fsck.out")"
# A cold mount sees the same repository: clean, same head, whole.
[ -z "$(git -C "$B/repo" status --porcelain)" ] || fail "git status on the second mount: $(git -C "$B/repo" status --porcelain | head)"
[ "$(git -C "$B/repo" rev-parse HEAD)" = "$(git -C "$R" rev-parse HEAD)" ] || fail "second mount: another HEAD"
git -C "$B/repo" fsck --strict --no-progress 2>"$T/fsck.out" || fail "git fsck on the second mount: $(head "$T/fsck.out")"
git clone -q "$B/repo" "$L/back" || fail "git clone from the mount"
diff -r --no-dereference -x .git "$R" "$L/back" || fail "clone from the mount differs from the work tree on it"
diff <(listing "$R" | grep -v '^\./\.git' | cut -d' ' -f1-5,8) \
     <(listing "$L/back" | grep -v '^\./\.git' | cut -d' ' -f1-5,8) || fail "modes/types differ after git clone back"
ok "git: clone of $n files onto the mount (${clone_s}s), commit, checkouts, gc, fsck on two mounts, clone back"

# ---------------------------------------------------------------- make
P=$M/cproj
mkdir "$P"
cat > "$P/lib.h" <<'EOF'
int twice(int);
int plus(int, int);
extern const char *greeting;
EOF
echo 'int twice(int x) { return 2 * x; }' > "$P/twice.c"
echo 'int plus(int x, int y) { return x + y; }' > "$P/plus.c"
echo 'const char *greeting = "hello";' > "$P/greet.c"
cat > "$P/main.c" <<'EOF'
#include <stdio.h>
#include "lib.h"
int main(int argc, char **argv) {
  printf("%s %d %d\n", greeting, twice(21), plus(argc, 40));
  return 0;
}
EOF
printf '%s\n' 'OBJS = main.o twice.o plus.o greet.o' \
  'prog: $(OBJS)' '	$(CC) -o $@ $(OBJS)' \
  '%.o: %.c lib.h' '	$(CC) -O1 -c -o $@ $<' \
  'clean:' '	rm -f prog $(OBJS)' > "$P/Makefile"
make -C "$P" -s || fail "make on the mount"
[ "$("$P/prog")" = "hello 42 41" ] || fail "the built program says '$("$P/prog")'"
[ "$("$B/cproj/prog" a)" = "hello 42 42" ] || fail "run from the second mount: '$("$B/cproj/prog" a)'"
out=$(make -C "$P" --no-print-directory) || fail "second make"
[ "$out" = "make: 'prog' is up to date." ] || fail "second make did something: $out"
make -C "$B/cproj" -q || fail "the second mount's make thinks prog is out of date"
sleep 0.05  # a new mtime, coarser clocks than ns notwithstanding
touch "$P/plus.c"
out=$(make -C "$P" --no-print-directory) || fail "make after touching plus.c"
[ "$(echo "$out" | grep -c -- '-c -o')" = 1 ] && echo "$out" | grep -q 'plus.o plus.c' ||
  fail "touching plus.c rebuilt: $out"
sed -i 's/hello/howdy/' "$P/greet.c"  # rewrite in place, same size
out=$(make -C "$B/cproj" --no-print-directory) || fail "make on the second mount after an edit"
echo "$out" | grep -q 'greet.o greet.c' && [ "$(echo "$out" | grep -c -- '-c -o')" = 1 ] ||
  fail "an edit of greet.c seen from the second mount rebuilt: $out"
[ "$("$P/prog")" = "howdy 42 41" ] || fail "the program rebuilt on the second mount says '$("$P/prog")'"
touch "$P/lib.h"
[ "$(make -C "$P" --no-print-directory | grep -c -- '-c -o')" = 4 ] || fail "touching lib.h did not rebuild all 4 objects"
make -C "$P" -q || fail "out of date right after a make"
ok "make: build, run from both mounts, up to date, touch rebuilds only what depends on it"

# ------------------------------------------------ a tree of varied files
S=$L/tree
mkdir -p "$S/a/b/c" "$S/empty_dir" "$S/priv" "$S/sticky"
echo hello > "$S/a/hello.txt"
: > "$S/empty"
head -c $((3 * 1024 * 1024)) /dev/urandom > "$S/big.bin"
head -c 5000 /dev/urandom > "$S/a/b/mid.bin"
head -c 4097 /dev/zero | tr '\0' x > "$S/a/b/c/page_plus_one"
ln -s hello.txt "$S/a/link_rel"
ln -s /etc/hostname "$S/abs_link"
ln -s nowhere "$S/dangling"
ln -s a/b "$S/dirlink"
ln -s "$(head -c 1000 /dev/zero | tr '\0' y)" "$S/long_link"
ln "$S/a/hello.txt" "$S/hard1"
ln "$S/a/hello.txt" "$S/a/b/hard2"
ln "$S/big.bin" "$S/a/big_hard"
echo s > "$S/setuid"; chmod 4755 "$S/setuid"
echo g > "$S/setgid"; chmod 2750 "$S/setgid"
echo x > "$S/exe"; chmod 0755 "$S/exe"
echo r > "$S/ro"; chmod 0444 "$S/ro"
echo n > "$S/none"; chmod 0000 "$S/none"
echo p > "$S/priv/p"; chmod 0600 "$S/priv/p"
chmod 0700 "$S/priv"
chmod 1777 "$S/sticky"
echo "with space" > "$S/a/name with spaces"
echo "utf8" > "$S/a/ünï©ødé"
mkfifo "$S/fifo"
chown 1234:5678 "$S/exe"
chown -h 4321:8765 "$S/dangling"
setfattr -n user.color -v blue "$S/a/hello.txt"
setfattr -n user.bin -v 0x00ff00 "$S/big.bin"
setfattr -n user.dir -v d "$S/a/b"
setfattr -n user.empty "$S/empty"
# Distinct mtimes in the past with nanoseconds, deepest first so a
# directory's own comes last.
i=0
while read -r f; do
  i=$((i + 1))
  touch -h -d "@$((1000000000 + i * 86400)).$(printf %09d $((i * 123456789 % 1000000000)))" "$f"
done < <(find "$S" -depth)
touch -d '1999-12-31 23:59:59.5' "$S/big.bin"

# The view from a local copy by the same program is the reference: a local
# rsync keeps all of it (checked, so a difference is ringfs's).
rsync -aHX "$S/" "$L/ref/" || fail "local rsync"
diff <(listing "$S") <(listing "$L/ref") >/dev/null || fail "local rsync does not keep the tree (test bug)"

# ---------------------------------------------------------------- rsync
start=$SECONDS
rsync -aHX "$S/" "$M/rs/" 2>"$T/rsync.err" || fail "rsync onto the mount: $(head "$T/rsync.err")"
diff -r --no-dereference -x fifo "$S" "$M/rs" || fail "rsync: contents differ on the mount"
diff <(listing "$S") <(listing "$M/rs") || fail "rsync: types/modes/sizes/links/owners/mtimes/targets differ on the mount"
diff <(xattrs "$S") <(xattrs "$M/rs") || fail "rsync: xattrs differ on the mount"
[ "$(stat -c %i "$M/rs/hard1")" = "$(stat -c %i "$M/rs/a/b/hard2")" ] || fail "rsync -H: hard links not one inode"
drop_caches
diff <(listing "$S") <(listing "$B/rs") || fail "rsync: the second mount sees another tree"
diff <(xattrs "$S") <(xattrs "$B/rs") || fail "rsync: the second mount sees other xattrs"
again=$(rsync -aHX -i "$S/" "$M/rs/") || fail "second rsync"
[ -z "$again" ] || fail "a second rsync found changes: $again"
rsync -aHX "$B/rs/" "$L/rsback/" 2>"$T/rsync.err" || fail "rsync back from the mount: $(head "$T/rsync.err")"
diff -r --no-dereference -x fifo "$S" "$L/rsback" || fail "rsync back: contents differ"
diff <(listing "$S") <(listing "$L/rsback") || fail "rsync back: metadata differs"
diff <(xattrs "$S") <(xattrs "$L/rsback") || fail "rsync back: xattrs differ"
ok "rsync -aHX onto the mount, seen from a second mount, no-op again, and back ($((SECONDS - start))s)"

# ---------------------------------------------------------------- tar
start=$SECONDS
TAR=(tar --xattrs --xattrs-include='user.*' --numeric-owner)
"${TAR[@]}" -C "$S" -cf "$T/tree.tar" . || fail "tar of the local tree"
mkdir "$M/tar"
"${TAR[@]}" -C "$M/tar" -xpf "$T/tree.tar" || fail "untar onto the mount"
(cd "$M/tar" && "${TAR[@]}" -df "$T/tree.tar") || fail "tar -d on the mount"
diff <(listing "$S") <(listing "$M/tar") || fail "tar: metadata differs on the mount"
diff <(xattrs "$S") <(xattrs "$M/tar") || fail "tar: xattrs differ on the mount"
"${TAR[@]}" -C "$B/tar" -cf "$T/back.tar" . || fail "tar from the second mount"
mkdir "$L/tarback"
"${TAR[@]}" -C "$L/tarback" -xpf "$T/back.tar" || fail "untar from the mount's tar"
diff -r --no-dereference -x fifo "$S" "$L/tarback" || fail "tar back: contents differ"
diff <(listing "$S") <(listing "$L/tarback") || fail "tar back: metadata differs"
diff <(xattrs "$S") <(xattrs "$L/tarback") || fail "tar back: xattrs differ"
ok "tar --xattrs onto the mount, tar -d, and back from a second mount ($((SECONDS - start))s)"
