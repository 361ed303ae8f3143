#!/usr/bin/env bash
# Failure detection on a real cluster: NODES block daemons (default 10) and
# the metadata service, each with its gossip agent. A block daemon is killed
# with SIGKILL; every member logs when it declares or hears that a member is
# down, and those log times (not polling, which would load the machine and
# slow the very agents being measured) give the time until the first and
# the last member knew. Usage: bench/detect.sh OUT [NODES] [TRIALS]
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-/tmp/ringfs-detect.txt}
nodes=${2:-10}
trials=${3:-5}
bin=$here/build/bin
dir=$(mktemp -d /tmp/ringfs-detect.XXXXXX)
cleanup() { "$bin/ringfs" down --dir "$dir" >/dev/null 2>&1 || true; rm -rf "$dir"; }
trap cleanup EXIT
"$bin/ringfs" up --dir "$dir" --nodes "$nodes" --mount none >/dev/null
addr() { echo "tcp://127.0.0.1:$(sed -n "s/^$1_port=//p" "$dir/cluster.conf")"; }
id_of() { "$bin/ringfs" node list --dir "$dir" | awk -v a="$(addr "$1")" '$2 == a { print $1 }'; }
secs() { awk -F: '{ printf "%.3f\n", $1 * 3600 + $2 * 60 + $3 }' <<< "$1"; }
echo "# bench/detect.sh: $nodes block daemons + meta, SIGKILL of one, $(date -u +%F)" | tee "$out"
all=()
for t in $(seq 1 "$trials"); do
  v=node$(( (t * 3) % nodes ))
  id=$(id_of "$v")
  sleep 3
  t0=$(secs "$(date +%T.%N)")
  kill -9 "$(cat "$dir/run/$v.pid")"
  sleep 10
  times=()
  for log in "$dir"/logs/meta.log "$dir"/logs/node*.log; do
    [ "$log" = "$dir/logs/$v.log" ] && continue
    line=$(grep -E "gossip [0-9]+: (down $id \(|$id is down \(heard\))" "$log" | tail -1 || true)
    [ -z "$line" ] && { times+=(999); continue; }
    times+=("$(python3 -c "print(round($(secs "${line%% *}") - $t0, 3))")")
  done
  sorted=$(printf '%s\n' "${times[@]}" | sort -n)
  first=$(head -1 <<< "$sorted") last=$(tail -1 <<< "$sorted")
  all+=("$last")
  echo "trial $t: $v (id $id) down at the first member after $first s, at all ${#times[@]} after $last s" | tee -a "$out"
  "$bin/ringfs" up --dir "$dir" --mount none >/dev/null
done
echo "worst of $trials trials, all members: $(printf '%s\n' "${all[@]}" | sort -n | tail -1) s" | tee -a "$out"
