#!/usr/bin/env bash
# The whole test suite: unit tests, then integration tests that start real
# daemons on loopback and mount real FUSE. Usage: scripts/test.sh [ctest args]
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh
scripts/build.sh
# Integration tests share the machine's two cores: run them one at a time.
ctest --test-dir build --output-on-failure -L unit -j2 "$@"
ctest --test-dir build --output-on-failure -L integration "$@"
