#!/usr/bin/env python3
"""How etcd answers one bit flipped in a stopped member's WAL.

Writes PUTS keys to a lone etcd member, stops it, then FLIPS times: copies its data, flips one
random bit within the WAL's data (up to its last non-zero byte), starts etcd on the copy and
records its answer: refused (it exits; its fatal line), or started (with how many keys it
serves, and whether it logged `wal: repairing`). Each flip is classed by where it fell in the
WAL's framing: a length field, a record's data, or the padding after it.

    python3 bench/etcd-wal-flips.py [FLIPS=300] [PUTS=1500] [SEED=11]

Needs etcd (Debian's etcd-server); skips with a message without it. Uses 127.0.0.1:23790 and
:23800 and a temporary folder, removed at the end. The README's figures came from
`python3 bench/etcd-wal-flips.py 300 1500 11`.
"""
import base64, glob, json, os, random, shutil, signal, struct, subprocess, sys, tempfile, time
import urllib.request

CLIENT, PEER = "http://127.0.0.1:23790", "http://127.0.0.1:23800"


def start(data_dir, log):
    return subprocess.Popen(
        ["etcd", "--name", "n1", "--data-dir", data_dir,
         "--listen-client-urls", CLIENT, "--advertise-client-urls", CLIENT,
         "--listen-peer-urls", PEER, "--initial-advertise-peer-urls", PEER,
         "--initial-cluster", "n1=" + PEER],
        stdout=log, stderr=subprocess.STDOUT)


def post(path, body, timeout=2.0):
    req = urllib.request.Request(CLIENT + path, json.dumps(body).encode(),
                                 {"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read())


def b64(s):
    return base64.b64encode(s.encode()).decode()


def count_keys():
    r = post("/v3/kv/range", {"key": b64("k"), "range_end": b64("l"), "count_only": True}, 0.5)
    return int(r.get("count", "0"))


def wait_up(proc, secs):
    """True once it serves, False if it exits, None at the deadline."""
    end = time.time() + secs
    while time.time() < end:
        if proc.poll() is not None:
            return False
        try:
            count_keys()
            return True
        except OSError:
            time.sleep(0.1)
    return None


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def framing(wal):
    """(start, data length, padding) of each record in the WAL's bytes."""
    spans, at = [], 0
    while at + 8 <= len(wal):
        word = struct.unpack("<Q", wal[at:at + 8])[0]
        if word == 0:
            break
        size, pad = word & ((1 << 56) - 1), (word >> 56) & 7 if word >> 63 else 0
        spans.append((at, size, pad))
        at += 8 + size + pad
    return spans


def where(spans, off):
    for start_at, size, pad in spans:
        if off < start_at + 8:
            return "length" if off >= start_at else "?"
        if off < start_at + 8 + size:
            return "data"
        if off < start_at + 8 + size + pad:
            return "padding"
    return "after the records"


def main():
    args = [int(a) for a in sys.argv[1:4]]
    flips, puts, seed = args + [300, 1500, 11][len(args):]
    if shutil.which("etcd") is None:
        print("skipped: etcd is not installed (apt-get install -y etcd-server)")
        return
    root = tempfile.mkdtemp(prefix="etcd-wal-flips-")
    proc = None
    try:
        pristine = os.path.join(root, "pristine")
        with open(os.path.join(root, "pristine.log"), "w") as log:
            proc = start(pristine, log)
            if not wait_up(proc, 20):
                sys.exit("etcd did not start; see " + log.name)
            for i in range(puts):
                post("/v3/kv/put", {"key": b64("k%05d" % i), "value": b64("v" * 128)})
            stop(proc)
        rng = random.Random(seed)
        tally = {}
        for t in range(flips):
            copy = os.path.join(root, "t")
            shutil.rmtree(copy, ignore_errors=True)
            shutil.copytree(pristine, copy)
            path = sorted(glob.glob(copy + "/member/wal/*.wal"))[-1]
            wal = bytearray(open(path, "rb").read())
            used = len(wal.rstrip(b"\0"))
            off, bit = rng.randrange(used), rng.randrange(8)
            spans = framing(wal)
            wal[off] ^= 1 << bit
            open(path, "wb").write(wal)
            log_path = os.path.join(root, "t.log")
            with open(log_path, "w") as log:
                proc = start(copy, log)
                up = wait_up(proc, 8)
                keys = count_keys() if up else None
                stop(proc)
            text = open(log_path).read()
            if up:
                answer = "started, repaired" if "wal: repairing" in text else "started"
                what = "%d keys" % keys
            else:
                answer = "refused" if up is False else "no answer"
                last = [l for l in text.splitlines() if l.strip()][-1:] or ["(empty log)"]
                what = "exit %s: %s" % (proc.returncode, last[0][-120:])
            place = where(spans, off)
            tally[(answer, place)] = tally.get((answer, place), 0) + 1
            print("%3d byte %d/%d bit %d (%s): %s: %s" % (t, off, used, bit, place, answer, what),
                  flush=True)
        print("\n%d flips:" % flips)
        for (answer, place), n in sorted(tally.items()):
            print("  %4d %s (bit in %s)" % (n, answer, place))
    finally:
        if proc is not None:
            stop(proc)
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
