#!/usr/bin/env bash
# Every block of a written file is on exactly 3 distinct nodes, checked on
# the block daemons' disks (4 nodes, so placement is a real choice).
source "$(dirname "$0")/lib.sh"
NODES=4 up
head -c $((37 * 1024 * 1024 + 777)) /dev/urandom > "$T/big"
cp "$T/big" "$M/big"
echo small > "$M/small"
for f in big small; do
  ino=$(stat -c %i "$M/$f")
  size=$(stat -c %s "$M/$f")
  nblocks=$(( (size + 4194303) / 4194304 ))
  for ((i = 0; i < nblocks; i++)); do
    holders=$(for n in "$D"/node*; do if [ -f "$(block_path "$n" "$ino" "$i")" ]; then echo "${n##*/}"; fi; done | sort -u)
    count=$(echo "$holders" | grep -c node || true)
    [ "$count" -eq 3 ] || fail "$f block $i is on $count nodes: $holders"
  done
  # ringfs locate reports the same nodes as holding each block.
  "$BIN/ringfs" locate "$M/$f" > "$T/locate.$f" || fail "locate $f"
  [ "$(grep -c '^block ' "$T/locate.$f")" -eq "$nblocks" ] || fail "locate block count"
  ! grep -q '(hole)' "$T/locate.$f" || fail "locate shows a hole"
  ok "$f: $nblocks block(s), each on exactly 3 of 4 nodes"
done
cmp "$T/big" "$M/big" || fail "content"
"$BIN/ringfs" status --dir "$D" | tee "$T/status"
[ "$(grep -c ' up ' "$T/status")" -eq 4 ] || fail "status shows 4 nodes up"
# Bad arguments and unreachable services: a clear message, non-zero exit.
! "$BIN/ringfs" up --nodes 0 --dir "$T/x" 2>/dev/null || fail "up --nodes 0 must fail"
! "$BIN/ringfs" status --meta tcp://127.0.0.1:1 2>"$T/err" || fail "status on a dead meta must fail"
grep -q unreachable "$T/err" || fail "status error message: $(cat "$T/err")"
! "$BIN/ringfs" locate /etc/passwd 2>/dev/null || fail "locate outside a mount must fail"
ok "status, locate, CLI errors"
