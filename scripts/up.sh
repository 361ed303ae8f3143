#!/usr/bin/env bash
# Install, build, install the mount(8) helper, start a local 3-node cluster
# and mount it at /tmp/ringfs/mnt.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
scripts/install-helper.sh
exec build/bin/ringfs up --nodes 3 --dir /tmp/ringfs "$@"
