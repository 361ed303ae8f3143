#!/usr/bin/env bash
# Install, build, start a local 3-node cluster and mount it at /tmp/ringfs/mnt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
exec build/bin/ringfs up --nodes 3 --dir /tmp/ringfs "$@"
