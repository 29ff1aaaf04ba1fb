"""load.py - a bounded load for the live plots: two clients, SECONDS at most, on MODEL.

Usage: load.py URL TOKEN MODEL SECONDS ROOT
"""
import json
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, sys.argv[5] + "/tests/lib")
from capstan_http import request  # noqa: E402

URL, TOKEN, MODEL, SECS = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
u = urllib.parse.urlparse(URL)
SAMPLE = json.load(open(sys.argv[5] + "/models/digits.sample.json"))["request"]
end = time.time() + SECS


def client():
    while time.time() < end:
        request(u.hostname, u.port, "POST", "/v2/models/%s/infer" % MODEL, SAMPLE,
                {"Authorization": "Bearer " + TOKEN}, timeout=10)
        time.sleep(0.01)


ts = [threading.Thread(target=client) for _ in range(2)]
for t in ts:
    t.start()
for t in ts:
    t.join()
