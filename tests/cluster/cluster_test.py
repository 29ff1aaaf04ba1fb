"""Cluster mode end to end (started by test_cluster.sh).

Usage: cluster_test.py CAPSTAN ROOT TMPDIR POSTGRES_URL

Starts three `capstan serve` replicas on loopback over one PostgreSQL registry and one data
directory, all with `--auth-token-file` (tokens on, one bootstrap admin token from a
shared secret, as a Kubernetes Secret gives it), and checks that what one replica changes
every other serves within a second: a push, alias moves under load on all three (no failed
request), an alias delete, an archive, a deployment applied and deleted; that a watch whose
connection is cut catches up; that only one replica collects garbage at a time; and that a
replica killed -9 during a push leaves nothing partial. Prints one PASS/FAIL line per check
and `cluster: N passed, M failed`; exits 1 on a failure. Standard library plus numpy/onnx.
"""
import base64
import json
import os
import socket
import subprocess
import sys
import threading
import time

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import capstan_http  # noqa: E402
from capstan_http import free_port, jbody  # noqa: E402

CAPSTAN, ROOT, TMP, PG = sys.argv[1:5]
DATA = os.path.join(TMP, "data")
TOKEN_FILE = os.path.join(TMP, "token")
WITHIN = 1.0  # seconds: the bound for a change to reach every replica
GC_LOCK_KEY = 0x6361707367630a  # src/registry/registry.c
check = capstan_http.Checks()


def new_secret():
    return "cst_" + base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")


SECRET = new_secret()


class Replica(capstan_http.Serve):
    """One `capstan serve` of the cluster, started unwaited (wait_live() waits 15 s)."""

    def __init__(self, name):
        self.name = name
        args = ["--data-dir", DATA, "--threads", "16", "--registry", PG, "--auth-token-file",
                TOKEN_FILE]  # implies tokens
        super().__init__(CAPSTAN, args, os.path.join(TMP, name + ".log"))

    def wait_live(self):
        return super().wait_live(300)

    def request(self, method, path, body=None, headers=None, timeout=30, token=None):
        h = {"Authorization": "Bearer " + (token or SECRET)}
        h.update(headers or {})
        return capstan_http.request("127.0.0.1", self.port, method, path, body, h, timeout)

    def infer(self, path="/v2/models/digits/infer"):
        st, _, b = self.request("POST", path, SAMPLE)
        j = jbody(b) or {}
        if st != 200:
            return st, None
        return st, j.get("model_version")


SAMPLE = json.load(open(os.path.join(ROOT, "models/digits.sample.json")))["request"]
DIGITS = open(os.path.join(ROOT, "models/digits.onnx"), "rb").read()


def make_artifacts():
    """Two more versions of digits with distinct bytes (a changed bias), and a big one (a
    24 MB unused initializer) whose push takes long enough to be killed in the middle."""
    out = []
    for k in (7, 3):
        m = onnx.load(os.path.join(ROOT, "models/digits.onnx"))
        for init in m.graph.initializer:
            if init.name == "body.5.bias":
                b = numpy_helper.to_array(init).copy()
                b[k] += 100.0
                init.CopyFrom(numpy_helper.from_array(b, init.name))
        out.append(m.SerializeToString())
    m.graph.initializer.append(numpy_helper.from_array(
        np.random.default_rng(1).standard_normal(6 << 20).astype(np.float32), "unused"))
    out.append(m.SerializeToString())
    return out


def push(rep, data):
    st, _, b = rep.request("POST", "/api/v1/models/digits/versions", data,
                           {"Content-Type": "application/octet-stream"})
    return st, jbody(b) or {}


def until(fn, limit):
    """Polls fn() every 10 ms until it is true or limit seconds pass; the seconds it took,
    or None."""
    t0 = time.monotonic()
    while True:
        if fn():
            return time.monotonic() - t0
        if time.monotonic() - t0 > limit:
            return None
        time.sleep(0.01)


def serves(rep, version, path="/v2/models/digits/infer"):
    def ok():
        try:
            return rep.infer(path) == (200, version)
        except OSError:
            return False
    return ok


def everywhere(name, reps, version, path="/v2/models/digits/infer", limit=WITHIN):
    """Every replica in reps answers version within limit seconds of now."""
    t0 = time.monotonic()
    late = {}
    for r in reps:
        if until(serves(r, version, path), max(0.0, limit - (time.monotonic() - t0))) is None:
            late[r.name] = r.infer(path)
    took = time.monotonic() - t0
    check("%s: served by %s within %.1f s (%.3f s)" % (name, "+".join(r.name for r in reps),
                                                          limit, took), not late, late)


# --- the checks --------------------------------------------------------------------------


def bootstrap_token(reps):
    st, _, b = reps[1].request("GET", "/api/v1/tokens")
    items = (jbody(b) or {}).get("items", [])
    check("one bootstrap admin token for three replicas started at once",
          st == 200 and [(t["name"], t["role"]) for t in items] == [("bootstrap", "admin")],
          (st, b[:300]))
    check("no admin.token file with a bootstrap secret",
          not os.path.exists(os.path.join(DATA, "admin.token")))
    st = capstan_http.request("127.0.0.1", reps[2].port, "GET", "/api/v1/models")[0]
    check("a request without the token is 401", st == 401, st)
    st = reps[2].request("GET", "/api/v1/models", token=new_secret())[0]
    check("a wrong token is 401", st == 401, st)


def push_everywhere(a, b, c, v2):
    st, _ = a.request("POST", "/api/v1/models", {"name": "digits"})[:2]
    check("create model on A", st == 201, st)
    st, j = push(a, DIGITS)
    check("push v1 on A", st == 201 and j.get("version") == 1, (st, j))
    for r in (b, c):
        check("%s serves v1 pushed on A" % r.name, r.infer() == (200, "1"), r.infer())
    st, j = push(a, v2)
    check("push v2 on A", st == 201 and j.get("version") == 2, (st, j))
    everywhere("a push on A", [b, c], "2")


def alias_moves_under_load(reps):
    """Two clients per replica infer without pause for about 4 s while prod moves 1 -> 2 ->
    1 -> 2, each move made on another replica: no request may fail, and every replica
    answers the moved-to version within a second of the move."""
    stop = threading.Event()
    log, lock = [], threading.Lock()

    def client(r):
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                st, v = r.infer()
            except OSError as e:
                st, v = repr(e), None
            with lock:
                log.append((r.name, t0, time.monotonic(), st, v))

    threads = [threading.Thread(target=client, args=(r,), daemon=True) for r in reps for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.3)
    moves = []
    for k, target in enumerate((1, 2, 1, 2)):
        r = reps[k % 3]
        t0 = time.monotonic()
        st = r.request("PUT", "/api/v1/models/digits/aliases/prod", {"version": target})[0]
        moves.append((time.monotonic(), target, st, r.name))
        time.sleep(WITHIN + 0.2)
    stop.set()
    for t in threads:
        t.join()
    failed = [e for e in log if e[3] != 200]
    check("alias moves on A, B, C answered 200", all(m[2] == 200 for m in moves), moves)
    check("no failed request during moves under load (%d requests)" % len(log),
          not failed and len(log) > 60, failed[:5])
    # A request sent more than WITHIN after a move returned, and before the next move began,
    # must get the moved-to version on every replica.
    wrong = []
    for name, t0, t1, st, v in log:
        for k, (end, target, _, _) in enumerate(moves):
            nxt = moves[k + 1][0] - WITHIN - 0.2 if k + 1 < len(moves) else float("inf")
            if st == 200 and end + WITHIN <= t0 and t1 < nxt and v != str(target):
                wrong.append((name, round(t0 - end, 3), v, target))
    check("every replica switches within %.1f s of each move" % WITHIN, not wrong, wrong[:5])


def alias_delete_and_archive(a, b, c):
    st = b.request("DELETE", "/api/v1/models/digits/aliases/prod")[0]
    check("delete alias prod on B", st == 204, st)
    st, j = push(c, V3)  # v3: latest, but archived below
    check("push v3 on C", st == 201 and j.get("version") == 3, (st, j))
    everywhere("alias delete on B then push on C (latest v3)", [a, b], "3")
    st = a.request("PATCH", "/api/v1/models/digits/versions/3", {"state": "archived"})[0]
    check("archive v3 on A", st == 200, st)
    everywhere("an archive on A (back to v2)", [b, c], "2")
    st = c.request("POST", "/v2/models/digits/versions/3/infer", SAMPLE)[0]
    check("the archived version is 404 on C", st == 404, st)


def deployments(a, b, c):
    spec = {"apiVersion": "capstan.dev/v1", "kind": "Deployment",
            "metadata": {"name": "dig"},
            "spec": {"model": "digits", "traffic": [{"version": 1, "percent": 100}],
                     "instances": {"min": 1, "max": 1}}}
    st, _, body = a.request("PUT", "/api/v1/deployments/dig", spec)
    check("apply a deployment on A", st in (200, 201), (st, body[:300]))
    path = "/v2/models/dig/infer"
    everywhere("a deployment applied on A", [b, c], "1", path, limit=2 * WITHIN)
    spec["spec"]["traffic"] = [{"version": 2, "percent": 100}]
    st = b.request("PUT", "/api/v1/deployments/dig", spec)[0]
    check("change the deployment on B", st == 200, st)
    everywhere("a deployment changed on B", [a, c], "2", path, limit=2 * WITHIN)
    st = c.request("DELETE", "/api/v1/deployments/dig")[0]
    check("delete the deployment on C", st == 200, st)

    def gone(r):
        return lambda: r.request("POST", path, SAMPLE)[0] == 404
    late = [r.name for r in (a, b) if until(gone(r), WITHIN) is None]
    check("a deployment deleted on C is gone from A and B within %.1f s" % WITHIN, not late, late)


def psql(sql_lines):
    """A psql session fed sql_lines, left open; returns the process."""
    p = subprocess.Popen(["psql", "-X", "-qAt", "-v", "ON_ERROR_STOP=1", PG], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    for line in sql_lines:
        p.stdin.write(line + "\n")
    p.stdin.flush()
    return p


def watch_reconnects(a, b, c):
    """Cut every replica's watch connection, then move prod at once: the replicas hear of
    it when they reconnect (a resync), within the reconnection delay plus a second."""
    out = subprocess.run(["psql", "-X", "-qAt", PG, "-c",
                          "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity WHERE "
                          "query IN ('LISTEN capstan_changes', 'SELECT n FROM changes WHERE id = 1')"],
                         capture_output=True, text=True)
    check("cut the three watch connections", out.stdout.strip() == "3", (out.stdout, out.stderr))
    st = a.request("PUT", "/api/v1/models/digits/aliases/prod", {"version": 1})[0]
    check("move prod to v1 on A while the watches are cut", st == 200, st)
    everywhere("a move missed by the watches", [b, c], "1", limit=2 * WITHIN + 1.0)


def gc_one_at_a_time(a, b, c):
    # A session holding the cluster's gc lock: every replica refuses to collect meanwhile.
    holder = psql(["SELECT pg_advisory_lock(%d);" % GC_LOCK_KEY, "\\echo held"])
    lines = [holder.stdout.readline().strip() for _ in range(2)]  # the SELECT's "", then ours
    check("a session holds the gc lock", "held" in lines, lines)
    for r in (a, b):
        st, h, body = r.request("POST", "/api/v1/gc")
        err = (jbody(body) or {}).get("error", "")
        check("gc on %s while another holds the lock: 503 with Retry-After" % r.name,
              st == 503 and h.get("retry-after") and "another capstan server" in err, (st, body))
    holder.stdin.write("SELECT pg_advisory_unlock(%d);\n\\q\n" % GC_LOCK_KEY)
    holder.stdin.close()
    holder.wait(timeout=10)
    # Orphans for two concurrent collections: together they remove each exactly once.
    blobs = os.path.join(DATA, "blobs", "sha256")
    names = []
    for i in range(400):
        h = os.urandom(32).hex()
        sub = os.path.join(blobs, h[:2])
        os.makedirs(sub, exist_ok=True)
        open(os.path.join(sub, h[2:]), "wb").write(b"x")  # blobs.c: sha256/ab/cdef...
        names.append(h)
    out = [None, None]

    def gc(i, r):
        st, _, body = r.request("POST", "/api/v1/gc")
        out[i] = (st, jbody(body) or {})
    ts = [threading.Thread(target=gc, args=(i, r)) for i, r in enumerate((b, c))]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    ok = [o for o in out if o[0] == 200]
    busy = [o for o in out if o[0] == 503 and "another capstan server" in o[1].get("error", "")]
    removed = sum(o[1].get("removed", 0) for o in ok)
    check("two concurrent gc on B and C: each ran alone or was refused",
          len(ok) + len(busy) == 2 and ok, out)
    # v1..v3 stay referenced (v3 is archived, not deleted): exactly the orphans go.
    check("the orphans were removed once", removed == 400 and
          not any(os.path.exists(os.path.join(blobs, h[:2], h[2:])) for h in names), (removed, out))
    for r in (a, b, c):
        check("%s serves after gc" % r.name, r.infer()[0] == 200, r.infer())


def kill_mid_push(reps, big):
    a, b, c = reps
    st, _, body = a.request("GET", "/api/v1/models/digits/versions")
    before = [v["version"] for v in (jbody(body) or {}).get("items", [])]
    s = socket.create_connection(("127.0.0.1", c.port))
    s.sendall(b"POST /api/v1/models/digits/versions HTTP/1.1\r\nHost: x\r\n"
              b"Authorization: Bearer %s\r\nContent-Type: application/octet-stream\r\n"
              b"Content-Length: %d\r\n\r\n" % (SECRET.encode(), len(big)))
    s.sendall(big[:len(big) // 2])
    tmpdir = os.path.join(DATA, "blobs", "tmp")
    started = until(lambda: os.listdir(tmpdir), 5) is not None
    check("C is writing the push's temporary file", started, os.listdir(tmpdir))
    c.kill()
    s.close()
    for r in (a, b):
        st, _, body = r.request("GET", "/api/v1/models/digits/versions")
        after = [v["version"] for v in (jbody(body) or {}).get("items", [])]
        check("%s sees no partial version after C's kill -9" % r.name, after == before,
              (before, after))
        check("%s still serves" % r.name, r.infer()[0] == 200, r.infer())
    st, _, body = a.request("GET", "/api/v1/audit?model=digits&limit=1")
    last = ((jbody(body) or {}).get("items") or [{}])[0].get("action")
    check("no audit entry for the killed push", last == "alias.moved", last)
    st, _, body = b.request("POST", "/api/v1/gc")
    j = jbody(body) or {}
    check("gc on B removes C's interrupted upload", st == 200 and j.get("removed", 0) >= 1 and
          not os.listdir(tmpdir), (st, j, os.listdir(tmpdir)))
    reps[2] = Replica("C")
    check("C restarts", reps[2].wait_live())
    st, j = push(reps[2], big)
    check("the same push through the restarted C", st == 201 and j.get("version") == 4, (st, j))
    everywhere("the restarted C", [reps[2]], "1")  # prod still names v1


def token_rotation(reps):
    global SECRET
    old = SECRET
    SECRET = new_secret()
    open(TOKEN_FILE, "w").write(SECRET + "\n")
    reps[0].stop()
    reps[0] = Replica("A")
    check("A restarts with a rotated secret", reps[0].wait_live())
    check("the new secret works on B (one store)", reps[1].request("GET", "/api/v1/models")[0] ==
          200)
    check("the old secret is refused on C",
          reps[2].request("GET", "/api/v1/models", token=old)[0] == 401)
    st, _, b = reps[1].request("GET", "/api/v1/tokens")
    items = (jbody(b) or {}).get("items", [])
    check("still one bootstrap token after the rotation", [t["name"] for t in items] ==
          ["bootstrap"], items)
    bad = os.path.join(TMP, "bad-token")
    open(bad, "w").write("not-a-token\n")
    p = subprocess.run([CAPSTAN, "serve", "--port", str(free_port()), "--data-dir", DATA,
                        "--registry", PG, "--auth", "tokens", "--auth-token-file", bad],
                       capture_output=True, text=True, timeout=30)
    check("a malformed secret is refused at start, naming the form",
          p.returncode != 0 and "cst_" in p.stderr and "not-a-token" not in p.stderr,
          (p.returncode, p.stderr[-300:]))
    p = subprocess.run([CAPSTAN, "serve", "--port", "0", "--data-dir", DATA, "--registry", PG,
                        "--auth", "none", "--auth-token-file", TOKEN_FILE],
                       capture_output=True, text=True, timeout=30)
    check("--auth-token-file with --auth none is a usage error",
          p.returncode == 2 and "contradict" in p.stderr, (p.returncode, p.stderr[-300:]))


def main():
    global V3
    os.makedirs(DATA, exist_ok=True)
    open(TOKEN_FILE, "w").write(SECRET)  # as a Secret's file: no final newline
    v2, V3, big = make_artifacts()
    reps = [Replica(n) for n in ("A", "B", "C")]
    try:
        check("three replicas start at once on one store", all(r.wait_live() for r in reps))
        bootstrap_token(reps)
        a, b, c = reps
        push_everywhere(a, b, c, v2)
        alias_moves_under_load(reps)
        alias_delete_and_archive(a, b, c)
        deployments(a, b, c)
        watch_reconnects(a, b, c)
        gc_one_at_a_time(a, b, c)
        kill_mid_push(reps, big)
        token_rotation(reps)
        for r in reps:
            check("%s exits 0 on SIGTERM" % r.name, r.stop() == 0)
    except Exception as e:  # a crash of the test itself is a failure, not a traceback only
        check("test ran to the end", False, repr(e))
    for r in reps:
        if r.proc.poll() is None:
            r.kill()
    for n in ("A", "B", "C"):  # sanitizer builds report on stderr
        log = open(os.path.join(TMP, n + ".log"), errors="replace").read()
        check("%s.log has no sanitizer report" % n,
              "Sanitizer" not in log and "runtime error:" not in log, log[-500:])
    if check.failed:
        for n in ("A", "B", "C"):
            print("--- %s.log" % n)
            os.system("tail -n 15 %s" % os.path.join(TMP, n + ".log"))
    sys.exit(check.summary("cluster"))


main()
