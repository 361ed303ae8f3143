#!/usr/bin/env bash
# bench/ab.sh OLD_BIN NEW_BIN OUT [ROUNDS] [SIZE_MB]: the data-path rows of
# ../shared/bench/fsbench (FSBENCH_ROWS, default "seq rand") on two ringfs
# builds, alternated round by round in one run (old, new, old, new, ...) so
# that the machine's noise falls on both alike. Prints the median per build
# and metric, and new/old. Compare ratios, never absolute numbers.
set -euo pipefail
old=$1; new=$2; out=$3; rounds=${4:-2}; size=${5:-1024}
shared=${SHARED:-$(cd "$(dirname "$0")/.." && pwd)/../shared}
export FSBENCH_ROWS=${FSBENCH_ROWS:-seq rand}
: > "$out"
run() {  # run LABEL BIN
  local d=/tmp/ringfs-ab
  rm -rf "$d"; mkdir -p "$d/m"
  "$2/ringfs" up --nodes 3 --dir "$d/c" --mount "$d/m" >/dev/null
  "$shared/bench/fsbench" "$d/m" "$1" "$size" | tee -a "$out" || true
  "$2/ringfs" down --dir "$d/c" >/dev/null 2>&1 || true
  rm -rf "$d"
}
trap '"$new/ringfs" down --dir /tmp/ringfs-ab/c >/dev/null 2>&1; fusermount3 -uz /tmp/ringfs-ab/m 2>/dev/null; rm -rf /tmp/ringfs-ab' EXIT
for _ in $(seq 1 "$rounds"); do
  run old "$old"
  run new "$new"
done
python3 - "$out" <<'PY'
import sys, statistics, collections
v = collections.defaultdict(list)
for line in open(sys.argv[1]):
    p = line.split()
    if len(p) >= 3:
        try: v[(p[0], p[1])].append(float(p[2]))
        except ValueError: pass
for m in sorted({k[1] for k in v}):
    o, n = v.get(("old", m)), v.get(("new", m))
    if o and n:
        mo, mn = statistics.median(o), statistics.median(n)
        print(f"{m:24s} old {mo:10.1f}  new {mn:10.1f}  new/old {mn / mo:5.3f}")
PY
