#!/usr/bin/env bash
# The metadata service killed with SIGKILL in the middle of a burst of
# creates: after restart, every create that was acknowledged is there.
source "$(dirname "$0")/lib.sh"
up
mkdir "$M/burst"
(
  for i in $(seq 1 3000); do
    if : > "$M/burst/f$i" 2>/dev/null; then echo "f$i"; fi
  done
) > "$T/acked" &
writer=$!
sleep 1.5
kill -9 "$(pid_of meta)"
sleep 0.5
up   # restarts just the metadata service, on the same address
wait $writer || true
n=$(wc -l < "$T/acked")
[ "$n" -gt 100 ] || fail "too few creates acknowledged ($n)"
missing=0
while read -r f; do [ -e "$M/burst/$f" ] || { echo "missing $f"; missing=$((missing + 1)); }; done < "$T/acked"
[ "$missing" -eq 0 ] || fail "$missing acknowledged creates lost"
mount_second "$T/m2"
listed=$(ls "$T/m2/burst" | wc -l)
[ "$listed" -ge "$n" ] || fail "second mount lists $listed < $n"
ok "$n acknowledged creates all survived kill -9 of meta"
