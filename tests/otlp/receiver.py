"""receiver.py - a small OTLP/HTTP receiver for the otlp suite (standard library only).

Usage: receiver.py PORT OUT MODE [PATH]. Accepts POST PATH (/v1/traces) with a JSON body and
appends one line per attempt to OUT: {"status": S, "path": P, "headers": {...}, "body": <the
request as sent>}. MODE:
  ok        answer 200 to every POST
  503-once  answer the first POST 503 with Retry-After: 1, then 200
  slow      answer 200 after sleeping 1 s per POST (a receiver slower than the traffic)
  reject    answer 400 to every POST (a receiver that refuses the data: never retried)
  discard   answer 200 and store nothing (bench/trace_bench.sh)
Anything but POST PATH with Content-Type application/json is answered 400.
"""
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PORT, OUT, MODE = int(sys.argv[1]), sys.argv[2], sys.argv[3]
PATH = sys.argv[4] if len(sys.argv) > 4 else "/v1/traces"
lock = threading.Lock()
posts = [0]


class Handler(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with lock:
            posts[0] += 1
            n = posts[0]
        ok = self.path == PATH and self.headers.get("Content-Type") == "application/json"
        status = 400 if not ok or MODE == "reject" else 503 if MODE == "503-once" and n == 1 else 200
        if MODE == "slow":
            time.sleep(1)
        try:
            doc = json.loads(body) if MODE != "discard" else None
        except ValueError:
            doc, status = None, 400
        if MODE != "discard":
            with lock, open(OUT, "a") as f:
                f.write(json.dumps({"status": status, "path": self.path,
                                    "headers": dict(self.headers), "body": doc}) + "\n")
        self.send_response(status)
        if status == 503:
            self.send_header("Retry-After", "1")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


ThreadingHTTPServer(("127.0.0.1", PORT), Handler).serve_forever()
