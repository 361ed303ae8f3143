#!/usr/bin/env bash
# Data movement on a membership change, measured on a local cluster:
#  - bytes moved versus the ideal (the new owners' share of every copy), for
#    a node added to N and for one drained out again;
#  - foreground sequential write and read throughput during the movement
#    versus idle, at the mover's rate limit.
# Usage: bench/rebalance.sh OUT [DATA_MB] [NODES] [RATE_MB]
#   DATA_MB of files written first (default 2048), NODES to start (default
#   4), RATE_MB the --move-rate in MiB/s (default: the service's default).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/ringfs-rebalance.txt}
data_mb=${2:-2048}
nodes=${3:-4}
rate=${4:-}
bin=$here/build/bin
dir=$(mktemp -d /tmp/ringfs-rebal.XXXXXX)
cleanup() { "$bin/ringfs" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
meta_args=(--meta-arg=--idle-pass-ms=2000)
[ -n "$rate" ] && meta_args+=("--meta-arg=--move-rate=$((rate << 20))")  # 0: unlimited
"$bin/ringfs" up --dir "$dir" --nodes "$nodes" "${meta_args[@]}" >/dev/null
mnt=$dir/mnt
json() { "$bin/ringfs" status --dir "$dir" --json | python3 -c "import json,sys; print(json.load(sys.stdin)['$1'])"; }
wait_still() {  # until a full check after the change finds nothing to do
  local start; start=$(json checks)
  until [ "$(json checks)" -ge $((start + 2)) ] && [ "$(json moving)" = False ] &&
        [ "$(json misplaced)" = 0 ] && [ "$(json under_replicated)" = 0 ]; do sleep 0.5; done
}
mbps() { python3 -c "print(round($1 / $2, 1))"; }
# seq_write MB / seq_read: one file each, page cache dropped before reading.
seq_write() {
  local t0 t1; sync; t0=$(date +%s.%N)
  dd if=/dev/zero of="$mnt/fg" bs=4M count=$(($1 / 4)) conv=fsync status=none
  t1=$(date +%s.%N); mbps "$1" "$(echo "$t1 - $t0" | bc)"
}
seq_read() {
  local t0 t1 mb; mb=$(( $(stat -c %s "$mnt/fg") >> 20 )); sync; echo 3 > /proc/sys/vm/drop_caches
  t0=$(date +%s.%N); cat "$mnt/fg" > /dev/null; t1=$(date +%s.%N); mbps "$mb" "$(echo "$t1 - $t0" | bc)"
}
echo "writing $data_mb MiB" >&2
for i in $(seq 0 $((data_mb / 64 - 1))); do head -c $((64 << 20)) /dev/urandom > "$mnt/d$i"; done
sync
wait_still
sleep 10  # the fill's write-back settles, or idle reads as slow
fg_mb=512
idle_w=$(seq_write $fg_mb); idle_r=$(seq_read)
rm -f "$mnt/fg"

# Add one node: the plan, then what really moved.
before=$(json moved_bytes)
"$bin/ringfs" node add --dir "$dir" --json > "$dir/add.json"
planned=$(python3 -c "import json; print(sum(m['bytes_in'] for m in json.load(open('$dir/add.json'))['plan']))")
share=$(python3 -c "import json; p=json.load(open('$dir/add.json'))['plan']; print(max(p, key=lambda m: m['share_after'] - m['share_before'])['share_after'])")
sleep 0.5
busy_w=$(seq_write $fg_mb); busy_r=$(seq_read)
moving_at_end=$(json moving)
wait_still
moved=$(( $(json moved_bytes) - before ))
total=$(( data_mb << 20 ))
ideal=$(python3 -c "print(int($total * 3 * $share))")

# Drain it out again.
new_id=$("$bin/ringfs" node list --dir "$dir" --json | python3 -c "import json,sys; print(max(n['id'] for n in json.load(sys.stdin)['nodes']))")
before=$(json moved_bytes)
"$bin/ringfs" node remove "$new_id" --dir "$dir" --json > "$dir/rm.json"
rm_planned=$(python3 -c "import json; print(sum(m['bytes_in'] for m in json.load(open('$dir/rm.json'))['plan']))")
rm_ideal=$(python3 -c "import json; print(sum(m['bytes_out'] for m in json.load(open('$dir/rm.json'))['plan'] if m['id'] == $new_id))")
wait_still
rm_moved=$(( $(json moved_bytes) - before ))
{
  echo "# bench/rebalance.sh $data_mb MiB on $nodes nodes (+1), 3 copies, rate ${rate:-default} MiB/s, $(date -u +%F)"
  echo "add.moved_bytes $moved"
  echo "add.planned_bytes $planned"
  echo "add.ideal_bytes $ideal   # data x 3 copies x the new node's share ($share)"
  echo "add.moved_over_ideal $(python3 -c "print(round($moved / $ideal, 3))")"
  echo "remove.moved_bytes $rm_moved"
  echo "remove.planned_bytes $rm_planned"
  echo "remove.ideal_bytes $rm_ideal   # what the drained node held"
  echo "remove.moved_over_ideal $(python3 -c "print(round($rm_moved / max(1, $rm_ideal), 3))")"
  echo "fg.seq_write_idle_MBps $idle_w"
  echo "fg.seq_write_during_move_MBps $busy_w"
  echo "fg.seq_read_idle_MBps $idle_r"
  echo "fg.seq_read_during_move_MBps $busy_r"
  echo "fg.write_ratio $(python3 -c "print(round($busy_w / $idle_w, 3))")"
  echo "fg.read_ratio $(python3 -c "print(round($busy_r / $idle_r, 3))")"
  echo "fg.movement_still_running_after_fg $moving_at_end"
} | tee "$out"
