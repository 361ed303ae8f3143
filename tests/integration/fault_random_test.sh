#!/usr/bin/env bash
# Randomized faults: 4 block daemons, two mounts, a writer and a reader on
# each mount, and a chaos loop that kills -9 one block daemon at a time and
# restarts it a few seconds later.
#
# Each writer owns 3 files and applies random operations to them (pwrite at
# odd sizes and offsets across block boundaries, truncate by path and by
# descriptor, open(O_TRUNC) rewrites, chmod, fsync, reopen-and-check),
# keeping an in-memory model of each file. An operation counts only once
# its close() returned; one that fails (EIO while a node is down) leaves the
# file uncertain, and the writer rewrites the whole file from the model until
# that succeeds. After every acknowledged state the writer publishes its
# sequence number and hash in $T/model/FILE.json (outside the mount).
#
# The reader on the other mount checks close-to-open: it takes a shared lock
# on the file's lock file (the writer holds it exclusively from the open of an
# operation until the state is published, so a read never overlaps a write:
# ringfs does not make writes visible atomically), reads the published
# state S, then opens and reads the file: the bytes must be state S (or a
# later one); an older state or bytes that match no state are failures.
#
# At the end: chaos stops, every node is up, repairs are given time, and
# every file must read the same from both mounts and a fresh third mount and
# equal the final model.
#
# FAULT_SECONDS (default 45) sets how long the random phase runs,
# FAULT_SEED the random seed (printed, to replay the same operations).
source "$(dirname "$0")/lib.sh"
NODES=4
SECS=${FAULT_SECONDS:-45}
SEED=${FAULT_SEED:-$(( $(date +%s) % 100000 ))}
echo "fault_random: seed $SEED, $SECS s"
mkdir -p "$T/model" "$T/locks" "$T/results"

WORKERS=()
stop_workers() {
  touch "$T/stop"
  local p
  for p in "${WORKERS[@]}"; do kill -9 "$p" 2>/dev/null || true; done
}
# lib.sh's cleanup, after the workers (and the chaos loop, which restarts
# daemons) are gone.
trap 'rc=$?; set +e; stop_workers; (exit $rc); cleanup' EXIT INT TERM

nodes_up() {
  "$BIN/ringfs" status --dir "$D" 2>/dev/null | awk 'NR > 2 && $4 == "up"' | wc -l
}

cat > "$T/worker.py" <<'PY'
import errno, fcntl, hashlib, json, os, random, signal, subprocess, sys, time, zlib
from collections import Counter

MiB = 2**20
BS = 4 * MiB
role, T = sys.argv[1], sys.argv[2]
args = sys.argv[3:]

def now():
    return time.monotonic()

def stopped():
    return os.path.exists(f"{T}/stop")

def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__

def chunks(b):
    return [zlib.crc32(b[i:i + MiB]) for i in range(0, len(b), MiB)]

def describe_diff(got, want_len, want_chunks):
    bad = [i for i, c in enumerate(chunks(got)) if i >= len(want_chunks) or c != want_chunks[i]]
    return (f"{len(got)} bytes (want {want_len}), differing MiB chunks {bad[:10]}"
            + ("..." if len(bad) > 10 else ""))

def save(name, obj):
    tmp = f"{T}/results/{name}.json.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.rename(tmp, f"{T}/results/{name}.json")

def lock(name, mode, deadline):
    f = open(f"{T}/locks/{name}", "a+")
    while True:
        try:
            fcntl.flock(f, mode | fcntl.LOCK_NB)
            return f
        except BlockingIOError:
            if now() > deadline:
                f.close()
                return None
            time.sleep(0.02)

# ------------------------------------------------------------------ writer
def writer(mnt, names, seconds, seed):
    rng = random.Random(seed)
    model = {n: bytearray() for n in names}
    hist = {n: [] for n in names}
    stats, failures = Counter(), []
    deadline = now() + seconds

    def publish(n):
        m = model[n]
        hist[n].append([len(m), hashlib.sha1(m).hexdigest()])
        tmp = f"{T}/model/{n}.json.tmp"
        with open(tmp, "w") as f:
            json.dump({"seq": len(hist[n]) - 1, "hist": hist[n], "chunks": chunks(m)}, f)
        os.rename(tmp, f"{T}/model/{n}.json")

    def write_all(fd, data, off=0):
        view = memoryview(data)
        while view:
            k = os.pwrite(fd, view, off)
            if k <= 0:
                raise OSError(errno.EIO, "short write")
            view, off = view[k:], off + k

    def put(m, off, data):
        if off > len(m):
            m.extend(bytes(off - len(m)))
        m[off:off + len(data)] = data

    def resize(m, size):
        if size < len(m):
            del m[size:]
        else:
            m.extend(bytes(size - len(m)))

    def pick_size():
        r = rng.random()
        if r < 0.25:
            s = rng.randint(1, 100)
        elif r < 0.5:
            s = rng.randint(1, 64 << 10)
        elif r < 0.8:
            s = rng.randint(64 << 10, MiB)
        else:
            s = rng.randint(MiB, 5 * MiB)
        return s | 1  # odd sizes

    def pick_offset(m, size):
        r = rng.random()
        if r < 0.4:
            return rng.randint(0, 12 * MiB)
        if r < 0.75:  # across a block boundary
            k = rng.randint(1, 3) * BS
            return max(0, k - rng.randint(1, size))
        if r < 0.9:
            return len(m)  # append
        return rng.randint(0, max(0, len(m) - 1))

    def pick_length(m):
        r = rng.random()
        if r < 0.15:
            return 0
        if r < 0.45:
            return max(0, rng.choice([BS, 2 * BS, 3 * BS]) + rng.randint(-3, 3))
        if r < 0.7:
            return max(0, len(m) + rng.randint(-5 * MiB, 2 * MiB))
        return rng.randint(0, 13 * MiB)

    def op_pwrite(n, p, new):
        fd = os.open(p, os.O_WRONLY)
        try:
            for _ in range(rng.randint(1, 3)):
                size = pick_size()
                off = pick_offset(new, size)
                data = rng.randbytes(size)
                write_all(fd, data, off)
                put(new, off, data)
            if rng.random() < 0.2:
                stats["fsync"] += 1
                os.fsync(fd)
        finally:
            os.close(fd)

    def op_truncate(n, p, new):
        size = pick_length(new)
        os.truncate(p, size)
        resize(new, size)

    def op_ftruncate(n, p, new):
        fd = os.open(p, os.O_RDWR)
        try:
            size = pick_length(new)
            os.ftruncate(fd, size)
            resize(new, size)
            if rng.random() < 0.5:
                data = rng.randbytes(pick_size())
                off = pick_offset(new, len(data))
                write_all(fd, data, off)
                put(new, off, data)
        finally:
            os.close(fd)

    def op_otrunc(n, p, new):
        fd = os.open(p, os.O_WRONLY | os.O_TRUNC)
        try:
            data = rng.randbytes(pick_size() if rng.random() < 0.8 else 0)
            write_all(fd, data)
            new[:] = data
        finally:
            os.close(fd)

    def op_chmod(n, p, new):
        os.chmod(p, rng.choice([0o600, 0o640, 0o644, 0o664]))

    def op_reopen(n, p, new):  # the writer's own mount reads back its model
        with open(p, "rb") as f:
            got = f.read()
        if got != new:
            failures.append(f"{n}: the writing mount reads back "
                            f"{describe_diff(got, len(new), chunks(new))}")

    ops = [(op_pwrite, 40), (op_truncate, 12), (op_ftruncate, 12), (op_otrunc, 8),
           (op_chmod, 8), (op_reopen, 10)]
    funcs, weights = zip(*ops)

    def resync(n, p, lk_deadline):
        while True:
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    write_all(fd, model[n])
                finally:
                    os.close(fd)
                return True
            except OSError as e:
                stats[f"resync error {errname(e)}"] += 1
                if now() > lk_deadline:
                    failures.append(f"{n}: could not rewrite the file for 60 s: {e}")
                    return False
                time.sleep(0.3)

    for n in names:  # initial states (no reader yet: they wait for a published state)
        lk = lock(n, fcntl.LOCK_EX, now() + 60)
        model[n][:] = rng.randbytes(rng.randint(0, 6 * MiB))
        if not resync(n, f"{mnt}/{n}", now() + 60):
            save(role, {"stats": stats, "failures": failures})
            sys.exit(1)
        publish(n)
        lk.close()
    while now() < deadline and not stopped():
        n = rng.choice(names)
        p = f"{mnt}/{n}"
        fn = rng.choices(funcs, weights)[0]
        lk = lock(n, fcntl.LOCK_EX, now() + 60)
        if lk is None:
            failures.append(f"{n}: a reader held the file's lock for 60 s (a read hung)")
            break
        new = bytearray(model[n])
        try:
            fn(n, p, new)
            stats[fn.__name__[3:]] += 1
            stats["ops"] += 1
            if fn is not op_reopen:
                model[n] = new
                publish(n)
        except OSError as e:
            stats[f"{fn.__name__[3:]} error {errname(e)}"] += 1
            if fn is not op_reopen:
                stats["resyncs"] += 1
                if not resync(n, p, now() + 60):
                    lk.close()
                    break
                publish(n)
        lk.close()
    for n in names:
        with open(f"{T}/model/{n}.final", "wb") as f:
            f.write(model[n])
    save(role, {"stats": stats, "failures": failures})

# ------------------------------------------------------------------ reader
def reader(mnt, names, seconds, seed):
    rng = random.Random(seed)
    stats, failures = Counter(), []
    deadline = now() + seconds
    while now() < deadline and not stopped():
        n = rng.choice(names)
        lk = lock(n, fcntl.LOCK_SH, deadline)
        if lk is None:
            break
        try:
            try:
                with open(f"{T}/model/{n}.json") as f:
                    pub = json.load(f)
            except FileNotFoundError:
                time.sleep(0.1)
                continue
            S = pub["seq"]
            try:
                with open(f"{mnt}/{n}", "rb") as f:
                    got = f.read()
            except OSError as e:
                stats[f"read error {errname(e)}"] += 1
                continue
        finally:
            lk.close()
        stats["reads"] += 1
        h = [len(got), hashlib.sha1(got).hexdigest()]
        hist = pub["hist"]
        if h == hist[S]:
            continue
        later = [k for k in range(S + 1, len(hist)) if hist[k] == h]
        if later:
            stats["reads of a later state"] += 1
            continue
        older = [k for k in range(S) if hist[k] == h]
        if older:
            failures.append(f"{n}: read state {older[-1]}, {S - older[-1]} state(s) older "
                            f"than state {S} acknowledged before the open")
        else:
            failures.append(f"{n}: read bytes that match no state the writer acknowledged; "
                            f"state {S} is {hist[S][0]} bytes; read "
                            f"{describe_diff(got, hist[S][0], pub['chunks'])}")
        if len(failures) >= 20:
            break
    save(role, {"stats": stats, "failures": failures})

# ------------------------------------------------------------------- chaos
def chaos(bindir, D, M, nodes, seconds, seed):
    rng = random.Random(seed)
    stats = Counter()
    log = []
    deadline = now() + seconds
    up = [f"{bindir}/ringfs", "up", "--nodes", str(nodes), "--dir", D, "--mount", M]

    def all_up():
        out = subprocess.run([f"{bindir}/ringfs", "status", "--dir", D],
                             capture_output=True, text=True).stdout
        return sum(1 for l in out.splitlines()[2:] if l.split()[3:4] == ["up"]) == nodes

    def sleep_until(t):
        while now() < t and not stopped():
            time.sleep(0.1)

    sleep_until(now() + rng.uniform(1, 3))
    while now() < deadline and not stopped():
        victim = f"node{rng.randrange(nodes)}"
        with open(f"{D}/run/{victim}.pid") as f:
            os.kill(int(f.read()), signal.SIGKILL)
        stats["kills"] += 1
        down = rng.uniform(1.5, 6)
        log.append(f"{time.strftime('%T')} kill -9 {victim} for {down:.1f} s")
        time.sleep(down)  # even past the deadline: every kill gets its restart
        subprocess.run(up, capture_output=True)
        t = now() + 15
        while not all_up() and now() < t:
            time.sleep(0.2)
        sleep_until(now() + rng.uniform(1, 4))
    save(role, {"stats": stats, "log": log})

if __name__ == "__main__":
    kind = role.split("-")[0]
    if kind == "writer":
        writer(args[0], args[1].split(","), float(args[2]), int(args[3]))
    elif kind == "reader":
        reader(args[0], args[1].split(","), float(args[2]), int(args[3]))
    else:
        chaos(args[0], args[1], args[2], int(args[3]), float(args[4]), int(args[5]))
PY

up
mount_second "$T/m2"
FILES_A=a0,a1,a2  # written through $M
FILES_B=b0,b1,b2  # written through $T/m2
python3 "$T/worker.py" writer-A "$T/" "$M" "$FILES_A" "$SECS" $((SEED + 1)) & WORKERS+=($!)
python3 "$T/worker.py" writer-B "$T/" "$T/m2" "$FILES_B" "$SECS" $((SEED + 2)) & WORKERS+=($!)
python3 "$T/worker.py" reader-onB "$T/" "$T/m2" "$FILES_A" "$SECS" $((SEED + 3)) & WORKERS+=($!)
python3 "$T/worker.py" reader-onA "$T/" "$M" "$FILES_B" "$SECS" $((SEED + 4)) & WORKERS+=($!)
python3 "$T/worker.py" chaos "$T/" "$BIN" "$D" "$M" "$NODES" "$SECS" $((SEED + 5)) & WORKERS+=($!)

# Everything ends on its own shortly after $SECS (a writer may spend up to
# 60 s more rewriting a file it is not sure of); bound the wait anyway.
limit=$((SECONDS + SECS + 90))
for p in "${WORKERS[@]}"; do
  while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $limit ]; do sleep 0.5; done
done
hung=0
for p in "${WORKERS[@]}"; do kill -0 "$p" 2>/dev/null && hung=1; done
stop_workers
WORKERS=()
[ $hung = 0 ] || fail "workers still running $((SECS + 90)) s after the start (a file operation hung): $(pgrep -fa "$T/worker.py")"

up
for _ in $(seq 1 60); do [ "$(nodes_up)" = $NODES ] && break; sleep 0.5; done
[ "$(nodes_up)" = $NODES ] || fail "not all nodes up after the chaos: $("$BIN/ringfs" status --dir "$D")"
# Repairs: wait (bounded) until no file has stale marks.
for _ in $(seq 1 60); do
  marks=0
  for f in ${FILES_A//,/ } ${FILES_B//,/ }; do
    n=$("$BIN/ringfs" locate "$M/$f" 2>/dev/null | grep -c "stale (not read)" || true)
    marks=$((marks + n))
  done
  [ $marks = 0 ] && break
  sleep 0.5
done
echo "stale marks left after the repair wait: $marks"
drop_caches
mount_second "$T/m3"

python3 - "$T" "$M" "$T/m2" "$T/m3" "$FILES_A,$FILES_B" <<'PY' ||
  fail "random faults: reads disagree with what the writers acknowledged (seed $SEED)"
import json, os, sys, zlib
T, mounts, names = sys.argv[1], sys.argv[2:5], sys.argv[5].split(",")
MiB = 2**20
failed = []
for role in ["writer-A", "writer-B", "reader-onB", "reader-onA", "chaos"]:
    try:
        with open(f"{T}/results/{role}.json") as f:
            r = json.load(f)
    except FileNotFoundError:
        failed.append(f"{role}: no results (crashed?)")
        continue
    stats = ", ".join(f"{k} {v}" for k, v in sorted(r["stats"].items()))
    print(f"{role}: {stats}")
    for l in r.get("log", []):
        print(f"  {l}")
    failed += [f"{role}: {x}" for x in r.get("failures", [])]

def diff(got, want):
    if len(got) != len(want):
        return f"{len(got)} bytes, want {len(want)}"
    bad = [i for i in range(0, len(want), MiB) if got[i:i + MiB] != want[i:i + MiB]]
    first = next(i for i in range(len(want)) if got[i] != want[i])
    return f"differs at byte {first} (MiB chunks {[b // MiB for b in bad][:10]})"

for n in names:
    try:
        with open(f"{T}/model/{n}.final", "rb") as f:
            want = f.read()
    except FileNotFoundError:
        failed.append(f"{n}: the writer left no final model")
        continue
    for where, m in zip(["mount 1", "mount 2", "a fresh mount"], mounts):
        try:
            with open(f"{m}/{n}", "rb") as f:
                got = f.read()
        except OSError as e:
            failed.append(f"final {n} on {where}: {e}")
            continue
        if got != want:
            failed.append(f"final {n} on {where}: {diff(got, want)}")
if failed:
    print("\n".join(failed[:40]), file=sys.stderr)
    sys.exit(f"{len(failed)} problem(s)")
PY
ok "random faults for $SECS s: every read matched an acknowledged state, and the final files agree (seed $SEED)"
