#!/usr/bin/env bash
# The metadata journal as a mount sees it: with a flush interval of a minute,
# acknowledged creates are not on disk yet (the service's durable seq lags its
# written seq), and fsync of a file, or of a directory, returns only once
# every change acknowledged before it is on disk. kill -9 of the service
# then loses none of them (they were in the journal in any case).
source "$(dirname "$0")/lib.sh"
up --meta-arg=--flush-interval-ms=60000
seq_of() { status_json "$1"; }

mkdir "$M/d"
for i in $(seq 1 50); do echo "$i" > "$M/d/f$i"; done
written=$(seq_of journal_written_seq)
durable=$(seq_of journal_durable_seq)
[ "$durable" -lt "$written" ] || fail "with a 60 s flush interval the journal was already on disk ($durable of $written)"
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY); os.fsync(fd)" "$M/d/f50"
durable=$(seq_of journal_durable_seq)
[ "$durable" -ge "$written" ] || fail "fsync returned with the journal on disk only to $durable of $written"
ok "fsync of a file makes every acknowledged metadata change durable ($durable >= $written)"

for i in $(seq 51 80); do : > "$M/d/f$i"; done
written=$(seq_of journal_written_seq)
python3 -c "import os,sys; fd=os.open(sys.argv[1], os.O_RDONLY|os.O_DIRECTORY); os.fsync(fd)" "$M/d"
durable=$(seq_of journal_durable_seq)
[ "$durable" -ge "$written" ] || fail "fsyncdir returned with the journal on disk only to $durable of $written"
ok "fsyncdir makes every acknowledged metadata change durable"

# Block deletion and truncation cannot be undone, so they wait for the
# changes that caused them to be on disk: a power loss of the metadata
# machine must not bring back a file whose blocks are gone (found by a
# hostile test that cut the journal back to its durable size).
head -c 100000 /dev/urandom > "$T/keep"
cp "$T/keep" "$M/keep"
keep_ino=$(stat -c %i "$M/keep")
blocks_of() { block_files_of "$keep_ino"; }
[ "$(blocks_of)" -gt 0 ] || fail "no block files for the test file"
rm "$M/keep"
for _ in $(seq 1 100); do [ "$(blocks_of)" = 0 ] && break; sleep 0.1; done
[ "$(blocks_of)" = 0 ] || fail "blocks of a removed file not reclaimed"
written=$(seq_of journal_written_seq)
durable=$(seq_of journal_durable_seq)
# Everything up to the unlink was on disk before the blocks went (later
# records, e.g. the reclaim's own, may still be in flight).
python3 - "$durable" "$written" <<'PY' || fail "blocks deleted before the unlink was durable"
import sys
durable, written = map(int, sys.argv[1:3])
sys.exit(0 if durable >= written - 2 else 1)
PY
head -c 9000000 /dev/urandom > "$M/big"
for _ in $(seq 1 10); do : > "$M/x$_"; done
written=$(seq_of journal_written_seq)
truncate -s 100 "$M/big"
durable=$(seq_of journal_durable_seq)
[ "$durable" -gt "$written" ] || fail "a shrinking truncate returned before it was durable ($durable, $written)"
ok "block deletion and truncation wait for the journal"

for i in $(seq 81 120); do : > "$M/d/f$i"; done
kill -9 "$(pid_of meta)"
up --meta-arg=--flush-interval-ms=60000
for _ in $(seq 1 40); do ls "$M/d" >/dev/null 2>&1 && break; sleep 0.25; done
n=$(ls "$M/d" | wc -l)
[ "$n" = 120 ] || fail "after kill -9 of meta: $n of 120 files"
[ "$(cat "$M/d/f7")" = 7 ] || fail "contents lost"
ok "kill -9 of meta with the journal not yet flushed loses nothing"
