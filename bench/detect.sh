#!/usr/bin/env bash
# Failure detection on a real cluster: NODES block daemons (default 10) and
# the metadata service, each with its gossip agent. A block daemon is killed
# with SIGKILL; every other member's gossip view is polled until it shows the
# victim down. Prints, per trial, the time until the first and until the
# last member saw it. Usage: bench/detect.sh OUT [NODES] [TRIALS]
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
id_of() {  # the gossip id of nodeN
  "$bin/ringfs" node list --dir "$dir" | awk -v a="$(addr "$1")" '$2 == a { print $1 }'
}
# status_in MEMBER_ADDR ID: the victim's status in that member's view.
status_in() {
  "$bin/ringfs" members --cluster "$1" --json 2>/dev/null |
    python3 -c "import json,sys; print(next((m['status'] for m in json.load(sys.stdin)['members'] if m['id'] == $2), '?'))" 2>/dev/null || echo "?"
}
echo "# bench/detect.sh: $nodes block daemons + meta, SIGKILL of one, $(date -u +%F)" | tee "$out"
for t in $(seq 1 "$trials"); do
  v=node$(( (t * 3) % nodes ))
  id=$(id_of "$v")
  sleep 3
  kill -9 "$(cat "$dir/run/$v.pid")"
  t0=$(date +%s.%N)
  declare -A seen=()
  watchers=("$(addr meta)")
  for i in $(seq 0 $((nodes - 1))); do [ "node$i" != "$v" ] && watchers+=("$(addr "node$i")"); done
  first="" last=""
  while [ ${#seen[@]} -lt ${#watchers[@]} ]; do
    for w in "${watchers[@]}"; do
      [ -n "${seen[$w]:-}" ] && continue
      if [ "$(status_in "$w" "$id")" = down ]; then
        el=$(echo "$(date +%s.%N) - $t0" | bc)
        seen[$w]=$el
        [ -z "$first" ] && first=$el
        last=$el
      fi
    done
    if [ "$(echo "$(date +%s.%N) - $t0 > 30" | bc)" = 1 ]; then last=">30"; break; fi
  done
  echo "trial $t: $v (id $id) down at the first member after $first s, at all ${#watchers[@]} after $last s" | tee -a "$out"
  unset seen
  "$bin/ringfs" up --dir "$dir" --mount none >/dev/null
done
