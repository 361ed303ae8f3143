#!/usr/bin/env bash
# Randomized faults: 4 block daemons, two mounts, a writer and a reader on
# each mount, and a chaos loop that kills -9 one block daemon at a time and
# restarts it a few seconds later.
#
# Each writer owns 3 files and applies random operations to them (pwrite at
# odd sizes and offsets, many across 4 MiB block boundaries; truncate by
# path and by descriptor; open(O_TRUNC) rewrites; chmod; fsync; reopen and
# read back), keeping an in-memory model of each file. An operation counts
# once its close() returned; one that fails (EIO while a node is down)
# leaves the file uncertain, and the writer rewrites the whole file from the
# model until that succeeds. After every acknowledged state the writer
# publishes its sequence number and hashes in $T/model/FILE.json (outside the
# mount), only after close() returned.
#
# The reader on the other mount checks close-to-open: it takes a shared lock
# on the file's lock file (the writer holds it exclusively from the open of
# an operation until its state is published, so a read never overlaps a
# write: ringfs does not make writes visible atomically), reads the
# published state S, then opens and reads the file: the bytes must be state
# S (or a later one); an older state, or bytes that match no state, fail.
# Mismatches are described per 4 MiB block: which older state's bytes the
# block holds, zeros, or bytes of no state.
#
# At the end: chaos stops, every node is up, repairs are given time, and
# every file must read the same from both mounts and a fresh third mount and
# equal the final model. Any single operation taking more than
# FAULT_MAX_OP_SECONDS (default 30) also fails the test.
#
# FAULT_SECONDS (default 45): how long the random phase runs.
# FAULT_SEED: the random seed (printed; replays the same operation choices).
# FAULT_CHAOS=0: the same workload without faults (a check of the checker).
source "$(dirname "$0")/lib.sh"
NODES=4
SECS=${FAULT_SECONDS:-45}
SEED=${FAULT_SEED:-$(($(date +%s%N) / 1000 % 1000000))}
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
  "$BIN/ringfs" node list --dir "$D" 2>/dev/null | awk 'NR > 1 && $6 == "up"' | wc -l
}

cat > "$T/worker.py" <<'PY'
import errno, fcntl, hashlib, json, os, random, signal, subprocess, sys, time, zlib
from collections import Counter

MiB = 2**20
BS = 4 * MiB
MAX_OP = float(os.environ.get("FAULT_MAX_OP_SECONDS", "30"))
T = role = None

def now():
    return time.monotonic()

def stamp():
    return time.strftime("%T")

def stopped():
    return os.path.exists(f"{T}/stop")

def errname(e):
    return errno.errorcode.get(e.errno, str(e.errno)) if e.errno else type(e).__name__

def blocks(b):
    return [zlib.crc32(b[i:i + BS]) for i in range(0, len(b), BS)]

def state(b):
    return [len(b), hashlib.sha1(b).hexdigest(), blocks(b)]

def describe(got, hist, S, want_bytes=None):
    """How `got` differs from state S of `hist`, block by block (with the
    expected bytes, also where and how)."""
    want = hist[S]
    out = [f"read {len(got)} bytes, state {S} has {want[0]}"]
    for i, c in enumerate(blocks(got)):
        if i < len(want[2]) and c == want[2][i]:
            continue
        seg = got[i * BS:(i + 1) * BS]
        older = [k for k in range(S - 1, -1, -1) if i < len(hist[k][2]) and hist[k][2][i] == c]
        if older:
            what = f"the bytes of state {older[0]} ({S - older[0]} older)"
        elif seg.count(0) == len(seg):
            what = "zeros"
        else:
            what = f"bytes of no state ({len(seg) - seg.count(0)} non-zero)"
        if want_bytes is not None:
            w = want_bytes[i * BS:(i + 1) * BS]
            diff = [j for j in range(min(len(seg), len(w))) if seg[j] != w[j]]
            if diff:
                lost = sum(1 for j in diff if seg[j] == 0)
                extra = sum(1 for j in diff if w[j] == 0)
                what += (f": {len(diff)} bytes differ in [{i * BS + diff[0]}, {i * BS + diff[-1] + 1})"
                         f", {lost} read as 0 where data was written, {extra} non-zero where"
                         f" zeros are due")
        out.append(f"block {i} holds {what}")
        if len(out) > 6:
            out.append("...")
            break
    return "; ".join(out)

def save(obj):
    tmp = f"{T}/results/{role}.json.tmp"
    with open(tmp, "w") as f:
        json.dump(obj, f, indent=1)
    os.rename(tmp, f"{T}/results/{role}.json")

def progress(what):
    with open(f"{T}/results/{role}.progress", "w") as f:
        f.write(f"{role}: {stamp()} {what}\n")

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
    stats, failures = Counter(ops=0), []
    deadline = now() + seconds

    def slow(what, t0):
        took = now() - t0
        if took > MAX_OP:
            failures.append(f"{what} took {took:.0f} s (from "
                            f"{time.strftime('%T', time.localtime(time.time() - took))})")

    def publish(n):
        hist[n].append(state(model[n]))
        tmp = f"{T}/model/{n}.json.tmp"
        with open(tmp, "w") as f:
            json.dump({"seq": len(hist[n]) - 1, "hist": hist[n]}, f)
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
            return max(0, rng.randint(1, 3) * BS - rng.randint(1, size))
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

    # Each operation changes `new` (a copy of the model) as the file should
    # change; the model takes it only if the whole operation succeeded.
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

    def op_truncate(n, p, new):  # truncate(2) by path
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

    def op_reopen(n, p, new):  # the writer's own mount reads its file back
        with open(p, "rb") as f:
            got = f.read()
        if got != new:
            failures.append(f"{stamp()} {n}: the writing mount reads back: "
                            f"{describe(got, hist[n] + [state(new)], len(hist[n]))}")

    ops = [(op_pwrite, 40), (op_truncate, 12), (op_ftruncate, 12), (op_otrunc, 8),
           (op_chmod, 8), (op_reopen, 10)]
    funcs, weights = zip(*ops)

    def rewrite(n, p):  # until it succeeds, or 60 s
        t = now() + 60
        while True:
            try:
                fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
                try:
                    write_all(fd, model[n])
                finally:
                    os.close(fd)
                return True
            except OSError as e:
                stats[f"rewrite error {errname(e)}"] += 1
                if now() > t:
                    failures.append(f"{stamp()} {n}: could not rewrite the file for 60 s: {e}")
                    return False
                time.sleep(0.3)

    for n in names:  # initial states; readers wait for a published state
        lk = lock(n, fcntl.LOCK_EX, now() + 60)
        model[n][:] = rng.randbytes(rng.randint(0, 6 * MiB))
        if not rewrite(n, f"{mnt}/{n}"):
            save({"stats": stats, "failures": failures})
            sys.exit(1)
        publish(n)
        lk.close()
    while now() < deadline and not stopped():
        n = rng.choice(names)
        p = f"{mnt}/{n}"
        fn = rng.choices(funcs, weights)[0]
        name = fn.__name__[3:]
        lk = lock(n, fcntl.LOCK_EX, now() + 60)
        if lk is None:
            failures.append(f"{stamp()} {n}: a reader held the file's lock for 60 s")
            break
        new = bytearray(model[n])
        progress(f"{name} {n}")
        t0 = now()
        try:
            fn(n, p, new)
            stats[name] += 1
            stats["ops"] += 1
            slow(f"{name} {n}", t0)
            if fn is not op_reopen:
                model[n] = new
                publish(n)
        except OSError as e:
            stats[f"{name} error {errname(e)}"] += 1
            slow(f"{name} {n} (failed: {e})", t0)
            if fn is not op_reopen:  # the file is uncertain now
                stats["rewrites"] += 1
                progress(f"rewrite {n}")
                t0 = now()
                ok = rewrite(n, p)
                slow(f"rewrite {n}", t0)
                if not ok:
                    lk.close()
                    break
                publish(n)
        lk.close()
    for n in names:
        with open(f"{T}/model/{n}.final", "wb") as f:
            f.write(model[n])
    save({"stats": stats, "failures": failures})

# ------------------------------------------------------------------ reader
def reader(mnt, names, seconds, seed):
    rng = random.Random(seed)
    stats, failures = Counter(reads=0), []
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
            progress(f"read {n}")
            t0 = now()
            try:
                with open(f"{mnt}/{n}", "rb") as f:
                    got = f.read()
            except OSError as e:
                stats[f"read error {errname(e)}"] += 1
                continue
            finally:
                if now() - t0 > MAX_OP:
                    failures.append(f"{stamp()} {n}: a read took {now() - t0:.0f} s")
        finally:
            lk.close()
        stats["reads"] += 1
        hist = pub["hist"]
        got_state = state(got)
        if got_state == hist[S]:
            continue
        if got_state in hist[S + 1:]:
            stats["reads of a later state"] += 1
            continue
        if got_state in hist[:S]:
            k = S - 1 - hist[:S][::-1].index(got_state)
            failures.append(f"{stamp()} {n}: read state {k}, {S - k} older than state {S} "
                            f"acknowledged before the open")
        else:
            failures.append(f"{stamp()} {n}: read bytes of no acknowledged state: "
                            f"{describe(got, hist, S)}")
        if len(failures) >= 20:
            break
    save({"stats": stats, "failures": failures})

# ------------------------------------------------------------------- chaos
def chaos(bindir, D, M, nodes, seconds, seed):
    rng = random.Random(seed)
    stats, log = Counter(kills=0), []
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
    while now() < deadline and not stopped() and os.environ.get("FAULT_CHAOS", "1") != "0":
        victim = f"node{rng.randrange(nodes)}"
        with open(f"{D}/run/{victim}.pid") as f:
            os.kill(int(f.read()), signal.SIGKILL)
        stats["kills"] += 1
        down = rng.uniform(1.5, 6)  # sometimes back before the map marks it down
        log.append(f"{stamp()} kill -9 {victim} for {down:.1f} s")
        save({"stats": stats, "log": log})
        time.sleep(down)  # even past the deadline: every kill gets its restart
        subprocess.run(up, capture_output=True)
        t = now() + 15
        while not all_up() and now() < t:
            time.sleep(0.2)
        sleep_until(now() + rng.uniform(1, 4))
    save({"stats": stats, "log": log})

# ------------------------------------------------------------ final check
def check(mounts, names):
    failed = []
    for r in ["writer-A", "writer-B", "reader-onB", "reader-onA", "chaos"]:
        try:
            with open(f"{T}/results/{r}.json") as f:
                res = json.load(f)
        except FileNotFoundError:
            failed.append(f"{r}: no results (it crashed?)")
            continue
        print(f"{r}: " + ", ".join(f"{k} {v}" for k, v in sorted(res["stats"].items())))
        for l in res.get("log", []):
            print(f"  {l}")
        failed += [f"{r}: {x}" for x in res.get("failures", [])]
    for n in names:
        try:
            with open(f"{T}/model/{n}.final", "rb") as f:
                want = f.read()
            with open(f"{T}/model/{n}.json") as f:
                hist = json.load(f)["hist"]
        except FileNotFoundError:
            failed.append(f"{n}: the writer left no final model")
            continue
        if state(want) != hist[-1]:
            failed.append(f"{n}: the final model is not the last published state")
        for where, m in zip(["mount 1", "mount 2", "a fresh mount"], mounts):
            try:
                with open(f"{m}/{n}", "rb") as f:
                    got = f.read()
            except OSError as e:
                failed.append(f"final {n} on {where}: {e}")
                continue
            if got != want:
                failed.append(f"final {n} on {where}: {describe(got, hist, len(hist) - 1, want)}")
    if failed:
        print("\n".join(failed[:50]), file=sys.stderr)
        sys.exit(f"{len(failed)} problem(s)")

if __name__ == "__main__":
    role, T, args = sys.argv[1], sys.argv[2], sys.argv[3:]
    kind = role.split("-")[0]
    if kind == "writer":
        writer(args[0], args[1].split(","), float(args[2]), int(args[3]))
    elif kind == "reader":
        reader(args[0], args[1].split(","), float(args[2]), int(args[3]))
    elif kind == "chaos":
        chaos(args[0], args[1], args[2], int(args[3]), float(args[4]), int(args[5]))
    else:
        check(args[:3], args[3].split(","))
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
# 60 s more rewriting a file it is not sure of, and an operation may wait
# out the client's 120 s limit for a slow node); bound the wait anyway.
limit=$((SECONDS + SECS + 150))
for p in "${WORKERS[@]}"; do
  while kill -0 "$p" 2>/dev/null && [ $SECONDS -lt $limit ]; do sleep 0.5; done
done
hung=0
for p in "${WORKERS[@]}"; do kill -0 "$p" 2>/dev/null && hung=1; done
stop_workers
WORKERS=()
[ $hung = 0 ] || fail "workers still running $((SECS + 150)) s after the start, a file operation hung: $(cat "$T"/results/*.progress 2>/dev/null)"

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
python3 "$T/worker.py" check "$T/" "$M" "$T/m2" "$T/m3" "$FILES_A,$FILES_B" ||
  fail "random faults (seed $SEED): see the problems above"
ok "random faults for $SECS s: every read matched an acknowledged state and the final files agree (seed $SEED)"
