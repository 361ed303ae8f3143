# Shared setup for integration tests: a private cluster under a temp dir,
# torn down on exit however the test ends.
set -euo pipefail
BIN=${RINGFS_BIN:?set RINGFS_BIN to the build/bin directory}
T=$(mktemp -d /tmp/ringfs-it.XXXXXX)
D=$T/cluster
M=$T/mnt
EXTRA_MOUNTS=()
OTHER_MOUNTS=()  # non-FUSE mounts on top of ours (overlayfs): unmounted first
STOPPED=()  # pids a test sent SIGSTOP; continued before teardown

cleanup() {
  local rc=$?
  set +e
  [ ${#STOPPED[@]} -gt 0 ] && kill -CONT "${STOPPED[@]}" 2>/dev/null
  for m in "${OTHER_MOUNTS[@]}"; do umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null; done
  for m in "${EXTRA_MOUNTS[@]}"; do fusermount3 -u "$m" 2>/dev/null || fusermount3 -uz "$m" 2>/dev/null; done
  "$BIN/ringfs" down --dir "$D" >/dev/null 2>&1
  fusermount3 -uz "$M" 2>/dev/null
  pkill -9 -f -- "$T/" 2>/dev/null
  # KEEP_LOGS=DIR keeps the daemons' logs of a failed run there.
  [ $rc -ne 0 ] && [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp -r "$D/logs" "$T"/*.log "$KEEP_LOGS"/ 2>/dev/null
  if [ $rc -ne 0 ] && [ -d "$D/logs" ]; then
    for f in "$D"/logs/*.log; do echo "--- $f"; tail -n 20 "$f"; done
  fi
  rm -rf "$T"
  exit $rc
}
trap cleanup EXIT INT TERM

fail() { echo "FAIL: $*" >&2; exit 1; }
ok() { echo "ok: $*"; }

up() { "$BIN/ringfs" up --nodes "${NODES:-3}" --dir "$D" --mount "$M" "$@" >/dev/null; }
meta_endpoint() { echo "tcp://127.0.0.1:$(sed -n 's/^meta_port=//p' "$D/cluster.conf")"; }
pid_of() { cat "$D/run/$1.pid"; }

# A second mount of the same cluster (its own client, cold caches).
mount_second() {
  local m=$1
  shift
  mkdir -p "$m"
  "$BIN/ringfs-mount" --meta="$(meta_endpoint)" "$@" "$m" >"$T/mount2.log" 2>&1
  EXTRA_MOUNTS+=("$m")
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }

port_of() { sed -n "s/^$1_port=//p" "$D/cluster.conf"; }
# node_state NODE: up or down, as the cluster map says.
node_state() {
  "$BIN/ringfs" node list --dir "$D" 2>/dev/null |
    awk -v a="tcp://127.0.0.1:$(port_of "$1")" '$2 == a { print $6 }'
}
# wait_node NODE up|down [TIMEOUT_S]: until the cluster map says so, plus a
# little for the mounts to re-read the map (every second).
wait_node() {
  local i
  for i in $(seq 1 $((${3:-20} * 4))); do
    [ "$(node_state "$1")" = "$2" ] && { sleep 1.5; return 0; }
    sleep 0.25
  done
  fail "$1 not seen $2 after ${3:-20} s"
}
# node_of_id ID: the nodeN name of a node id of the cluster map.
node_of_id() {
  local addr
  addr=$("$BIN/ringfs" node list --all --dir "$D" | awk -v id="$1" '$1 == id { print $2 }')
  sed -n "s/^\(node[0-9]*\)_port=${addr##*:}\$/\1/p" "$D/cluster.conf"
}

# How the CLI finds the cluster: the local one, or (netns tests) --meta EP.
CLUSTER=(--dir "$D")
# status_json FIELD: one field of `ringfs status --json`.
status_json() {
  "$BIN/ringfs" status "${CLUSTER[@]}" --json 2>/dev/null |
    python3 -c "import json, sys; print(json.load(sys.stdin)['$1'])"
}
# wait_healthy [TIMEOUT_S]: until a full check of every block that started
# after this call finds nothing under-replicated or misplaced, no movement
# and no node down.
wait_healthy() {
  local start i
  start=$(status_json checks)
  for i in $(seq 1 $((${1:-60} * 2))); do
    if [ "$(status_json checks)" -ge $((start + 2)) ] && [ "$(status_json healthy)" = True ]; then
      return 0
    fi
    sleep 0.5
  done
  "$BIN/ringfs" status "${CLUSTER[@]}" >&2
  fail "cluster not healthy after ${1:-60} s"
}
# check_files SRC_DIR MNT_DIR: every file byte for byte, and every block at
# its full count of current copies on distinct nodes, asked of the nodes.
check_files() {
  local f
  for f in "$1"/*; do
    cmp "$f" "$2/$(basename "$f")" || fail "content of $(basename "$f")"
    "$BIN/ringfs" locate --check "$2/$(basename "$f")" >"$T/locate.out" 2>&1 ||
      fail "copies of $(basename "$f"): $(cat "$T/locate.out")"
  done
}
# node_id_of NODE: the id the cluster map gives nodeN (not out).
node_id_of() {
  "$BIN/ringfs" node list --dir "$D" |
    awk -v a="tcp://127.0.0.1:$(port_of "$1")" '$2 == a { print $1 }'
}
# block_path NODE_DIR INO INDEX: a block's file on a block daemon (block 0
# flat in its shard directory, the others in the inode's).
block_path() {
  local s
  s="$1/blocks/$(printf %02x $(($2 & 255)))/$(printf %x "$2")"
  if [ "$3" = 0 ]; then echo "$s.0"; else echo "$s/$3"; fi
}
# block_data FILE: a block file's bytes of data (format 4: the whole file,
# its header in the user.ringfs xattr; format 3: after a 512-byte header).
block_data() {
  if getfattr -n user.ringfs "$1" >/dev/null 2>&1; then cat "$1"; else tail -c +513 "$1"; fi
}
# block_files_of INO: how many block files of inode INO the block daemons hold.
block_files_of() {
  local h
  h=$(printf %x "$1")
  find "$D"/node*/blocks \( -path "*/$h/*" -o -name "$h.0" \) -type f 2>/dev/null | wc -l
}
