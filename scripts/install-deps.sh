#!/usr/bin/env bash
# Installs the Debian packages ringfs needs to build, test and benchmark.
set -euo pipefail
pkgs=(build-essential cmake ninja-build ccache pkg-config
      libfuse3-dev fuse3 libzmq3-dev cppzmq-dev liblmdb-dev lmdb-utils libcereal-dev
      libgtest-dev libcli11-dev libxxhash-dev libisal-dev fio python3 attr
      git rsync acl)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing: ${missing[*]}"
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${missing[@]}" >/dev/null
fi
[ -e /dev/fuse ] || { echo "warning: /dev/fuse is missing; mounts will fail" >&2; }
