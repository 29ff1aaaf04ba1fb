"""capstan_http.py - the helpers the end-to-end suites share (standard library only).

request() sends one request on a fresh connection and returns (status, headers with
lower-case names, body bytes); a dict or list body is sent as JSON. jbody() parses a JSON
body, or returns None when it is not JSON. poll() calls a predicate until it gives a true
value or time runs out. Api is one server's JSON API: call() answers (status, the JSON
body or None), apply() PUTs the Deployment that deployment() writes, status() is a
deployment's status ({} when there is none).

free_port() is a 127.0.0.1 TCP port the kernel had free a moment ago (another process may
take it before the caller binds it; the suites accept that). Serve is a `capstan serve`
child on such a port, its stderr appended to a log file: wait_live() polls
/v2/health/live, kill() is SIGKILL, stop() SIGTERM and returns the exit status.

Checks is a suite's tally: calling it prints one `PASS name` or `FAIL name: why` line
(flushed; why cut to `limit` characters when the suite gives one), counts it and returns
ok unchanged; summary(suite) prints `suite: N passed, M failed` and returns the exit
status, 1 on a failure.
"""
import http.client
import json
import signal
import socket
import subprocess
import time


def request(host, port, method, path, body=None, headers=None, timeout=30):
    conn = http.client.HTTPConnection(host, port, timeout=timeout)
    try:
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
            headers = dict(headers or {}, **{"Content-Type": "application/json"})
        conn.request(method, path, body=body, headers=headers or {})
        r = conn.getresponse()
        return r.status, {k.lower(): v for k, v in r.getheaders()}, r.read()
    finally:
        conn.close()


def jbody(b):
    try:
        return json.loads(b)
    except ValueError:
        return None


def deployment(name, spec):
    return {"apiVersion": "capstan.dev/v1", "kind": "Deployment", "metadata": {"name": name},
            "spec": spec}


class Api:
    def __init__(self, host, port):
        self.host, self.port = host, port

    def call(self, method, path, body=None, timeout=30, port=None):
        st, _, b = request(self.host, port or self.port, method, path, body, timeout=timeout)
        return st, jbody(b) if b else None

    def apply(self, name, spec):
        return self.call("PUT", "/api/v1/deployments/" + name, deployment(name, spec))

    def status(self, name):
        st, j = self.call("GET", "/api/v1/deployments/" + name)
        return (j or {}).get("status", {}) if st == 200 else {}


def poll(pred, secs, every=0.1):
    """Calls pred every `every` seconds for secs seconds; returns the last value it gave."""
    end = time.time() + secs
    v = pred()
    while not v and time.time() < end:
        time.sleep(every)
        v = pred()
    return v


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Serve:
    """`capstan serve --port P ARGS...` with P a free port (in env, when given, instead of
    this process's environment); the caller waits with wait_live()."""

    def __init__(self, capstan, args, log, env=None):
        self.port = free_port()
        self.log = open(log, "ab")
        self.proc = subprocess.Popen([capstan, "serve", "--port", str(self.port)] + list(args),
                                     stderr=self.log, env=env)

    def wait_live(self, tries=200):
        """True once /v2/health/live answers 200; False when the server exits first or
        tries polls 50 ms apart go unanswered."""
        for _ in range(tries):
            try:
                if request("127.0.0.1", self.port, "GET", "/v2/health/live")[0] == 200:
                    return True
            except OSError:
                pass
            if self.proc.poll() is not None:
                break
            time.sleep(0.05)
        return False

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=60)


class Checks:
    def __init__(self, limit=None):
        self.limit = limit
        self.passed = 0
        self.failed = 0

    def __call__(self, name, ok, why=""):
        if ok:
            self.passed += 1
            print("PASS %s" % name, flush=True)
        else:
            self.failed += 1
            why = "%s" % (why,)
            print("FAIL %s: %s" % (name, why[:self.limit] if self.limit else why), flush=True)
        return ok

    def summary(self, suite):
        print("%s: %d passed, %d failed" % (suite, self.passed, self.failed))
        return 1 if self.failed else 0
