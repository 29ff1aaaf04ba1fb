"""limits_test.py - the resource bounds of issue 10 against a running server.

Usage: limits_test.py PHASE PORT PID. PHASE bounded: a server with --max-session-memory 64Mi
and --max-response-size 1Mi; defaults: one with the defaults and --request-timeout 3. PID is
the server's, for its resident memory. Prints one PASS/FAIL line per check.
"""
import os
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(__file__), "..", "lib"))
from capstan_http import Checks, jbody, request  # noqa: E402

PHASE, PORT, PID = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
MIB = 1 << 20


check = Checks()


def call(method, path, body=None):
    st, _, b = request("127.0.0.1", PORT, method, path, body)
    j = jbody(b)
    return st, j if isinstance(j, dict) else {}, b


def rss():
    with open("/proc/%d/status" % PID) as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def tile(n, binary=False):
    body = {"inputs": [{"name": "x", "shape": [n], "datatype": "FP32",
                        "data": [0.123456789] * n}]}
    if binary:
        body["outputs"] = [{"name": "y", "parameters": {"binary_data": True}}]
    return call("POST", "/v2/models/tile/infer", body)


def refused(name, got, status, words):
    st, j, b = got
    err = j.get("error", "")
    ok = st == status and all(w in err for w in words) and "/" not in err.split("(")[0][:1]
    check(name, ok, "status %d, body %r" % (st, b[:300]))


def bounded():
    before = rss()
    refused("a model whose plan is over --max-session-memory fails to load (413, both sizes)",
            call("POST", "/v2/repository/models/bomb/load"), 413,
            ["needs at least", "bytes, over the session memory limit of 67108864 bytes"])
    st, _, _ = call("POST", "/v2/models/bomb/infer",
                    {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]})
    check("the refused model answers no inference", st in (404, 503), "status %d" % st)
    st, _, _ = call("POST", "/v2/repository/models/tile/load")
    check("tile loads", st == 200, "status %d" % st)
    st, j, _ = tile(1)
    out = (j.get("outputs") or [{}])[0]
    check("a small answer is served", st == 200 and out.get("shape") == [65536],
          "status %d, %r" % (st, out.get("shape")))
    refused("an answer whose outputs are over --max-response-size is refused (413)", tile(8), 413,
            ["hold 2097152 bytes", "--max-response-size of 1048576 bytes"])
    refused("an answer whose JSON encoding is over --max-response-size is refused (413)",
            tile(3), 413, ["encoded", "--max-response-size of 1048576 bytes"])
    st, _, b = tile(3, binary=True)
    check("the same outputs in binary fit and are served", st == 200 and len(b) > 3 * 65536 * 4,
          "status %d, %d bytes" % (st, len(b)))
    refused("a request whose new input shape needs a plan over the bound is refused (413)",
            tile(2048), 413, ["needs at least", "session memory limit of 67108864 bytes"])
    st, _, _ = tile(1)
    check("the next good request is served", st == 200, "status %d" % st)
    st, j, b = call("POST", "/v2/repository/models/garbage/load")
    err = j.get("error", "")
    check("a corrupt file's error names the data directory once, and no path",
          st == 400 and err.count("(data directory)") == 1 and "/tmp" not in err
          and "malformed ONNX" in err, "status %d %r" % (st, b[:300]))
    grown = rss() - before
    check("resident memory did not grow by the refused plans (%d MiB)" % (grown // MIB),
          grown < 96 * MIB, "grew %d MiB" % (grown // MIB))


def trickle(name, head, rate):
    """Sends head, then a body byte every 1/rate s: the server must close the connection well
    before the 30 s idle timeout (it allows --request-timeout 3 plus a second per 500 bytes)."""
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(1.0 / rate)
    s.sendall(head)
    start, got, closed = time.time(), b"", False
    while time.time() - start < 20 and not closed:
        try:
            s.sendall(b"x")
            b = s.recv(65536)
            closed = not b
            got += b
        except socket.timeout:
            pass
        except OSError:
            closed = True
    s.close()
    took = time.time() - start
    check("%s is cut off after --request-timeout (%.1f s)" % (name, took),
          closed and 2.5 < took < 8, "closed %s after %.1f s: %r" % (closed, took, got[:200]))


def defaults():
    st, _, b = call("POST", "/v2/repository/models/bomb/load")
    check("with the defaults the bomb loads (its plan is under 4Gi)", st == 200,
          "status %d %r" % (st, b[:200]))
    refused("with the defaults its 268 MB answer is refused (413, --max-response-size 64Mi)",
            call("POST", "/v2/models/bomb/infer",
                 {"inputs": [{"name": "x", "shape": [1], "datatype": "FP32", "data": [1]}]}),
            413, ["hold 268435456 bytes", "--max-response-size of 67108864 bytes"])
    trickle("a buffered body trickled at 10 B/s",
            b"POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n", 10)
    st, _, _ = call("POST", "/api/v1/models", {"name": "slow"})
    check("a registry model is created", st in (200, 201), "status %d" % st)
    trickle("a push body trickled at 10 B/s",
            b"POST /api/v1/models/slow/versions HTTP/1.1\r\nHost: x\r\n"
            b"Content-Length: 100000000\r\n\r\n", 10)
    st, j, _ = call("GET", "/api/v1/models/slow/versions")
    check("the cut-off push stored no version", st == 200 and j.get("items") == [],
          "status %d %r" % (st, j))
    st, _, _ = call("GET", "/v2/health/ready")
    check("the server still answers", st == 200, "status %d" % st)


{"bounded": bounded, "defaults": defaults}[PHASE]()
