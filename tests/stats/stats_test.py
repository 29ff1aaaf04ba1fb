"""stats_test.py - Triton's statistics extension (docs/protocol/extension_statistics.md),
field by field, against a server started by test_stats.sh.

Usage: stats_test.py URL ROOT. Prints one PASS/FAIL line per check.
"""
import os
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks, jbody, request  # noqa: E402

URL = urllib.parse.urlparse(sys.argv[1])
DURATIONS = ("success", "fail", "queue", "compute_input", "compute_infer", "compute_output",
             "cache_hit", "cache_miss")


check = Checks(limit=600)


def call(method, path, body=None):
    st, _, b = request(URL.hostname, URL.port, method, path, body)
    return st, jbody(b) or {}


def infer(rows, width=8):
    x = [0.5] * (rows * 8 * width)
    return call("POST", "/v2/models/digits/infer",
                {"inputs": [{"name": "image", "datatype": "FP32", "shape": [rows, 1, 8, width],
                             "data": x}]})


def stats(path="/v2/models/digits/stats"):
    st, j = call("GET", path)
    return st, j.get("model_stats", [])


def well_formed(s):
    """Every field the extension defines, with its type."""
    missing = [k for k in ("name", "version", "last_inference", "inference_count",
                           "execution_count", "inference_stats", "batch_stats",
                           "memory_usage", "response_stats") if k not in s]
    missing += ["inference_stats." + k for k in DURATIONS
                if set(s.get("inference_stats", {}).get(k, {})) != {"count", "ns"}]
    for b in s.get("batch_stats", []):
        missing += ["batch_stats[%s].%s" % (b.get("batch_size"), k)
                    for k in ("compute_input", "compute_infer", "compute_output")
                    if set(b.get(k, {})) != {"count", "ns"}]
    if not isinstance(s.get("memory_usage"), list):
        missing.append("memory_usage (array)")
    if not isinstance(s.get("response_stats"), dict):
        missing.append("response_stats (object)")
    return missing


def main():
    st, before = stats()
    check("stats of an idle model", st == 200 and len(before) == 1 and
          before[0]["inference_count"] == 0 and before[0]["last_inference"] == 0 and
          before[0]["batch_stats"] == [], before)
    check("every field present", not well_formed(before[0]), well_formed(before[0]))

    sizes = [1, 3, 3, 100, 70]
    t0 = int(time.time() * 1000)
    for k, n in enumerate(sizes):
        st, j = infer(n)
        check("infer %d rows" % n, st == 200, j)
        # Counted before the answer was sent: the very next read sees it.
        _, s = stats()
        check("counted before the answer (%d)" % n, s and s[0]["execution_count"] == k + 1, s)
    t1 = int(time.time() * 1000)

    st, j = infer(2, width=7)  # a shape the model refuses: a failure after arrival
    check("bad shape refused", st == 400, j)

    _, s = stats()
    s = s[0]
    i = s["inference_stats"]
    check("inference_count grows by rows", s["inference_count"] == sum(sizes), s)
    check("execution_count grows by executions", s["execution_count"] == len(sizes), s)
    check("last_inference in ms since the epoch", t0 <= s["last_inference"] <= t1,
          (t0, s["last_inference"], t1))
    check("success count", i["success"]["count"] == len(sizes), i)
    for k in ("queue", "compute_input", "compute_infer", "compute_output"):
        check(k + " counts every successful request",
              i[k]["count"] == len(sizes) and i[k]["ns"] > 0, i[k])
    compute = sum(i[k]["ns"] for k in ("queue", "compute_input", "compute_infer",
                                       "compute_output"))
    check("queue + compute <= success total", compute <= i["success"]["ns"], i)
    check("fail counted with its time", i["fail"]["count"] == 1 and i["fail"]["ns"] > 0, i)
    check("no cache", i["cache_hit"] == {"count": 0, "ns": 0} and
          i["cache_miss"] == {"count": 0, "ns": 0}, i)
    by = {b["batch_size"]: b for b in s["batch_stats"]}
    want = {1: 1, 3: 2, 70: 1, 100: 1}
    check("batch_stats per batch size, none capped",
          {b: e["compute_infer"]["count"] for b, e in by.items()} == want, s["batch_stats"])
    check("batch_stats phases counted with time",
          all(e[k]["count"] == want[b] and e[k]["ns"] > 0 for b, e in by.items()
              for k in ("compute_input", "compute_infer", "compute_output")), by)
    check("batch compute_infer sums to the requests'",
          sum(e["compute_infer"]["ns"] for e in by.values()) == i["compute_infer"]["ns"], by)
    check("every field present after traffic", not well_formed(s), well_formed(s))

    st, v = stats("/v2/models/digits/versions/1/stats")
    check("per version", st == 200 and len(v) == 1 and v[0]["version"] == "1" and
          v[0]["inference_count"] == sum(sizes), v)
    st, every = stats("/v2/models/stats")
    check("GET /v2/models/stats lists every model",
          st == 200 and sorted((e["name"], e["version"]) for e in every) ==
          [("digits", "1"), ("other", "1")], every)
    check("every model's entry well formed", all(not well_formed(e) for e in every), every)
    st, j = call("GET", "/v2/models/nope/stats")
    check("unknown model 404", st == 404 and "error" in j, j)


main()
