"""The registry over HTTP, end to end (started by test_registry_api.sh).

Usage: registry_api_test.py CAPSTAN ROOT TMPDIR [POSTGRES_URL]

Starts `capstan serve` itself (it has to kill -9 and restart it), on SQLite in TMPDIR/data
or on POSTGRES_URL, and checks every /api/v1 endpoint with its error codes, streamed
pushes past the inference body limit, serving registered versions through /v2, an alias
move under continuous inference (zero failures, answers switch), concurrent pushes,
webhooks, every `capstan model` subcommand, and a kill -9 in the middle of a push. Prints
one PASS/FAIL line per check and `registry_api: N passed, M failed`; exits 1 on a failure.
Only the standard library and numpy/onnx (to build the second version).
"""
import hashlib
import hmac
import http.client
import http.server
import json
import os
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import urllib.parse

import numpy as np
import onnx
from onnx import helper, numpy_helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import capstan_http  # noqa: E402
from capstan_http import jbody  # noqa: E402

CAPSTAN, ROOT, TMP = sys.argv[1:4]
PG = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
DATA = os.path.join(TMP, "data")
MAX_ARTIFACT = 64 << 20
check = capstan_http.Checks()


class Server(capstan_http.Serve):
    """A `capstan serve` on DATA (or PG), live when the constructor returns."""

    def __init__(self, extra=()):
        args = ["--data-dir", DATA, "--threads", "64", "--max-body-size", str(1 << 20),
                "--max-artifact-size", str(MAX_ARTIFACT)]
        if PG:
            args += ["--registry", PG]
        super().__init__(CAPSTAN, args + list(extra), os.path.join(TMP, "server.log"))
        if not self.wait_live():
            raise RuntimeError("the server did not start; see server.log")


SRV = None


def request(method, path, body=None, headers=None, port=None, timeout=60):
    """Returns (status, headers dict with lower-case keys, body bytes)."""
    return capstan_http.request("127.0.0.1", port or SRV.port, method, path, body, headers,
                                timeout)


def expect(name, method, path, status, body=None, headers=None):
    st, h, b = request(method, path, body, headers)
    ok = st == status
    j = jbody(b)
    if ok and status >= 400:
        ok = isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"] != ""
    check(name, ok, "got %d %s, want %d" % (st, b[:300], status))
    return j


def push(model, data, headers=None, query=""):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return request("POST", "/api/v1/models/%s/versions%s" % (model, query), data, h)


# --- artifacts ------------------------------------------------------------------------------

DIGITS = open(os.path.join(ROOT, "models/digits.onnx"), "rb").read()


def make_artifacts():
    """digits7: digits whose last bias makes every answer class 7 (v1 answers 1 on the
    sample); big: digits with a 24 MB unused initializer, past the 1 MiB body limit."""
    m = onnx.load(os.path.join(ROOT, "models/digits.onnx"))
    for init in m.graph.initializer:
        if init.name == "body.5.bias":
            b = numpy_helper.to_array(init).copy()
            b[7] += 100.0
            init.CopyFrom(numpy_helper.from_array(b, init.name))
    seven = m.SerializeToString()
    m.graph.initializer.append(numpy_helper.from_array(
        np.random.default_rng(1).standard_normal(6 << 20).astype(np.float32), "unused"))
    big = m.SerializeToString()
    path = os.path.join(TMP, "digits7.onnx")
    open(path, "wb").write(seven)
    return seven, big, path


SAMPLE = json.load(open(os.path.join(ROOT, "models/digits.sample.json")))["request"]


def infer(path):
    st, _, b = request("POST", path, SAMPLE)
    j = jbody(b) or {}
    if st != 200:
        return st, None, None
    return st, j.get("model_version"), int(np.argmax(j["outputs"][0]["data"]))


# --- the API --------------------------------------------------------------------------------


def models_api():
    expect("create model", "POST", "/api/v1/models", 201,
           {"name": "digits", "description": "8x8 digits", "labels": {"team": "ml"}})
    expect("create duplicate 409", "POST", "/api/v1/models", 409, {"name": "digits"})
    expect("create bad name 400", "POST", "/api/v1/models", 400, {"name": "Bad_Name"})
    expect("create no name 400", "POST", "/api/v1/models", 400, {"description": "x"})
    expect("create bad JSON 400", "POST", "/api/v1/models", 400, b"{nope",
           {"Content-Type": "application/json"})
    expect("create bad labels 400", "POST", "/api/v1/models", 400,
           {"name": "x", "labels": {"a": 1}})
    for n in ("text-a", "text-b", "text-c"):
        expect("create " + n, "POST", "/api/v1/models", 201,
               {"name": n, "labels": {"team": "nlp"}}, {"X-Capstan-Actor": "alice"})
    j = expect("get model", "GET", "/api/v1/models/digits", 200) or {}
    check("model fields", j.get("description") == "8x8 digits" and j.get("aliases") == {}
          and j.get("labels") == {"team": "ml"}, j)
    expect("get unknown 404", "GET", "/api/v1/models/nope", 404)
    j = expect("list prefix", "GET", "/api/v1/models?prefix=text-", 200) or {}
    check("prefix filters", [m["name"] for m in j.get("items", [])] ==
          ["text-a", "text-b", "text-c"], j)
    j = expect("list selector", "GET", "/api/v1/models?selector=team%3Dml", 200) or {}
    check("selector filters", [m["name"] for m in j.get("items", [])] == ["digits"], j)
    j = expect("list desc", "GET", "/api/v1/models?order=desc&prefix=text-", 200) or {}
    check("desc order", [m["name"] for m in j.get("items", [])] ==
          ["text-c", "text-b", "text-a"], j)
    names, token, pages = [], None, 0
    while pages < 10:
        q = "?limit=2" + ("&page_token=" + token if token else "")
        j = expect("list page %d" % pages, "GET", "/api/v1/models" + q, 200) or {}
        names += [m["name"] for m in j.get("items", [])]
        token = j.get("next_page_token")
        pages += 1
        if not token:
            break
    check("pagination", names == ["digits", "text-a", "text-b", "text-c"] and pages == 2, names)
    expect("bad selector 400", "GET", "/api/v1/models?selector=%3D%3D", 400)
    expect("bad limit 400", "GET", "/api/v1/models?limit=0", 400)
    expect("bad order 400", "GET", "/api/v1/models?order=up", 400)
    expect("bad page token 400", "GET", "/api/v1/models?page_token=%21%21", 400)
    j = expect("patch model", "PATCH", "/api/v1/models/text-a", 200,
               {"description": "d", "labels": {"team": "search"}}) or {}
    check("patch applied", j.get("description") == "d" and j.get("labels") == {"team": "search"}, j)
    expect("patch unknown 404", "PATCH", "/api/v1/models/nope", 404, {"description": "d"})
    expect("patch bad description 400", "PATCH", "/api/v1/models/text-a", 400, {"description": 3})
    expect("delete model 204", "DELETE", "/api/v1/models/text-c", 204)
    expect("delete again 404", "DELETE", "/api/v1/models/text-c", 404)
    expect("method not allowed 405", "PUT", "/api/v1/models", 405)


def versions_api(seven):
    st, h, b = push("digits", DIGITS, {"X-Capstan-Label": "stage=dev",
                                       "X-Capstan-Source": "s3://models/digits.onnx",
                                       "X-Capstan-Actor": "ci"})
    j = jbody(b) or {}
    check("push v1 201", st == 201 and j.get("version") == 1 and
          h.get("location") == "/api/v1/models/digits/versions/1", (st, b[:300]))
    check("push records metadata", j.get("labels") == {"stage": "dev"} and
          j.get("lineage", {}).get("source_uri") == "s3://models/digits.onnx" and
          j.get("created_by") == "anonymous" and  # X-Capstan-Actor is not trusted
          j.get("digest") == "sha256:" + hashlib.sha256(DIGITS).hexdigest(), j)
    st, _, b = push("digits", seven, query="?label=stage%3Dstaging&run_id=r42")
    j = jbody(b) or {}
    check("push v2 by query 201", st == 201 and j.get("version") == 2 and
          j.get("labels") == {"stage": "staging"} and j["lineage"]["run_id"] == "r42", b[:300])
    digest = "sha256:" + hashlib.sha256(seven).hexdigest()
    st, _, b = push("digits", seven, {"X-Capstan-Digest": "sha256:" + "0" * 64})
    check("push digest mismatch 400", st == 400, (st, b))
    st, _, b = push("digits", seven, {"X-Capstan-Digest": digest})
    check("push with digest 201", st == 201 and (jbody(b) or {}).get("version") == 3, (st, b))
    st, _, b = push("digits", b"not an onnx file at all")
    check("push garbage 422", st == 422 and "error" in (jbody(b) or {}), (st, b))
    st, _, b = push("nope", DIGITS)
    check("push unknown model 404", st == 404, (st, b))
    st, _, b = push("digits", DIGITS, {"Content-Type": "text/plain"})
    check("push wrong content type 400", st == 400, (st, b))
    st, _, b = push("digits", DIGITS, {"X-Capstan-Label": "no-equals"})
    check("push bad label 400", st == 400, (st, b))
    # Declared past --max-artifact-size: refused before the body (raw, no body sent).
    s = socket.create_connection(("127.0.0.1", SRV.port))
    s.sendall(b"POST /api/v1/models/digits/versions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n"
              b"Expect: 100-continue\r\n\r\n" % (MAX_ARTIFACT + 1))
    s.settimeout(10)
    head = s.recv(4096)
    s.close()
    check("push too large 413", head.startswith(b"HTTP/1.1 413"), head[:100])

    j = expect("list versions", "GET", "/api/v1/models/digits/versions", 200) or {}
    check("versions listed", [v["version"] for v in j.get("items", [])] == [1, 2, 3], j)
    j = expect("list versions selector", "GET",
               "/api/v1/models/digits/versions?selector=stage%3Ddev", 200) or {}
    check("version selector", [v["version"] for v in j.get("items", [])] == [1], j)
    j = expect("list versions desc", "GET", "/api/v1/models/digits/versions?order=desc&limit=1",
               200) or {}
    check("versions desc page", [v["version"] for v in j.get("items", [])] == [3] and
          j.get("next_page_token"), j)
    expect("list versions unknown 404", "GET", "/api/v1/models/nope/versions", 404)
    j = expect("get version", "GET", "/api/v1/models/digits/versions/2", 200) or {}
    check("version io schema", j.get("io_schema", {}).get("inputs", [{}])[0].get("name") ==
          "image", j)
    j = expect("get latest", "GET", "/api/v1/models/digits/versions/latest", 200) or {}
    check("latest is 3", j.get("version") == 3, j)
    expect("get version 404", "GET", "/api/v1/models/digits/versions/99", 404)
    j = expect("patch version labels", "PATCH", "/api/v1/models/digits/versions/3", 200,
               {"labels": {"stage": "tmp"}}) or {}
    check("labels replaced", j.get("labels") == {"stage": "tmp"}, j)
    expect("patch bad state 400", "PATCH", "/api/v1/models/digits/versions/3", 400,
           {"state": "gone"})
    expect("patch non-number 400", "PATCH", "/api/v1/models/digits/versions/abc", 400, {})
    expect("patch unknown 404", "PATCH", "/api/v1/models/digits/versions/99", 404,
           {"state": "archived"})
    expect("delete version 3", "DELETE", "/api/v1/models/digits/versions/3", 204)
    expect("delete version again 404", "DELETE", "/api/v1/models/digits/versions/3", 404)
    expect("delete model with versions 409", "DELETE", "/api/v1/models/digits", 409)


def aliases_api():
    j = expect("put alias", "PUT", "/api/v1/models/digits/aliases/prod", 200, {"version": 1}) or {}
    check("alias body", j.get("name") == "prod" and j.get("version") == 1, j)
    expect("put alias bad version 400", "PUT", "/api/v1/models/digits/aliases/prod", 400,
           {"version": "x"})
    expect("put alias unknown version 404", "PUT", "/api/v1/models/digits/aliases/prod", 404,
           {"version": 99})
    expect("put reserved alias 400", "PUT", "/api/v1/models/digits/aliases/latest", 400,
           {"version": 1})
    expect("put canary", "PUT", "/api/v1/models/digits/aliases/canary", 200, {"version": 2})
    j = expect("list aliases", "GET", "/api/v1/models/digits/aliases", 200) or {}
    check("aliases listed", sorted(a["name"] for a in j.get("items", [])) == ["canary", "prod"], j)
    j = expect("model shows aliases", "GET", "/api/v1/models/digits", 200) or {}
    check("aliases in model", j.get("aliases") == {"canary": 2, "prod": 1}, j)
    j = expect("get by alias", "GET", "/api/v1/models/digits/versions/canary", 200) or {}
    check("alias resolves", j.get("version") == 2, j)
    expect("archive alias target 409", "PATCH", "/api/v1/models/digits/versions/2", 409,
           {"state": "archived"})
    expect("delete alias target 409", "DELETE", "/api/v1/models/digits/versions/1", 409)
    expect("delete alias", "DELETE", "/api/v1/models/digits/aliases/canary", 204)
    expect("delete alias again 404", "DELETE", "/api/v1/models/digits/aliases/canary", 404)


def serving():
    st, v, cls = infer("/v2/models/digits/infer")
    check("serves prod (v1)", (st, v, cls) == (200, "1", 1), (st, v, cls))
    st, v, cls = infer("/v2/models/digits/versions/2/infer")
    check("serves version 2", (st, v, cls) == (200, "2", 7), (st, v, cls))
    st, v, cls = infer("/v2/models/digits/versions/prod/infer")
    check("serves by alias", (st, v, cls) == (200, "1", 1), (st, v, cls))
    expect("metadata of a registered model", "GET", "/v2/models/digits", 200)
    expect("ready", "GET", "/v2/models/digits/versions/2/ready", 200)
    expect("unknown model 404", "POST", "/v2/models/nope/infer", 404, SAMPLE)
    expect("unknown version 404", "POST", "/v2/models/digits/versions/99/infer", 404, SAMPLE)
    expect("model without versions 404", "POST", "/v2/models/text-a/infer", 404, SAMPLE)


def hot_swap():
    """Four clients infer without pause while prod moves 1 -> 2 -> 1: nothing may fail and
    every request sent after a move has returned must get the new version."""
    stop = threading.Event()
    log, lock = [], threading.Lock()

    def client():
        while not stop.is_set():
            t0 = time.monotonic()
            try:
                st, v, cls = infer("/v2/models/digits/infer")
            except OSError as e:
                st, v, cls = str(e), None, None
            with lock:
                log.append((t0, time.monotonic(), st, v, cls))

    # Daemon threads, stopped however the moves end: a server that dies must fail the
    # test, not leave four clients looping until ctest's timeout.
    threads = [threading.Thread(target=client, daemon=True) for _ in range(4)]
    for t in threads:
        t.start()
    moves = []
    try:
        time.sleep(0.5)
        for target in (2, 1, 2):
            t0 = time.monotonic()
            st, _, b = request("PUT", "/api/v1/models/digits/aliases/prod", {"version": target})
            moves.append((t0, time.monotonic(), target, st))
            time.sleep(0.7)
    finally:
        stop.set()
        for t in threads:
            t.join()
    failed = [e for e in log if e[2] != 200]
    check("alias moves answered 200", all(m[3] == 200 for m in moves), moves)
    check("no failed request during moves (%d requests)" % len(log), not failed and len(log) > 50,
          failed[:5])
    # A request sent after a move returned and answered before the next one began must get
    # the moved-to version; those that overlap a move may get either.
    wrong = []
    for t0, t1, st, v, cls in log:
        for k, (_, end, target, _) in enumerate(moves):
            nxt = moves[k + 1][0] if k + 1 < len(moves) else float("inf")
            if st == 200 and end <= t0 and t1 < nxt:
                if v != str(target) or cls != (7 if target == 2 else 1):
                    wrong.append((t0, v, cls, target))
    check("answers switch with each move", not wrong, (wrong[:5], moves))
    check("both versions answered", {e[3] for e in log} == {"1", "2"}, {e[3] for e in log})


def concurrent_pushes():
    out, lock = [], threading.Lock()

    def one():
        st, _, b = push("digits", DIGITS)
        with lock:
            out.append((st, (jbody(b) or {}).get("version")))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    versions = [v for st, v in out if st == 201]
    check("8 concurrent pushes get 8 distinct versions",
          len(versions) == 8 and len(set(versions)) == 8, out)
    for v in versions:
        request("DELETE", "/api/v1/models/digits/versions/%d" % v)


def big_push(big):
    """A 24 MB artifact streams in although inference bodies stop at 1 MiB."""
    st, _, b = push("digits", big)
    j = jbody(b) or {}
    check("24 MB push streams past the 1 MiB body limit", st == 201 and j.get("size") == len(big),
          (st, b[:200]))
    if st == 201:
        request("DELETE", "/api/v1/models/digits/versions/%d" % j["version"])


def archive_and_state():
    # prod is on 2 after the swaps; version 1 is free to archive.
    j = expect("archive version 1", "PATCH", "/api/v1/models/digits/versions/1", 200,
               {"state": "archived"}) or {}
    check("archived", j.get("state") == "archived", j)
    expect("archived not served 404", "POST", "/v2/models/digits/versions/1/infer", 404, SAMPLE)
    expect("alias to archived 409", "PUT", "/api/v1/models/digits/aliases/canary", 409,
           {"version": 1})
    expect("restore version 1", "PATCH", "/api/v1/models/digits/versions/1", 200,
           {"state": "ready"})
    st, v, cls = infer("/v2/models/digits/versions/1/infer")
    check("restored is served", (st, v, cls) == (200, "1", 1), (st, v, cls))


def audit_and_gc():
    j = expect("audit", "GET", "/api/v1/audit?limit=5", 200) or {}
    items = j.get("items", [])
    check("audit newest first", len(items) == 5 and items[0]["id"] > items[-1]["id"] and
          j.get("next_page_token"), j)
    j2 = expect("audit page 2", "GET", "/api/v1/audit?limit=5&page_token=" +
                urllib.parse.quote(j.get("next_page_token") or ""), 200) or {}
    check("audit continues", j2.get("items") and j2["items"][0]["id"] < items[-1]["id"], j2)
    j = expect("audit by model", "GET", "/api/v1/audit?model=text-a&limit=100", 200) or {}
    acts = [e["action"] for e in j.get("items", [])]
    check("audit filtered", acts and all(e["model"] == "text-a" for e in j["items"]) and
          "model.created" in acts and j["items"][-1]["actor"] == "anonymous", acts)
    j = expect("audit of a move", "GET", "/api/v1/audit?model=digits&limit=100", 200) or {}
    check("alias moves audited", any(e["action"] == "alias.moved" for e in j.get("items", [])), j)
    expect("audit bad limit 400", "GET", "/api/v1/audit?limit=5000", 400)
    j = expect("gc dry run", "POST", "/api/v1/gc?dry_run=true", 200) or {}
    check("gc dry run reports", j.get("dry_run") is True and j.get("removed") == 0 and
          j.get("unreferenced", 0) >= 1, j)  # the garbage push and the big one left blobs
    j = expect("gc", "POST", "/api/v1/gc", 200) or {}
    check("gc removes", j.get("removed") == j.get("unreferenced") and j.get("removed", 0) >= 1, j)
    expect("gc bad flag 400", "POST", "/api/v1/gc?dry_run=maybe", 400)


class Hook(http.server.BaseHTTPRequestHandler):
    events = []

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        want = "sha256=" + hmac.new(b"s3cret", body, hashlib.sha256).hexdigest()
        Hook.events.append((self.headers.get("X-Capstan-Event"),
                            self.headers.get("X-Capstan-Signature") == want))
        self.send_response(204)
        self.end_headers()

    def log_message(self, *a):
        pass


def webhooks():
    deadline = time.time() + 10
    while time.time() < deadline and not any(e == "alias.moved" for e, _ in Hook.events):
        time.sleep(0.1)
    check("webhooks delivered and signed", Hook.events and all(ok for _, ok in Hook.events) and
          {"version.created", "alias.moved"} <= {e for e, _ in Hook.events}, Hook.events[:5])


# --- the CLI ----------------------------------------------------------------------------------


def cli(args, rc=0, name=None):
    env = dict(os.environ, CAPSTAN_SERVER="http://127.0.0.1:%d" % SRV.port)
    p = subprocess.run([CAPSTAN, "model"] + args, capture_output=True, text=True, env=env,
                       timeout=120)
    check("cli " + (name or " ".join(args)), p.returncode == rc,
          "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout[-300:], p.stderr[-300:]))
    return p


def cli_commands(seven_path):
    p = cli(["push", "cli-m", seven_path, "--label", "team=cli", "--alias", "prod", "--source",
             "file://x"])
    check("cli push output", "cli-m: version 1" in p.stdout and "cli-m@prod -> 1" in p.stdout,
          p.stdout)
    p = cli(["push", "cli-m", os.path.join(ROOT, "models/digits.onnx"), "--json"])
    check("cli push --json", (jbody(p.stdout) or {}).get("version") == 2, p.stdout)
    st, v, cls = infer("/v2/models/cli-m/infer")
    check("cli-pushed prod served", (st, v, cls) == (200, "1", 7), (st, v, cls))
    p = cli(["ls"])
    check("cli ls table", "NAME" in p.stdout and "cli-m" in p.stdout, p.stdout)
    p = cli(["ls", "--json", "--prefix", "cli-"])
    items = (jbody(p.stdout) or {}).get("items", [])
    check("cli ls --json --prefix", [m["name"] for m in items] == ["cli-m"], p.stdout)
    p = cli(["ls", "cli-m", "--json", "--selector", "team=cli"])
    items = (jbody(p.stdout) or {}).get("items", [])
    check("cli ls versions --selector", [v["version"] for v in items] == [1], p.stdout)
    p = cli(["ls", "cli-m"])
    check("cli ls versions", "VERSION" in p.stdout and "team=cli" in p.stdout, p.stdout)
    p = cli(["ls", "--limit", "1"])
    check("cli ls continues", "--page-token" in p.stderr, p.stderr)
    p = cli(["show", "cli-m"])
    check("cli show model (described: aliases as k=v)", "\n  prod=1\n" in p.stdout, p.stdout)
    p = cli(["show", "cli-m:2", "--json"])
    check("cli show version", (jbody(p.stdout) or {}).get("version") == 2, p.stdout)
    p = cli(["show", "cli-m@prod", "--json"])
    check("cli show alias", (jbody(p.stdout) or {}).get("version") == 1, p.stdout)
    cli(["alias", "set", "cli-m", "prod", "2"])
    st, v, cls = infer("/v2/models/cli-m/infer")
    check("cli alias move served", (st, v, cls) == (200, "2", 1), (st, v, cls))
    cli(["alias", "set", "cli-m", "canary", "1"])
    cli(["archive", "cli-m:1"], rc=1, name="archive alias target fails")
    cli(["alias", "rm", "cli-m", "canary"])
    cli(["archive", "cli-m:1"])
    cli(["archive", "cli-m:1", "--restore"])
    cli(["rm", "cli-m"], rc=1, name="rm model with versions fails")
    p = cli(["rm", "cli-m:9"], rc=1, name="rm unknown version fails")
    check("cli error line", p.stderr.startswith("capstan: model: ") and "HTTP 404" in p.stderr,
          p.stderr)
    cli(["rm", "cli-m:1"])
    p = cli(["audit", "cli-m"])
    check("cli audit", "version.deleted" in p.stdout and "alias.moved" in p.stdout, p.stdout)
    p = cli(["audit", "--json", "--limit", "2"])
    check("cli audit --json", len((jbody(p.stdout) or {}).get("items", [])) == 2, p.stdout)
    p = cli(["gc"])
    check("cli gc is a dry run without --yes", "dry run" in p.stdout and "0 removed" in p.stdout,
          p.stdout)
    p = cli(["gc", "--yes", "--json"])
    j = jbody(p.stdout) or {}
    check("cli gc --yes removes", "removed" in j and j.get("dry_run") is not True, p.stdout)
    cli(["show", "nope"], rc=1, name="show unknown fails")
    cli(["bogus"], rc=2, name="unknown subcommand is a usage error")
    cli(["push", "x"], rc=2, name="push without a file is a usage error")
    cli(["alias", "set", "cli-m", "prod", "x"], rc=2, name="alias set bad version usage error")
    cli(["push", "x", "/nonexistent.onnx"], rc=1, name="push missing file fails")
    cli(["ls", "--server", "http://127.0.0.1:1"], rc=1, name="unreachable server fails")
    cli(["--help"], rc=0, name="help")


# --- gc during a push ------------------------------------------------------------------------


def gc_during_push(big):
    """gc while a push's body stalls (issue 10, item 1): gc used to wait on its request thread
    for the push, which needs request threads to finish, and every request hung. Now both gc
    calls answer 503 with Retry-After at once, other requests are served, the push completes
    and a gc after it runs."""
    s = socket.create_connection(("127.0.0.1", SRV.port))
    s.settimeout(60)
    s.sendall(b"POST /api/v1/models/digits/versions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(big))
    s.sendall(big[:1 << 20])
    tmpdir = os.path.join(DATA, "blobs", "tmp")
    for _ in range(100):  # until the push has started writing its temporary file
        if os.listdir(tmpdir):
            break
        time.sleep(0.02)
    answers = []

    def gc(q):
        try:
            answers.append(request("POST", "/api/v1/gc" + q, timeout=5)[:2])
        except OSError as e:
            answers.append((repr(e), {}))
    calls = [threading.Thread(target=gc, args=(q,)) for q in ("?dry_run=true", "")]
    t0 = time.monotonic()
    for t in calls:
        t.start()
    for t in calls:
        t.join()
    check("gc during a stalled push answers 503 with Retry-After",
          [a[0] for a in answers] == [503, 503] and
          all(a[1].get("retry-after") == "1" for a in answers), answers)
    for name, path in (("health", "/v2/health/ready"), ("listing", "/api/v1/models")):
        try:
            st = request("GET", path, timeout=5)[0]
        except OSError as e:
            st = repr(e)
        check("%s answered during a stalled push and gc" % name, st == 200, st)
    check("answers during the stalled push took under 5 s", time.monotonic() - t0 < 5)
    s.sendall(big[1 << 20:])
    reply = s.recv(4096)
    s.close()
    check("the stalled push completes after gc", reply.startswith(b"HTTP/1.1 201"), reply[:200])
    expect("gc after the push", "POST", "/api/v1/gc?dry_run=true", 200)


# --- kill -9 mid-push ------------------------------------------------------------------------


def kill_mid_push(big):
    """SIGKILL while a push streams: after a restart no version appeared, the database is
    sound, and gc finds only the interrupted temporary file."""
    global SRV
    before = [v["version"] for v in
              (jbody(request("GET", "/api/v1/models/digits/versions")[2]) or {})["items"]]
    s = socket.create_connection(("127.0.0.1", SRV.port))
    s.sendall(b"POST /api/v1/models/digits/versions HTTP/1.1\r\nHost: x\r\n"
              b"Content-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n" % len(big))
    s.sendall(big[:len(big) // 2])
    tmpdir = os.path.join(DATA, "blobs", "tmp")
    for _ in range(100):  # until the push has started writing its temporary file
        if os.listdir(tmpdir):
            break
        time.sleep(0.02)
    SRV.kill()
    s.close()
    if not PG:
        db = sqlite3.connect(os.path.join(DATA, "registry.db"))
        check("sqlite integrity after kill -9", db.execute("PRAGMA integrity_check").fetchone()[0]
              == "ok")
        db.close()
    SRV = Server()
    after = [v["version"] for v in
             (jbody(request("GET", "/api/v1/models/digits/versions")[2]) or {})["items"]]
    check("no partial version after kill -9", after == before, (before, after))
    j = expect("gc after kill -9", "POST", "/api/v1/gc", 200) or {}
    check("gc removes the interrupted upload", j.get("removed", 0) >= 1 and not os.listdir(tmpdir),
          (j, os.listdir(tmpdir)))
    st, _, b = push("digits", DIGITS)
    check("push works after restart", st == 201, (st, b))
    st, v, cls = infer("/v2/models/digits/infer")
    check("serves after restart", st == 200 and v == "2" and cls == 7, (st, v, cls))


def main():
    global SRV
    os.makedirs(DATA, exist_ok=True)
    seven, big, seven_path = make_artifacts()
    hook = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=hook.serve_forever, daemon=True).start()
    secret = os.path.join(TMP, "secret")
    open(secret, "w").write("s3cret\n")
    print("back end: %s" % ("PostgreSQL" if PG else "SQLite"), flush=True)
    SRV = Server(["--webhook", "http://127.0.0.1:%d/hook" % hook.server_address[1],
                  "--webhook-secret-file", secret])
    try:
        models_api()
        versions_api(seven)
        aliases_api()
        serving()
        hot_swap()
        concurrent_pushes()
        big_push(big)
        archive_and_state()
        audit_and_gc()
        webhooks()
        cli_commands(seven_path)
        gc_during_push(big)
        kill_mid_push(big)
        check("server exits 0 on SIGTERM", SRV.stop() == 0)
    except Exception as e:  # a crash of the test itself is a failure, not a traceback only
        check("test ran to the end", False, repr(e))
        if SRV.proc.poll() is None:
            SRV.kill()
    hook.shutdown()
    if check.failed:
        os.system("tail -n 30 %s" % os.path.join(TMP, "server.log"))
    sys.exit(check.summary("registry_api"))


main()
