#!/usr/bin/env bash
# Close-to-open across mounts: once close() returns on one mount, open() on
# another sees the new data and size.
source "$(dirname "$0")/lib.sh"
up
mount_second "$T/m2"
python3 - "$M" "$T/m2" <<'PY' || fail "close-to-open"
import os, sys
a, b = sys.argv[1], sys.argv[2]
for round in range(5):
    data = os.urandom(1000 + round * 3000000)
    with open(a + "/shared", "wb") as f:
        f.write(data)
    with open(b + "/shared", "rb") as f:
        assert f.read() == data, f"round {round}: mount b sees stale data"
    assert os.stat(b + "/shared").st_size == len(data)
    small = os.urandom(500)
    with open(b + "/shared", "wb") as f:
        f.write(small)
    with open(a + "/shared", "rb") as f:
        assert f.read() == small, f"round {round}: mount a sees stale data"
os.mkdir(a + "/dir")
with open(a + "/dir/x", "w") as f: f.write("x")
assert os.listdir(b + "/dir") == ["x"]
PY
ok "close-to-open between two mounts"

# A file open on one mount and removed through another stays readable
# through the open descriptor (POSIX), and its blocks are reclaimed only
# after that last close.
head -c $((5 * 1024 * 1024)) /dev/urandom > "$T/held"
cp "$T/held" "$M/held"
ino=$(stat -c %i "$M/held")
blocks_of() { block_files_of "$ino"; }
[ "$(blocks_of)" -gt 0 ] || fail "no blocks on disk for the held file"
exec 7< "$M/held"
rm "$T/m2/held"
sleep 3  # the remover's kernel forgets the inode and asks to reclaim it
[ ! -e "$M/held" ] || fail "removed file still has a name"
drop_caches
cmp - "$T/held" <&7 || fail "an open descriptor lost the file another mount removed"
[ "$(blocks_of)" -gt 0 ] || fail "blocks deleted while the file was open elsewhere"
exec 7<&-
for _ in $(seq 1 40); do [ "$(blocks_of)" = 0 ] && break; sleep 0.25; done
[ "$(blocks_of)" = 0 ] || fail "blocks not reclaimed after the last close"
ok "a file removed on one mount stays readable where open, reclaimed at last close"

# Closes ride on the next open or create (MetaRequest::closes): a burst of
# small files sends almost no close of its own, and a file removed on the
# other mount while open here, then closed, is still reclaimed, whether its
# close rode on an open, a create or went alone.
setfattr -n ringfs.stats -v reset "$M"
# 5 ms apart: alone, the closes would go in 20 ms batches, about 40 of them.
python3 - "$M" <<'PY'
import os, sys, time
for i in range(100):
    with open(f"{sys.argv[1]}/burst{i}", "w") as f:
        f.write(str(i))
    time.sleep(0.005)
for i in range(100):
    with open(f"{sys.argv[1]}/burst{i}") as f:
        f.read()
    time.sleep(0.005)
PY
closes=$(getfattr --only-values -n ringfs.stats "$M" 2>/dev/null | awk '$1 == "rpc.Close" { print $2 }')
[ "${closes:-0}" -le 8 ] || fail "200 opens and creates 5 ms apart sent $closes closes of their own"
for how in create open alone; do
  head -c $((5 * 1024 * 1024)) /dev/urandom > "$M/held"
  ino=$(stat -c %i "$M/held")
  exec 7< "$M/held"
  rm "$T/m2/held"
  sleep 1.5
  [ "$(blocks_of)" -gt 0 ] || fail "$how: blocks deleted while the file was open elsewhere"
  exec 7<&-
  case $how in
    create) echo next > "$M/next.$how" ;;
    open) cat "$M/burst1" > /dev/null ;;
  esac
  for _ in $(seq 1 40); do [ "$(blocks_of)" = 0 ] && break; sleep 0.25; done
  [ "$(blocks_of)" = 0 ] || fail "$how: blocks not reclaimed after the last close"
done
ok "closes ride on opens and creates (${closes:-0} of their own for 200 files); reclaim at last close holds"
