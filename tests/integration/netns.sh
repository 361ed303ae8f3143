# Multi-host setups inside one test: each daemon in its own network
# namespace with its own address, joined by veth pairs to a bridge (which
# has the .1 address, so the CLI in the root namespace can reach them).
# Source after lib.sh. Everything made here is removed on exit.
NETNS_ID=$(( $$ % 200 + 20 ))
NETNS_PREFIX="rfs$NETNS_ID"
NETNS_BRIDGE="${NETNS_PREFIX}br"
NETNS_SUBNET="10.$NETNS_ID.0"
NETNS_NAMES=()

netns_cleanup() {
  set +e
  # Processes first (their mounts and sockets), then the namespaces.
  for m in "${EXTRA_MOUNTS[@]}"; do fusermount3 -uz "$m" 2>/dev/null; done
  fusermount3 -uz "$M" 2>/dev/null
  pkill -9 -f -- "$T/" 2>/dev/null
  sleep 0.2
  local i
  for i in "${!NETNS_NAMES[@]}"; do
    ip link del "${NETNS_PREFIX}h$i" 2>/dev/null  # both ends of the pair
    ip netns del "$NETNS_PREFIX-${NETNS_NAMES[$i]}" 2>/dev/null
  done
  ip link del "$NETNS_BRIDGE" 2>/dev/null
}
trap 'rc=$?; set +e; netns_cleanup; (exit $rc); cleanup' EXIT INT TERM

netns_bridge() {
  ip link del "$NETNS_BRIDGE" 2>/dev/null || true
  ip link add "$NETNS_BRIDGE" type bridge
  ip addr add "$NETNS_SUBNET.1/24" dev "$NETNS_BRIDGE"
  ip link set "$NETNS_BRIDGE" up
}

# netns_host NAME HOSTNUM: a namespace with address SUBNET.HOSTNUM.
netns_host() {
  local ns="$NETNS_PREFIX-$1" i=${#NETNS_NAMES[@]}
  NETNS_NAMES+=("$1")
  ip netns add "$ns"
  ip link add "${NETNS_PREFIX}h$i" type veth peer name "${NETNS_PREFIX}p$i"
  ip link set "${NETNS_PREFIX}p$i" netns "$ns"
  ip link set "${NETNS_PREFIX}h$i" master "$NETNS_BRIDGE" up
  ip netns exec "$ns" ip addr add "$NETNS_SUBNET.$2/24" dev "${NETNS_PREFIX}p$i"
  ip netns exec "$ns" ip link set "${NETNS_PREFIX}p$i" up
  ip netns exec "$ns" ip link set lo up
  eval "NETNS_LINK_$1=${NETNS_PREFIX}h$i"
}
netns_addr() { echo "$NETNS_SUBNET.$1"; }
# in_ns NAME CMD...: runs CMD in NAME's network namespace only (the mount
# namespace stays shared, so a FUSE mount made there is seen here).
in_ns() { local n=$1; shift; nsenter --net="/run/netns/$NETNS_PREFIX-$n" -- "$@"; }
# netns_cut NAME / netns_heal NAME: the host's link to the bridge down / up.
netns_cut() { local v="NETNS_LINK_$1"; ip link set "${!v}" down; }
netns_heal() { local v="NETNS_LINK_$1"; ip link set "${!v}" up; }
