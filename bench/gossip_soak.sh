#!/usr/bin/env bash
# False downs under load: NODES block daemons (default 10) and a mount, with
# sequential writes and reads on the mount and CPU hogs on every core for
# SECONDS (default 600). No daemon is killed, so every "down" is false: the
# gossip views of all members are polled every few seconds, and the metadata
# service's log of liveness changes is counted at the end.
# Usage: bench/gossip_soak.sh OUT [SECONDS] [NODES]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/ringfs-soak.txt}
secs=${2:-600}
nodes=${3:-10}
bin=$here/build/bin
dir=$(mktemp -d /tmp/ringfs-soak.XXXXXX)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  "$bin/ringfs" down --dir "$dir" >/dev/null 2>&1 || true
  rm -rf "$dir"
}
trap cleanup EXIT
"$bin/ringfs" up --dir "$dir" --nodes "$nodes" >/dev/null
mnt=$dir/mnt
end=$(( $(date +%s) + secs ))
# Full I/O load: a writer and a reader on the mount, and CPU hogs.
( while [ "$(date +%s)" -lt "$end" ]; do dd if=/dev/zero of="$mnt/w" bs=4M count=256 conv=fsync status=none; done ) & pids+=($!)
( while [ "$(date +%s)" -lt "$end" ]; do cat "$mnt/w" > /dev/null 2>&1 || true; done ) & pids+=($!)
for c in $(seq 1 "$(nproc)"); do ( while [ "$(date +%s)" -lt "$end" ]; do :; done ) & pids+=($!); done
addrs=("tcp://127.0.0.1:$(sed -n 's/^meta_port=//p' "$dir/cluster.conf")")
for i in $(seq 0 $((nodes - 1))); do addrs+=("tcp://127.0.0.1:$(sed -n "s/^node${i}_port=//p" "$dir/cluster.conf")"); done
polls=0 downs=0 suspects=0
while [ "$(date +%s)" -lt "$end" ]; do
  for a in "${addrs[@]}"; do
    v=$("$bin/ringfs" members --cluster "$a" --json 2>/dev/null || echo '{"members":[]}')
    d=$(python3 -c "import json,sys; m=json.loads(sys.argv[1])['members']; print(sum(x['status']=='down' for x in m), sum(x['status']=='suspect' for x in m))" "$v")
    downs=$((downs + ${d% *})); suspects=$((suspects + ${d#* }))
    polls=$((polls + 1))
  done
  sleep 2
done
meta_downs=$(grep -c " is down" "$dir/logs/meta.log" || true)
{
  echo "# bench/gossip_soak.sh: $nodes block daemons, $secs s of writes, reads and $(nproc) CPU hogs, $(date -u +%F)"
  echo "views_polled $polls"
  echo "down_entries_seen $downs"
  echo "suspect_entries_seen $suspects"
  echo "meta_logged_downs $meta_downs"
} | tee "$out"
