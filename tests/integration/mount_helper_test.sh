#!/usr/bin/env bash
# mount(8) and fstab: `mount -t fuse.ringfs ringfs:ADDR DIR -o OPTS` through
# /sbin/mount.fuse.ringfs (scripts/install-helper.sh), with what fstab and
# systemd pass ignored, dev,suid by default as a kernel filesystem mounts,
# nodev,nosuid when asked, and umount(8) to undo it.
source "$(dirname "$0")/lib.sh"
helper=/sbin/mount.fuse.ringfs
saved=""
restore_helper() {
  if [ -n "$saved" ]; then mv -f "$saved" "$helper"; else rm -f "$helper"; fi
}
trap 'rc=$?; set +e; restore_helper; (exit $rc); cleanup' EXIT INT TERM
if [ -e "$helper" ] || [ -L "$helper" ]; then
  saved=$T/helper.saved
  mv "$helper" "$saved"
fi
ln -s "$BIN/mount.fuse.ringfs" "$helper"
up
src="ringfs:$(meta_endpoint)"

m1=$T/m1
mkdir -p "$m1"
EXTRA_MOUNTS+=("$m1")
mount -t fuse.ringfs "$src" "$m1" -o defaults,rw,relatime,_netdev,nofail,x-systemd.automount,x-systemd.mount-timeout=30,comment=x,noatime ||
  fail "mount -t fuse.ringfs with fstab's and systemd's options"
read -r fstype opts < <(findmnt -n -o FSTYPE,OPTIONS "$m1")
[ "$fstype" = fuse.ringfs ] || fail "mounted as $fstype"
case ",$opts," in *,nosuid,*|*,nodev,*) fail "mounted $opts: a kernel filesystem would be dev,suid" ;; esac
case ",$opts," in *,noatime,*) ;; *) fail "noatime not applied: $opts" ;; esac
echo "through mount(8)" > "$m1/f"
[ "$(cat "$M/f")" = "through mount(8)" ] || fail "a file written through the mount(8) mount"
mknod "$m1/null" c 1 3
head -c 1 "$m1/null" >/dev/null || fail "a device node on a dev mount cannot be opened"
umount "$m1" || fail "umount"
mountpoint -q "$m1" && fail "still mounted after umount"
ok "mount -t fuse.ringfs ringfs:ADDR with fstab's options: dev,suid, noatime kept, umount works"

m2=$T/m2
mkdir -p "$m2"
EXTRA_MOUNTS+=("$m2")
echo "$src $m2 fuse.ringfs defaults,nosuid,nodev,_netdev 0 0" > "$T/fstab"
mount -T "$T/fstab" "$m2" || fail "mount of an fstab line"
opts=$(findmnt -n -o OPTIONS "$m2")
case ",$opts," in *,nosuid,*) ;; *) fail "nosuid not applied: $opts" ;; esac
case ",$opts," in *,nodev,*) ;; *) fail "nodev not applied: $opts" ;; esac
[ "$(cat "$m2/f")" = "through mount(8)" ] || fail "reading through the fstab mount"
head -c 1 "$m2/null" >/dev/null 2>&1 && fail "a device node opened on a nodev mount"
umount "$m2" || fail "umount of the fstab mount"
ok "an fstab line of type fuse.ringfs mounts, nodev,nosuid when asked"

m3=$T/m3
mkdir -p "$m3"
EXTRA_MOUNTS+=("$m3")
if out=$(mount -t fuse.ringfs ringfs: "$m3" 2>&1); then fail "a source naming no cluster mounted"; fi
case $out in *"names no cluster"*) ;; *) fail "unclear error for a bad source: $out" ;; esac
# The atime options are ringfs-mount's own (libfuse would refuse most).
out=$(mount -t fuse.ringfs "$src" "$m3" -o lazytime,strictatime,nodiratime,norelatime,diratime 2>&1) ||
  fail "mount with the atime options: $out"
umount "$m3"
ok "a bad source is a clear error; every atime option mounts"
