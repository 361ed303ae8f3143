#!/usr/bin/env bash
# A tar of a few thousand files extracted, re-read through a second (cold)
# mount and compared byte for byte.
source "$(dirname "$0")/lib.sh"
up
tar -C /usr -cf "$T/src.tar" include
n=$(tar -tf "$T/src.tar" | grep -vc '/$')
[ "$n" -ge 2000 ] || fail "need a few thousand files, have $n"
tar -C "$M" -xf "$T/src.tar" || fail "untar"
(cd "$M" && tar -df "$T/src.tar") || fail "tar -d on the writing mount"
mount_second "$T/m2"
drop_caches
(cd "$T/m2" && tar -df "$T/src.tar") || fail "tar -d on a second mount"
ok "untar of $n files, byte-for-byte on two mounts"
