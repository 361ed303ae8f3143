# Shared setup for integration tests: a private cluster under a temp dir,
# torn down on exit however the test ends.
set -euo pipefail
BIN=${RINGFS_BIN:?set RINGFS_BIN to the build/bin directory}
T=$(mktemp -d /tmp/ringfs-it.XXXXXX)
D=$T/cluster
M=$T/mnt
EXTRA_MOUNTS=()
STOPPED=()  # pids a test sent SIGSTOP; continued before teardown

cleanup() {
  local rc=$?
  set +e
  [ ${#STOPPED[@]} -gt 0 ] && kill -CONT "${STOPPED[@]}" 2>/dev/null
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
  mkdir -p "$m"
  "$BIN/ringfs-mount" --meta="$(meta_endpoint)" "$m" >"$T/mount2.log" 2>&1
  EXTRA_MOUNTS+=("$m")
}

drop_caches() { sync; echo 3 > /proc/sys/vm/drop_caches 2>/dev/null || true; }
