"""ui_http_test.py - the dashboard's files and its event stream over plain HTTP, against a
server started by test_ui_http.sh with --auth tokens and the digits model.

Usage: ui_http_test.py URL ADMIN_TOKEN ROOT. Prints one PASS/FAIL line per check.
"""
import gzip
import json
import re
import socket
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, sys.argv[3] + "/tests/lib")
from capstan_http import Checks, jbody, request  # noqa: E402

URL, ADMIN, ROOT = sys.argv[1:4]
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
SAMPLE = json.load(open(ROOT + "/models/digits.sample.json"))["request"]


check = Checks(limit=400)


def call(method, path, body=None, headers=None, token=None):
    h = dict(headers or {})
    if token:
        h["Authorization"] = "Bearer " + token
    return request(HOST, PORT, method, path, body, h)


# --- the files ------------------------------------------------------------------------------
st, hd, index = call("GET", "/ui")
check("GET /ui is public and HTML", st == 200 and hd.get("content-type") == "text/html; charset=utf-8",
      (st, hd))
check("index.html is no-cache with an ETag", hd.get("cache-control") == "no-cache" and
      re.fullmatch(r'"[0-9a-f]{16}"', hd.get("etag", "")), hd)
check("the page allows only its own files (CSP)", "default-src 'self'" in
      hd.get("content-security-policy", ""), hd)
st2, _, index2 = call("GET", "/ui/")
check("/ui/ is the same page", st2 == 200 and index2 == index, st2)
st, hd304, b = call("GET", "/ui", headers={"If-None-Match": hd["etag"]})
check("If-None-Match with its ETag is 304 without a body", st == 304 and b == b"", (st, b[:50]))
links = re.findall(rb'"/ui/([a-z.]+)\?v=([0-9a-f]{16})"', index)
names = sorted({n.decode() for n, _ in links})
check("index links app.js, app.css and icon.svg by hash", names == ["app.css", "app.js", "icon.svg"],
      names)
types = {"app.js": "text/javascript; charset=utf-8", "app.css": "text/css; charset=utf-8",
         "icon.svg": "image/svg+xml"}
for n, v in {(n.decode(), v.decode()) for n, v in links}:
    st, hd, body = call("GET", "/ui/%s?v=%s" % (n, v))
    check("%s: its content type" % n, st == 200 and hd.get("content-type") == types[n], (st, hd))
    check("%s: immutable under its hash, whose ETag it is" % n,
          hd.get("cache-control") == "public, max-age=31536000, immutable" and
          hd.get("etag") == '"%s"' % v, hd)
    check("%s: nosniff" % n, hd.get("x-content-type-options") == "nosniff", hd)
    st, hz, zb = call("GET", "/ui/%s?v=%s" % (n, v), headers={"Accept-Encoding": "br, gzip"})
    check("%s: gzip when accepted, the same bytes" % n, st == 200 and
          hz.get("content-encoding") == "gzip" and gzip.decompress(zb) == body and
          len(zb) < len(body) and hz.get("vary") == "Accept-Encoding", (st, hz))
    st, hq, qb = call("GET", "/ui/%s?v=%s" % (n, v), headers={"Accept-Encoding": "gzip;q=0"})
    check("%s: gzip;q=0 is identity" % n, st == 200 and "content-encoding" not in hq and qb == body,
          hq)
    st, hs, _ = call("GET", "/ui/" + n)
    check("%s: without its hash it is no-cache" % n, hs.get("cache-control") == "no-cache", hs)
    st, hs, _ = call("GET", "/ui/%s?v=0000000000000000" % n)
    check("%s: under a stale hash it is no-cache" % n, hs.get("cache-control") == "no-cache", hs)
st, _, b = call("GET", "/ui/missing.js")
check("an unknown file is 404 with an error", st == 404 and "missing.js" in (jbody(b) or {}).get(
    "error", ""), (st, b))
st, hd, b = call("POST", "/ui")
check("POST /ui is 405", st == 405 and hd.get("allow") == "GET", (st, hd))
st, hd, b = call("HEAD", "/ui")
check("HEAD /ui: headers, no body", st == 200 and b == b"" and "etag" in hd, (st, hd))

# --- whoami and tokens ----------------------------------------------------------------------
st, _, b = call("POST", "/api/v1/tokens", {"name": "watcher", "role": "viewer"}, token=ADMIN)
VIEWER = (jbody(b) or {}).get("token")
check("a viewer token", st == 201 and VIEWER, (st, b))
st, _, b = call("GET", "/api/v1/whoami")
check("whoami without a token: role none, auth on", st == 200 and jbody(b) == {
    "name": "anonymous", "role": "none", "auth": True}, (st, b))
st, _, b = call("GET", "/api/v1/whoami", token="csk_not_a_token")
check("whoami with a bad token: role none, still 200", st == 200 and jbody(b)["role"] == "none",
      (st, b))
st, _, b = call("GET", "/api/v1/whoami", token=VIEWER)
check("whoami with the viewer token", st == 200 and jbody(b) == {
    "name": "watcher", "role": "viewer", "auth": True}, (st, b))
st, hd, b = call("GET", "/api/v1/stream")
check("the stream needs a token (401)", st == 401 and "www-authenticate" in hd, (st, hd))


# --- the stream -----------------------------------------------------------------------------
def open_stream(token):
    s = socket.create_connection((HOST, PORT), timeout=10)
    s.sendall(("GET /api/v1/stream HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n"
               % token).encode())
    return s


def read_head(s):
    buf = b""
    while b"\r\n\r\n" not in buf:
        c = s.recv(4096)
        if not c:
            break
        buf += c
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head.decode("latin-1"), rest


def events(s, rest, n, secs):
    """Up to n events (the JSON of each data: line) read within secs."""
    out, buf, end = [], rest, time.time() + secs
    while len(out) < n and time.time() < end:
        for m in re.finditer(rb"data: (\{.*?\})\n\n", buf):
            out.append(json.loads(m.group(1)))
        buf = buf[buf.rfind(b"\n\n") + 2:] if out else buf
        if len(out) >= n:
            break
        s.settimeout(max(0.1, end - time.time()))
        try:
            c = s.recv(65536)
        except socket.timeout:
            break
        if not c:
            break
        buf += c
    return out


stop = threading.Event()


def load():
    while not stop.is_set():
        request(HOST, PORT, "POST", "/v2/models/digits/infer", SAMPLE,
                {"Authorization": "Bearer " + ADMIN})
        time.sleep(0.005)


s = open_stream(VIEWER)
head, rest = read_head(s)
check("the stream is text/event-stream, chunked, no-cache", head.startswith("HTTP/1.1 200") and
      "Content-Type: text/event-stream" in head and "Cache-Control: no-cache" in head, head)
loader = threading.Thread(target=load, daemon=True)
loader.start()
evs = events(s, rest, 4, 8)
stop.set()
loader.join()
s.close()
check("an event a second", len(evs) == 4 and all(
    900 <= b["t"] - a["t"] <= 1600 for a, b in zip(evs, evs[1:])), [e.get("t") for e in evs])
last = [m for m in (evs[-1]["models"] if evs else []) if m["name"] == "digits"]
check("each event has the digits model with every field", len(last) == 1 and set(last[0]) == {
    "name", "version", "throughput", "errors", "p50_ms", "p99_ms", "queue", "batch"}, evs[-1:])
check("under load: throughput, p50 <= p99, a batch size", bool(last) and last[0]["throughput"] > 10
      and last[0]["p50_ms"] is not None and 0 < last[0]["p50_ms"] <= last[0]["p99_ms"] and
      last[0]["batch"] >= 1 and last[0]["errors"] == 0, last)
check("each event lists deployments", all(isinstance(e.get("deployments"), list) for e in evs), evs[:1])

# At most 16 streams; inference is not starved by them, and a closed one frees its slot (at
# its next events, when a write finds the socket closed: the one above, within two seconds).
time.sleep(3)
streams = [open_stream(VIEWER) for _ in range(16)]
heads = [read_head(x)[0] for x in streams]
check("16 streams open at once", all(x.startswith("HTTP/1.1 200") for x in heads),
      [x.split("\r\n")[0] for x in heads])
t0 = time.time()
st, _, b = request(HOST, PORT, "POST", "/v2/models/digits/infer", SAMPLE,
                   {"Authorization": "Bearer " + ADMIN})
check("inference answers at once with 16 streams open", st == 200 and time.time() - t0 < 1,
      (st, time.time() - t0))
st, hd, b = call("GET", "/api/v1/stream", token=VIEWER)
check("the 17th stream is 503 with Retry-After and why", st == 503 and "retry-after" in hd and
      "16 dashboard streams" in (jbody(b) or {}).get("error", ""), (st, hd, b))
for x in streams:
    x.close()
ok = False
for _ in range(30):  # the server sees the closes within two events
    time.sleep(0.2)
    x = open_stream(VIEWER)
    head, _ = read_head(x)
    x.close()
    if head.startswith("HTTP/1.1 200"):
        ok = True
        break
check("closed streams free their slots", ok, head)
# A stream left open when the server stops: the caller's SIGTERM must still exit at once.
LEFT_OPEN = open_stream(VIEWER)
read_head(LEFT_OPEN)
print("READY")
sys.stdout.flush()
sys.stdin.read()
