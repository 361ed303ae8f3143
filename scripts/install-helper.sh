#!/usr/bin/env bash
# Makes `mount -t fuse.ringfs` and fstab lines of type fuse.ringfs work:
# /sbin/mount.fuse.ringfs -> build/bin/mount.fuse.ringfs (which runs the
# build's ringfs-mount). Needs root; without it, says so and does nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
helper=$PWD/build/bin/mount.fuse.ringfs
[ -x "$helper" ] || { echo "install-helper: build first (no $helper)" >&2; exit 1; }
if [ "$(id -u)" != 0 ]; then
  echo "install-helper: not root: /sbin/mount.fuse.ringfs not installed" >&2
  exit 0
fi
ln -sfn "$helper" /sbin/mount.fuse.ringfs
