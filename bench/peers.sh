#!/usr/bin/env bash
# Runs the shared workload set on ext4, local FUSE passthrough, MooseFS,
# GlusterFS and ringfs in one run, so ratios compare. Usage:
#   bench/peers.sh OUT [SIZE_MB]        (PEERS="ringfs passthrough" to narrow)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
shared=${SHARED:-$here/../shared}
out=${1:-/tmp/ringfs-peers.txt}
"$here/scripts/build.sh" >/dev/null
RINGFS_BIN=$here/build/bin "$shared/bench/peers-run" "$out" "${2:-1024}"
echo "results in $out"
