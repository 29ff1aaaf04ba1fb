"""hardening_test.py - the raw-socket attacks of issue 10 against a running server.

Usage: hardening_test.py PHASE PORT (PHASE: main; per-ip for a server allowing 4 connections
per address; shed for the server whose slow model has a queue of one). Prints one PASS/FAIL
line per check. Every attack is sent as bytes on its own socket; an answer is read until the
server closes the connection or a short timeout passes, and the number of HTTP answers in it
is counted, so a smuggled second request that gets answered shows up as two.
"""
import json
import os
import re
import resource
import socket
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

PHASE, PORT = sys.argv[1], int(sys.argv[2])


check = Checks()


def exchange(data, wait=2.0):
    """Sends data, returns (bytes read, closed by the server within wait)."""
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(wait)
    got, closed = b"", False
    try:
        s.sendall(data)
        while True:
            b = s.recv(65536)
            if not b:
                closed = True
                break
            got += b
    except socket.timeout:
        pass
    except ConnectionResetError:
        closed = True
    s.close()
    return got, closed


def answers(got):
    """(statuses, first body) of the HTTP answers in got."""
    statuses = [int(m) for m in re.findall(rb"HTTP/1\.[01] (\d{3}) ", got)]
    body = got.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in got else b""
    return statuses, body


def json_error(body):
    try:
        j = json.loads(body.decode("utf-8", "replace").split("\r\n")[0] or "{}")
    except ValueError:
        # a chunked body: the JSON is on the line after the chunk size
        parts = body.split(b"\r\n")
        try:
            j = json.loads(parts[1])
        except (ValueError, IndexError):
            return None
    return j.get("error") if isinstance(j, dict) else None


SMUGGLED = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n"


def attack(name, head, body, want, json_body=True):
    """head + body + a smuggled request: exactly one answer, `want`, JSON, then closed."""
    got, closed = exchange(head + body + SMUGGLED)
    st, b = answers(got)
    ok = st == [want] and (json_error(b) is not None or not json_body) and closed
    check("%s: one %d with a JSON error, connection closed" % (name, want), ok,
          "answers %s, closed %s, body %r" % (st, closed, b[:200]))


POST = b"POST /v2/repository/index HTTP/1.1\r\nHost: x\r\n"


def framing_and_names():
    """Items 5 and 9 of issue 10."""
    attack("two Content-Length", POST + b"Content-Length: 0\r\nContent-Length: 44\r\n\r\n",
           b"", 400)
    attack("Transfer-Encoding with Content-Length",
           POST + b"Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n", b"0\r\n\r\n", 400)
    attack("two Transfer-Encoding",
           POST + b"Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n",
           b"0\r\n\r\n", 400)
    attack("Transfer-Encoding: gzip", POST + b"Transfer-Encoding: gzip\r\n\r\n", b"0\r\n\r\n", 501)
    attack("HTTP/1.1 without Host",
           b"POST /v2/repository/index HTTP/1.1\r\nContent-Length: 0\r\n\r\n", b"", 400)
    attack("two Host headers",
           b"POST /v2/repository/index HTTP/1.1\r\nHost: x\r\nHost: y\r\nContent-Length: 0\r\n\r\n",
           b"", 400)
    attack("control byte in a header value",
           POST + b"X-Thing: a\x01b\r\nContent-Length: 0\r\n\r\n", b"", 400)
    # The front door (front.c) refuses these before libmicrohttpd reads them (which answered
    # 413 and 400 with HTML): 400 with a JSON error, and the smuggled request never answered.
    attack("chunk size of 2^64", POST + b"Transfer-Encoding: chunked\r\n\r\n",
           b"10000000000000000\r\nx\r\n0\r\n\r\n", 400)
    attack("non-hex chunk size", POST + b"Transfer-Encoding: chunked\r\n\r\n",
           b"zz\r\nx\r\n0\r\n\r\n", 400)

    # A well-framed request on the same kind of socket still works, keep-alive included.
    got, _ = exchange(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n" + SMUGGLED, wait=1)
    check("two pipelined good requests: two 200s", answers(got)[0] == [200, 200], repr(got[:200]))

    # Model names: never 500, always a JSON 400/404.
    for name in (b"Digits", b"my_model", b"..", b"%2e%2e", b"\xc3\xa9t\xc3\xa9", b"a" * 200,
                 b"a" * 127):
        for path in (b"/v2/models/" + name, b"/v2/models/" + name + b"/ready",
                     b"/v2/models/" + name + b"/infer"):
            method = b"POST" if path.endswith(b"/infer") else b"GET"
            got, _ = exchange(method + b" " + path + b" HTTP/1.1\r\nHost: x\r\nContent-Length: 2"
                              b"\r\nConnection: close\r\n\r\n{}", wait=2)
            st, b = answers(got)
            check("model name %r %s: 400 or 404 with a JSON error" % (name[:20], path[-6:]),
                  len(st) == 1 and st[0] in (400, 404) and json_error(b) is not None,
                  "answers %s, body %r" % (st, b[:200]))


def served(n=3):
    """How many of n good requests on fresh connections are answered 200 within 5 s each."""
    ok = 0
    for _ in range(n):
        try:
            got, _ = exchange(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n"
                              b"Connection: close\r\n\r\n", wait=5)
            ok += answers(got)[0] == [200]
        except OSError:
            pass
    return ok


def flood(n_idle, n_trickle, seconds):
    """Opens n_idle sockets that send nothing and n_trickle that send a header byte every
    second; returns (good requests served, tried) over `seconds`."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, n_idle + n_trickle + 256)),
                                                hard))
    socks = []
    try:
        for _ in range(n_idle):
            socks.append(socket.create_connection(("127.0.0.1", PORT)))
        trickle = []
        for _ in range(n_trickle):
            s = socket.create_connection(("127.0.0.1", PORT))
            s.setblocking(False)
            trickle.append(s)
        socks += trickle
        header = b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 4096
        ok = tried = 0
        end = time.time() + seconds
        i = 0
        while time.time() < end:
            for s in trickle:
                try:
                    s.send(header[i % len(header):i % len(header) + 1])
                except OSError:
                    pass
            i += 1
            ok += served(1)
            tried += 1
            time.sleep(0.5)
        return ok, tried
    finally:
        for s in socks:
            s.close()


def floods():
    """Item 3: idle and trickling sockets, the header deadline."""
    ok, tried = flood(2000, 0, 4)
    check("2,000 idle sockets: good requests are served (%d of %d)" % (ok, tried), ok == tried,
          "%d of %d served" % (ok, tried))
    ok, tried = flood(0, 1100, 6)
    check("1,100 trickling sockets: good requests are served (%d of %d)" % (ok, tried),
          ok == tried, "%d of %d served" % (ok, tried))
    ok, tried = flood(2000, 2000, 8)
    check("2,000 idle and 2,000 trickling sockets: good requests are served (%d of %d)"
          % (ok, tried), ok == tried, "%d of %d served" % (ok, tried))

    # The header deadline (--header-timeout 2): a header trickled a byte every 0.5 s is cut off.
    s = socket.create_connection(("127.0.0.1", PORT))
    start, closed = time.time(), False
    try:
        for c in b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 40:
            s.send(bytes([c]))
            time.sleep(0.5)
            if time.time() - start > 8:
                break
    except OSError:
        closed = True
    s.close()
    check("a trickled header is cut off at the header deadline", closed and time.time() - start < 5,
          "closed %s after %.1f s" % (closed, time.time() - start))


def slow_request(rows):
    """The raw bytes of an infer of the slow model on rows rows of 0.5."""
    body = json.dumps({"inputs": [{"name": "x", "shape": [rows, 1024], "datatype": "FP32",
                                   "data": [0.5] * (rows * 1024)}]}).encode()
    return (b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b"application/json\r\nContent-Length: %d\r\n\r\n" % len(body) + body)


def read_answer(s, timeout):
    """Reads one Content-Length framed answer from s within timeout seconds."""
    s.settimeout(timeout)
    got, end = b"", time.time() + timeout
    try:
        while time.time() < end:
            head = got.split(b"\r\n\r\n", 1)
            m = re.search(rb"content-length: *(\d+)", head[0].lower()) if len(head) == 2 else None
            if m and len(head[1]) >= int(m.group(1)):
                break
            b = s.recv(1 << 20)
            if not b:
                break
            got += b
    except OSError:
        pass
    return got


def shed():
    """Item 8: the one instance runs a slow request, a second fills the queue of one; a
    third whose headers announce a large body must get its 429 before sending any of it.
    How long a row takes depends on the build (a sanitizer slows the MatMul kernel several
    times), so one timed request of 16 rows sizes the two busy ones to about 3 s each."""
    s = socket.create_connection(("127.0.0.1", PORT))
    start = time.time()
    s.sendall(slow_request(16))
    st, _ = answers(read_answer(s, 120))
    s.close()
    t16 = time.time() - start
    check("the slow model answers a timed request of 16 rows", st == [200], "answers %s" % st)
    rows = int(min(max(16 * 3.0 / max(t16, 1e-3), 16), 2048))
    busy = []
    for _ in range(2):
        s = socket.create_connection(("127.0.0.1", PORT))
        s.sendall(slow_request(rows))
        busy.append(s)
        time.sleep(0.2)
    # The second request is queued once its body is decoded: wait for the gauge to say so.
    end = time.time() + 20
    while time.time() < end:
        got, _ = exchange(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        if re.search(rb'capstan_queue_depth\{model="slow",version="1"\} 1', got):
            break
        time.sleep(0.05)
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(3)
    s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
              b"application/json\r\nContent-Length: 600000\r\n\r\n")
    got = b""
    try:
        while b"\r\n\r\n" not in got or not got.endswith(b"}"):
            b = s.recv(65536)
            if not b:
                break
            got += b
    except socket.timeout:
        pass
    s.close()
    st, b = answers(got)
    check("full queue: 429 on the headers, before any body byte",
          st == [429] and json_error(b) is not None and b"retry-after:" in got.lower(),
          "answers %s: %r" % (st, got[:300]))
    # Most clients send the whole body before they read: refused on its headers, such a
    # client must still read its 429 (the server drains what it sends: a lingering close),
    # not meet a connection reset in the middle of its upload.
    big = b"[" * (8 << 20)
    s = socket.create_connection(("127.0.0.1", PORT))
    s.settimeout(10)
    got, err = b"", None
    try:
        s.sendall(b"POST /v2/models/slow/infer HTTP/1.1\r\nHost: x\r\nContent-Type: "
                  b"application/json\r\nContent-Length: %d\r\n\r\n" % len(big) + big)
        while True:
            b = s.recv(65536)
            if not b:
                break
            got += b
    except OSError as e:
        err = e
    s.close()
    st, b = answers(got)
    check("full queue: a client that sends all 8 MiB first still reads its 429",
          err is None and st == [429] and json_error(b) is not None, "%r, answers %s: %r" %
          (err, st, got[:200]))
    # The two admitted requests are still served in full, the queued one after the other.
    run = t16 * rows / 16
    st = [answers(read_answer(s, 4 * run + 10))[0] for s in busy]
    check("the running and the queued request are both answered 200", st == [[200], [200]],
          "answers %s for %d rows, %.1f s each" % (st, rows, run))
    for s in busy:
        s.close()


def per_ip():
    """--max-connections-per-ip 4: a fifth socket from this address is closed at once, and
    a good request is served again once the four are gone."""
    four = [socket.create_connection(("127.0.0.1", PORT)) for _ in range(4)]
    got, closed = exchange(b"GET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n", wait=2)
    check("a fifth connection from one address is refused", closed and not answers(got)[0],
          "answers %s, closed %s" % (answers(got)[0], closed))
    for s in four:
        s.close()
    time.sleep(0.3)
    check("after the four close, the address is served again", served(1) == 1)


if PHASE == "main":
    framing_and_names()
    floods()
elif PHASE == "per-ip":
    per_ip()
else:
    shed()
