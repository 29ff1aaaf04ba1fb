"""A version's description and lineage, and its download, over HTTP and through the CLI.

Usage: lineage_api_test.py CAPSTAN ROOT TMPDIR [POSTGRES_URL]   (test_lineage_api.sh)

Starts `capstan serve` on a free 127.0.0.1 port, on SQLite in TMPDIR/data or on
POSTGRES_URL, and checks: push metadata by header and by query (description, run id,
source, parent), a parent that must exist, each length limit with its message, text that is
not UTF-8; `model show` in describe, json and yaml; GET .../versions/{v}/artifact with its
headers (ETag, Digest, X-Capstan-Digest/-Version, 304 on If-None-Match, HEAD); `model pull`
by number, alias and latest, refusing an existing file without --force; a download corrupted
in transit (a proxy that flips one byte) and a blob corrupted on the server's disk, both of
which must leave no file and exit 1 with one line; and the route's read permission with
tokens on. Prints one PASS/FAIL line per check and `lineage_api: N passed, M failed`.
"""
import base64
import glob
import hashlib
import http.client
import http.server
import json
import os
import subprocess
import sys
import threading

import onnx

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import capstan_http  # noqa: E402
from capstan_http import jbody  # noqa: E402

CAPSTAN, ROOT, TMP = sys.argv[1:4]
PG = sys.argv[4] if len(sys.argv) > 4 and sys.argv[4] else None
DIGITS = open(os.path.join(ROOT, "models/digits.onnx"), "rb").read()
SHA = "sha256:" + hashlib.sha256(DIGITS).hexdigest()


check = capstan_http.Checks()


class Server(capstan_http.Serve):
    """A `capstan serve` on data (or PG), live when the constructor returns."""

    def __init__(self, data, extra=()):
        self.data = data
        args = ["--data-dir", data] + (["--registry", PG] if PG else [])
        super().__init__(CAPSTAN, args + list(extra), os.path.join(TMP, "server.log"))
        if not self.wait_live():
            raise RuntimeError("the server did not start; see server.log")

    def request(self, method, path, body=None, headers=None):
        return capstan_http.request("127.0.0.1", self.port, method, path, body, headers, 60)


SRV = None


def push(model, data=DIGITS, headers=None, query=""):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return SRV.request("POST", "/api/v1/models/%s/versions%s" % (model, query), data, h)


def cli(args, rc=0, name=None, server=None, env_extra=None):
    env = dict(os.environ, CAPSTAN_SERVER=server or "http://127.0.0.1:%d" % SRV.port)
    env.update(env_extra or {})
    p = subprocess.run([CAPSTAN, "model"] + args, capture_output=True, text=True, env=env,
                       timeout=120)
    check("cli " + (name or " ".join(args)), p.returncode == rc,
          "exit %d, stdout %r, stderr %r" % (p.returncode, p.stdout[-300:], p.stderr[-300:]))
    return p


def error_of(b):
    return (jbody(b) or {}).get("error", "")


def version_count(model):
    st, _, b = SRV.request("GET", "/api/v1/models/%s/versions" % model)
    return len((jbody(b) or {}).get("items", [])) if st == 200 else -1


def unique_artifact(tag):
    """digits.onnx with its own doc string: loadable, and a blob of its own."""
    m = onnx.load_from_string(DIGITS)
    m.doc_string = tag
    return m.SerializeToString()


# --- pushing metadata ------------------------------------------------------------------------


def push_metadata():
    SRV.request("POST", "/api/v1/models", {"name": "lin"})
    desc = "8x8 digits \u2014 r\u00e9-entra\u00een\u00e9"
    st, _, b = push("lin", headers={"X-Capstan-Description": desc.encode("utf-8"),
                                    "X-Capstan-Run-Id": "run-1",
                                    "X-Capstan-Source": "s3://bucket/lin.onnx"})
    j = jbody(b) or {}
    check("push with description by header 201", st == 201 and j.get("version") == 1, (st, b))
    check("push records description and lineage", j.get("description") == desc and
          j.get("lineage", {}).get("run_id") == "run-1" and
          j["lineage"].get("source_uri") == "s3://bucket/lin.onnx" and
          j["lineage"].get("parent_version") == "", j)
    st, _, b = push("lin", query="?description=second%20one&parent_version=1&run_id=run-2")
    j = jbody(b) or {}
    check("push by query with parent 201", st == 201 and j.get("description") == "second one" and
          j.get("lineage", {}).get("parent_version") == "1", (st, b))
    SRV.request("PUT", "/api/v1/models/lin/aliases/prod", {"version": 1})
    st, _, b = push("lin", headers={"X-Capstan-Parent-Version": "prod"})
    j = jbody(b) or {}
    check("parent by alias is stored as its number", st == 201 and
          j.get("lineage", {}).get("parent_version") == "1", (st, b))
    st, _, b = SRV.request("GET", "/api/v1/models/lin/versions/1")
    check("version JSON has the description", (jbody(b) or {}).get("description") == desc, b)

    before = version_count("lin")
    st, _, b = push("lin", headers={"X-Capstan-Parent-Version": "9"})
    check("unknown parent 400 naming field and version", st == 400 and
          "parent_version '9'" in error_of(b) and "no version 9" in error_of(b), (st, b))
    st, _, b = push("lin", headers={"X-Capstan-Parent-Version": "canary"})
    check("unknown parent alias 400", st == 400 and "no alias 'canary'" in error_of(b), (st, b))
    for field, header, limit in (("description", "X-Capstan-Description", 4096),
                                 ("source_uri", "X-Capstan-Source", 2048),
                                 ("run_id", "X-Capstan-Run-Id", 256)):
        st, _, b = push("lin", headers={header: "a" * (limit + 1)})
        check("%s over %d bytes 413 naming the limit" % (field, limit), st == 413 and
              "%s is %d bytes: at most %d are allowed" % (field, limit + 1, limit) in error_of(b),
              (st, b))
    st, _, b = push("lin", headers={"X-Capstan-Description": b"bad \xff byte"})
    check("description not UTF-8 400", st == 400 and "not valid UTF-8" in error_of(b), (st, b))
    check("refused pushes stored nothing", version_count("lin") == before, version_count("lin"))


def cli_push_and_show():
    p = cli(["push", "lin", os.path.join(ROOT, "models/digits.onnx"), "--description",
             "from the CLI", "--run-id", "run-cli", "--source-uri", "file:///models/x.onnx",
             "--parent", "2", "-o", "json"])
    j = jbody(p.stdout) or {}
    v = j.get("version")
    check("cli push records the fields", j.get("description") == "from the CLI" and
          j.get("lineage", {}).get("run_id") == "run-cli" and
          j["lineage"].get("source_uri") == "file:///models/x.onnx" and
          j["lineage"].get("parent_version") == "2", p.stdout)
    p = cli(["show", "lin:%s" % v])
    check("show describes description and lineage", "Description: from the CLI" in p.stdout and
          "Parent Version: 2" in p.stdout and "Run ID:         run-cli" in p.stdout, p.stdout)
    p = cli(["show", "lin:%s" % v, "-o", "yaml"])
    check("show -o yaml has them", "description: from the CLI" in p.stdout and
          "parent_version: \"2\"" in p.stdout, p.stdout)
    p = cli(["show", "lin:%s" % v, "-o", "json"])
    check("show -o json has them", (jbody(p.stdout) or {}).get("description") == "from the CLI",
          p.stdout)
    n = version_count("lin")
    p = cli(["push", "lin", os.path.join(ROOT, "models/digits.onnx"), "--parent", "99"], rc=1,
            name="push --parent 99 fails")
    check("cli names the parent", "parent_version '99'" in p.stderr and
          len(p.stderr.strip().splitlines()) == 1, p.stderr)
    p = cli(["push", "lin", os.path.join(ROOT, "models/digits.onnx"), "--description",
             "d" * 4097], rc=2, name="push --description too long is a usage error")
    check("cli names the description limit", "--description is 4097 bytes: at most 4096" in
          p.stderr, p.stderr)
    p = cli(["push", "lin", os.path.join(ROOT, "models/digits.onnx"), "--run-id", "r" * 257],
            rc=2, name="push --run-id too long is a usage error")
    check("nothing pushed by the refused CLI pushes", version_count("lin") == n, n)


# --- downloading ------------------------------------------------------------------------------


def artifact_api():
    st, h, b = SRV.request("GET", "/api/v1/models/lin/versions/1/artifact")
    check("artifact 200 with the bytes", st == 200 and b == DIGITS, (st, len(b)))
    check("artifact content type", h.get("content-type") == "application/octet-stream", h)
    b64 = base64.b64encode(hashlib.sha256(DIGITS).digest()).decode()
    check("artifact digest headers", h.get("etag") == '"%s"' % SHA and
          h.get("digest") == "sha-256=" + b64 and h.get("x-capstan-digest") == SHA and
          h.get("x-capstan-version") == "1", h)
    st, h, b = SRV.request("GET", "/api/v1/models/lin/versions/prod/artifact")
    check("artifact by alias", st == 200 and h.get("x-capstan-version") == "1", (st, h))
    st, h, b = SRV.request("GET", "/api/v1/models/lin/versions/latest/artifact")
    check("artifact of latest", st == 200 and int(h.get("x-capstan-version", 0)) >= 3, (st, h))
    st, h, b = SRV.request("GET", "/api/v1/models/lin/versions/1/artifact",
                           headers={"If-None-Match": '"%s"' % SHA})
    check("If-None-Match 304", st == 304 and b == b"" and h.get("etag") == '"%s"' % SHA, (st, h))
    st, h, b = SRV.request("HEAD", "/api/v1/models/lin/versions/1/artifact")
    check("HEAD has the length", st == 200 and h.get("content-length") == str(len(DIGITS)) and
          b == b"", (st, h))
    st, _, b = SRV.request("GET", "/api/v1/models/lin/versions/99/artifact")
    check("artifact of unknown version 404", st == 404 and "no version 99" in error_of(b), b)
    st, _, b = SRV.request("GET", "/api/v1/models/nope/versions/1/artifact")
    check("artifact of unknown model 404", st == 404, b)
    st, _, b = SRV.request("POST", "/api/v1/models/lin/versions/1/artifact")
    check("artifact is GET only 405", st == 405, b)


def leftovers(d):
    return [f for f in os.listdir(d) if ".pull-" in f]


def cli_pull():
    d = os.path.join(TMP, "pulls")
    os.makedirs(d, exist_ok=True)
    out = os.path.join(d, "m.onnx")
    p = cli(["pull", "lin:1", "-o", out])
    check("pull writes the artifact", os.path.exists(out) and open(out, "rb").read() == DIGITS and
          "lin:1 -> " in p.stdout and SHA in p.stdout, p.stdout)
    um = os.umask(0)
    os.umask(um)
    mode = os.stat(out).st_mode & 0o777
    check("pulled file has the umask's mode", mode == 0o666 & ~um, oct(mode))
    open(out, "wb").write(b"keep me")
    p = cli(["pull", "lin@prod", "-o", out], rc=1, name="pull onto an existing file fails")
    check("existing file kept, message names --force", open(out, "rb").read() == b"keep me" and
          "--force" in p.stderr and len(p.stderr.strip().splitlines()) == 1, p.stderr)
    cli(["pull", "lin@prod", "-o", out, "--force"], name="pull --force replaces")
    check("forced pull wrote the artifact", open(out, "rb").read() == DIGITS)
    latest = os.path.join(d, "latest.onnx")
    p = cli(["pull", "lin", "-o", latest], name="pull latest")
    check("pull latest names the version", os.path.exists(latest) and " -> " in p.stdout, p.stdout)
    missing = os.path.join(d, "none.onnx")
    cli(["pull", "lin:99", "-o", missing], rc=1, name="pull unknown version fails")
    check("no file for an unknown version", not os.path.exists(missing))
    cli(["pull", "lin:1"], rc=2, name="pull without -o is a usage error")
    cli(["pull", "lin:1", "--json", "-o", os.path.join(d, "j.onnx")], name="pull takes --json")
    check("no temporary files left", not leftovers(d), leftovers(d))


class Corrupting(http.server.BaseHTTPRequestHandler):
    """Forwards GETs to the real server; flips one byte of every artifact body on its way."""
    upstream = None

    def do_GET(self):
        c = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        c.request("GET", self.path, headers={k: v for k, v in self.headers.items()
                                             if k.lower() != "host"})
        r = c.getresponse()
        body = bytearray(r.read())
        if self.path.endswith("/artifact") and r.status == 200:
            body[len(body) // 2] ^= 0x01
        self.send_response(r.status)
        for k, v in r.getheaders():
            if k.lower() not in ("content-length", "transfer-encoding", "connection"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(bytes(body))
        c.close()

    def log_message(self, *a):
        pass


def corrupted_downloads():
    d = os.path.join(TMP, "corrupt")
    os.makedirs(d, exist_ok=True)
    Corrupting.upstream = SRV.port
    proxy = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Corrupting)
    threading.Thread(target=proxy.serve_forever, daemon=True).start()
    out = os.path.join(d, "m.onnx")
    p = cli(["pull", "lin:1", "-o", out], rc=1, name="pull corrupted in transit fails",
            server="http://127.0.0.1:%d" % proxy.server_address[1])
    check("transit corruption: one line naming both digests, no file", not os.path.exists(out) and
          len(p.stderr.strip().splitlines()) == 1 and SHA in p.stderr and
          "was not written" in p.stderr, p.stderr)
    proxy.shutdown()

    # A blob corrupted on the server's disk (same size, one byte flipped): the server cuts the
    # stream short rather than hand out the whole file, and the CLI keeps nothing.
    art = unique_artifact("corrupt-me")
    st, _, b = push("lin", art)
    v = (jbody(b) or {}).get("version")
    digest = hashlib.sha256(art).hexdigest()
    blob = os.path.join(SRV.data, "blobs", "sha256", digest[:2], digest[2:])
    ok = check("unique blob stored", st == 201 and os.path.exists(blob), (st, blob))
    if ok:
        data = bytearray(open(blob, "rb").read())
        data[100] ^= 0x01
        os.chmod(blob, 0o644)
        open(blob, "wb").write(bytes(data))
        try:
            st, h, b = SRV.request("GET", "/api/v1/models/lin/versions/%d/artifact" % v)
            whole = st == 200 and len(b) == len(art)
        except http.client.IncompleteRead:
            whole = False
        check("server never sends a corrupt blob whole", not whole)
        out = os.path.join(d, "disk.onnx")
        p = cli(["pull", "lin:%d" % v, "-o", out], rc=1, name="pull of a corrupt blob fails")
        check("disk corruption: one line, no file", not os.path.exists(out) and
              len(p.stderr.strip().splitlines()) == 1, p.stderr)
        log = open(os.path.join(TMP, "server.log"), "rb").read()
        check("server logs the corrupt version", b"no longer matches its digest" in log)
    check("no temporary files left after failures", not leftovers(d), leftovers(d))


def permissions():
    """With tokens on, the artifact route needs a viewer token (401 without), which cannot
    push (403)."""
    global SRV
    SRV.stop()
    SRV = Server(os.path.join(TMP, "data"), ["--auth", "tokens"])
    admin = open(os.path.join(TMP, "data", "admin.token")).read().strip()
    st, _, b = SRV.request("POST", "/api/v1/tokens", {"name": "reader", "role": "viewer"},
                           {"Authorization": "Bearer " + admin})
    viewer = (jbody(b) or {}).get("token", "")
    check("viewer token created", st == 201 and viewer, (st, b))
    st, _, _ = SRV.request("GET", "/api/v1/models/lin/versions/1/artifact")
    check("artifact without a token 401", st == 401, st)
    st, _, b = SRV.request("GET", "/api/v1/models/lin/versions/1/artifact",
                           headers={"Authorization": "Bearer " + viewer})
    check("artifact with a viewer token 200", st == 200 and b == DIGITS, st)
    st, _, _ = push("lin", headers={"Authorization": "Bearer " + viewer})
    check("viewer cannot push 403", st == 403, st)
    out = os.path.join(TMP, "viewer.onnx")
    cli(["pull", "lin:1", "-o", out], name="viewer pulls", env_extra={"CAPSTAN_TOKEN": viewer})
    check("viewer's pull wrote the artifact", os.path.exists(out) and
          open(out, "rb").read() == DIGITS)


def main():
    global SRV
    data = os.path.join(TMP, "data")
    os.makedirs(data, exist_ok=True)
    print("back end: %s" % ("PostgreSQL" if PG else "SQLite"), flush=True)
    SRV = Server(data, ["--auth", "none"])
    try:
        push_metadata()
        cli_push_and_show()
        artifact_api()
        cli_pull()
        corrupted_downloads()
        permissions()
        check("server exits 0 on SIGTERM", SRV.stop() == 0)
    except Exception as e:  # a crash of the test itself is a failure, not a traceback only
        check("test ran to the end", False, repr(e))
        if SRV.proc.poll() is None:
            SRV.proc.kill()
            SRV.proc.wait()
    if check.failed:
        os.system("tail -n 30 %s" % os.path.join(TMP, "server.log"))
    sys.exit(check.summary("lineage_api"))


main()
