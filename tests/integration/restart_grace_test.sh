#!/usr/bin/env bash
# A file unlinked while open stays readable across a kill -9 and restart of
# the metadata service: after the restart nothing is reclaimed until each
# session that was known has re-sent its full list of opens (a beat), even
# if an open or a close of that session reaches the service first: an open
# of another file right after the restart, or a close queued just before
# the kill.
source "$(dirname "$0")/lib.sh"
up
echo other > "$M/other"
for how in open close; do
  head -c $((5 * 1024 * 1024)) /dev/urandom > "$T/v"
  cp "$T/v" "$M/victim"
  ino=$(stat -c %i "$M/victim")
  exec 7< "$M/victim"
  exec 8< "$M/victim"
  rm "$M/victim"
  sleep 0.5
  if [ $how = close ]; then
    exec 8<&-  # its close waits in the mount's queue (up to 20 ms)
  fi
  kill -9 "$(pid_of meta)"
  up 7<&- 8<&-  # the daemons it starts must not inherit (and so hold) the file
  [ $how = open ] && cat "$M/other" >/dev/null  # this session is heard from at once
  sleep 7  # past the mount's next beat and the service's sweeps
  drop_caches
  cmp - "$T/v" <&7 || fail "$how: an open descriptor lost the unlinked file after a meta restart"
  [ "$(block_files_of "$ino")" -gt 0 ] || fail "$how: blocks reclaimed while the file was open"
  exec 7<&-
  [ $how = open ] && exec 8<&-
  for _ in $(seq 1 80); do [ "$(block_files_of "$ino")" = 0 ] && break; sleep 0.25; done
  [ "$(block_files_of "$ino")" = 0 ] || fail "$how: blocks not reclaimed after the last close"
  ok "$how first after a meta restart: the unlinked open file stays readable, reclaimed at its last close"
done
