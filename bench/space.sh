#!/usr/bin/env bash
# Disk space the block daemons take for what they store: a local cluster of 3
# block daemons (3 copies), 256 MiB of random data in one file and an untar
# of /usr/include (thousands of mostly small files), synced; then the bytes
# of the files (logical) beside the block daemons' data dirs on disk (du -sb:
# apparent, du -s: allocated), and allocated / logical. 3.0 is the floor for
# 3 copies; every byte over it is block headers, filesystem blocks' unused
# tails and the block store's directories, which the last lines split out.
# Usage: bench/space.sh OUT
#   RINGFS_BIN: the binaries (default build/bin); SPACE_RANDOM_MB (256).
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
out=${1:?usage: bench/space.sh OUT}
bin=${RINGFS_BIN:-$here/build/bin}
random_mb=${SPACE_RANDOM_MB:-256}
tarball=/tmp/usr-include.tar
[ -x "$bin/ringfs" ] || { echo "no $bin/ringfs (set RINGFS_BIN)" >&2; exit 1; }
[ -f "$tarball" ] || tar -C /usr -cf "$tarball" include

dir=$(mktemp -d /tmp/ringfs-space.XXXXXX)
mnt=$dir/mnt
cleanup() {
  local rc=$?
  set +e
  "$bin/ringfs" down --dir "$dir" >/dev/null 2>&1
  if mountpoint -q "$mnt" 2>/dev/null; then
    fusermount3 -u "$mnt" 2>/dev/null || umount -l "$mnt" 2>/dev/null
  fi
  if [ $rc -ne 0 ] && [ -d "$dir/logs" ]; then
    for f in "$dir"/logs/*.log; do echo "--- $f" >&2; tail -n 20 "$f" >&2; done
  fi
  rm -rf "$dir"
  exit $rc
}
trap cleanup EXIT INT TERM

"$bin/ringfs" up --nodes 3 --dir "$dir" --mount "$mnt" >/dev/null
echo "writing $random_mb MiB of random data and untarring $tarball" >&2
head -c $((random_mb << 20)) /dev/urandom > "$mnt/random"
tar -C "$mnt" -xf "$tarball"
# close() already waited for every replica (flush); this puts the block
# daemons' page cache on disk, so allocation is final.
sync

# Regular files only, each inode once (hard links).
logical=$(find "$mnt" -type f -printf '%i %s\n' | sort -u -k1,1 | awk '{ s += $2 } END { print s + 0 }')
files=$(find "$mnt" -type f -printf '%i\n' | sort -u | wc -l)
nodes=("$dir"/node*)
apparent=$(du -sbc "${nodes[@]}" | awk 'END { print $1 }')
allocated=$(du -sc --block-size=1 "${nodes[@]}" | awk 'END { print $1 }')
# Split of the allocated bytes: block files, and the directories of the
# block store (blocks/<shard>/<ino>/: one per inode with blocks).
block_files=$(find "${nodes[@]}" -path '*/blocks/*' -type f | wc -l)
block_alloc=$(find "${nodes[@]}" -path '*/blocks/*' -type f -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }')
dir_alloc=$(find "${nodes[@]}" -path '*/blocks*' -type d -printf '%b\n' | awk '{ s += $1 * 512 } END { print s + 0 }')
ratio() { python3 -c "print(f'{$1 / $2:.3f}')"; }

{
  echo "space logical_bytes $logical"
  echo "space files $files"
  echo "space blockd_du_sb_bytes $apparent"
  echo "space blockd_du_s_allocated_bytes $allocated"
  echo "space ratio_allocated_over_logical $(ratio "$allocated" "$logical")"
  echo "space ratio_apparent_over_logical $(ratio "$apparent" "$logical")"
  echo "space block_files $block_files"
  echo "space block_files_allocated_bytes $block_alloc"
  echo "space block_store_dirs_allocated_bytes $dir_alloc"
  echo "space ratio_block_files_over_logical $(ratio "$block_alloc" "$logical")"
} | tee "$out"
