#!/usr/bin/env bash
# POSIX ACLs enforced by the kernel and kept by the metadata service: an
# access ACL grants and denies users other than the owner (checked as
# those users, unprivileged, with exact errnos), chmod and the ACL mask
# stay in step, default ACLs are inherited by new files and directories
# (instead of the umask), and another mount sees every change.
source "$(dirname "$0")/lib.sh"
chmod 0755 "$T"  # mktemp's 0700 would stop the other users before the mount
up --allow-other
mount_second "$T/m2" -o allow_other
B=$T/m2
as() { local u=$1; shift; setpriv --reuid="$u" --regid="$u" --clear-groups -- "$@"; }
U1=4101 U2=4102

mkdir "$M/shared"
chmod 0755 "$M/shared"
echo secret > "$M/shared/f"
chmod 0600 "$M/shared/f"
# Without an ACL: other users are refused.
as $U1 cat "$M/shared/f" 2>/dev/null && fail "user $U1 read a 0600 file of root's"
# A named user entry lets exactly that user read, through either mount.
setfacl -m u:$U1:r "$M/shared/f"
[ "$(stat -c %a "$M/shared/f")" = 640 ] || fail "the ACL mask did not show in the mode: $(stat -c %a "$M/shared/f")"
for m in "$M" "$B"; do
  [ "$(as $U1 cat "$m/shared/f")" = secret ] || { ls -la "$m" "$m/shared" >&2; getfacl "$m/shared/f" >&2; fail "user $U1 with an ACL entry cannot read through $m"; }
  as $U2 cat "$m/shared/f" 2>/dev/null && fail "user $U2 without an entry read through $m"
done
out=$(as $U1 sh -c "echo x >> '$B/shared/f'" 2>&1) && fail "read-only ACL entry allowed a write"
case "$out" in *"Permission denied"*) ;; *) fail "write under a read ACL: $out" ;; esac
# chmod narrows the mask: the named entry loses its effect, then regains it.
chmod 0600 "$M/shared/f"
getfacl -p "$B/shared/f" 2>/dev/null | grep -q "^mask::---" || fail "chmod did not move the ACL mask: $(getfacl -p "$B/shared/f")"
sleep 1.1  # the other mount's cached ACL goes with the change event; be past its attribute time too
as $U1 cat "$B/shared/f" 2>/dev/null && fail "the ACL entry still worked with the mask at ---"
chmod 0640 "$M/shared/f"
sleep 1.1
[ "$(as $U1 cat "$B/shared/f")" = secret ] || fail "mask restored by chmod, entry still refused"
# Removing the ACL leaves the mode alone and ends the grant.
setfacl -b "$M/shared/f"
[ -z "$(getfattr -n system.posix_acl_access --only-values "$M/shared/f" 2>/dev/null)" ] || fail "setfacl -b left an ACL"
sleep 1.1
as $U1 cat "$B/shared/f" 2>/dev/null && fail "user $U1 read after the ACL was removed"
ok "access ACL: named user granted and others refused across mounts; chmod and the mask in step"

# Default ACLs: what is made in the directory inherits them, umask unused.
mkdir "$M/inherit"
setfacl -d -m u:$U1:rwx,g::r-x,o::--- "$M/inherit"
setfacl -m u:$U1:rwx "$M/inherit"
(umask 077; touch "$M/inherit/file"; mkdir "$M/inherit/sub")
[ "$(stat -c %a "$M/inherit/file")" = 660 ] || fail "inherited file mode $(stat -c %a "$M/inherit/file"), want 660 (umask 077 unused)"
[ "$(stat -c %a "$M/inherit/sub")" = 770 ] || fail "inherited directory mode $(stat -c %a "$M/inherit/sub")"
getfacl -p "$B/inherit/file" | grep -q "^user:$U1:rwx" || fail "the new file has no inherited entry"
getfacl -p "$B/inherit/sub" | grep -q "^default:user:$U1:rwx" || fail "the new directory did not inherit the default ACL"
# The inherited entry works for that user, who can also create there...
as $U1 sh -c "echo mine > '$B/inherit/sub/by-user'" || fail "user $U1 cannot create under an inherited ACL"
[ "$(stat -c %u "$M/inherit/sub/by-user")" = $U1 ] || fail "file made by $U1 owned by $(stat -c %u "$M/inherit/sub/by-user")"
# ...and nobody else can.
as $U2 sh -c "echo no > '$B/inherit/sub/x'" 2>/dev/null && fail "user $U2 created in a directory the ACL closes to it"
# A setgid directory with a default ACL: the group passes down as well.
mkdir "$M/sgid" && chgrp 4200 "$M/sgid" && chmod 2775 "$M/sgid"
setfacl -d -m g:4200:rwx "$M/sgid"
mkdir "$M/sgid/child"
[ "$(stat -c %g "$M/sgid/child")" = 4200 ] || fail "setgid group not inherited with a default ACL"
[ "$(stat -c %a "$M/sgid/child" | cut -c1)" = 2 ] || fail "setgid bit not inherited by a subdirectory"
ok "default ACLs inherited by files and directories (umask unused), by users, with setgid"
