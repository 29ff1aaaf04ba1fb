"""Checks against a running `capstan serve` (started by test_serve.sh).

Usage: serve_test.py PHASE BASE_URL TMPDIR CAPSTAN ROOT

PHASE is `main` (every endpoint, codecs, errors, batching, metrics, logs), `queue` (a server
whose queue holds one request: 429) or `drain` (a server that is sent SIGTERM mid-request;
its pid is in TMPDIR/drain.pid). Prints one `PASS name` or `FAIL name: why` line per check.
Only the standard library and numpy: urllib/http.client for HTTP, threads for concurrency.
"""
import http.client
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import zlib

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import capstan_http  # noqa: E402
from capstan_http import Checks, jbody  # noqa: E402

PHASE, BASE, TMP, CAPSTAN, ROOT = sys.argv[1:6]
HOST, PORT = urllib.parse.urlsplit(BASE).hostname, urllib.parse.urlsplit(BASE).port


check = Checks()


def request(method, path, body=None, headers=None, timeout=30):
    """Returns (status, headers dict with lower-case keys, body bytes)."""
    return capstan_http.request(HOST, PORT, method, path, body, headers, timeout)


def expect(name, method, path, status, body=None, headers=None, contains=None):
    st, h, b = request(method, path, body, headers)
    ok = st == status
    j = jbody(b)
    if ok and status >= 400:
        ok = isinstance(j, dict) and isinstance(j.get("error"), str) and j["error"] != ""
    if ok and contains:
        ok = contains in b.decode(errors="replace")
    check(name, ok, "got %d %s, want %d%s" % (st, b[:300], status,
                                               " containing %r" % contains if contains else ""))
    return st, h, b


def digits_images():
    sample = json.load(open(os.path.join(ROOT, "models/digits.sample.json")))
    x = np.array(sample["request"]["inputs"][0]["data"], np.float32).reshape(1, 1, 8, 8)
    rng = np.random.default_rng(7)
    # The sample, then noisy variants: each request gets images of its own.
    return np.concatenate([x, (x + rng.uniform(0, 4, (63, 1, 8, 8))).astype(np.float32)])


def capstan_run(x):
    """The reference: `capstan run` on the same input."""
    d = os.path.join(TMP, "run-%d" % threading.get_ident())
    os.makedirs(d, exist_ok=True)
    np.save(os.path.join(d, "image.npy"), x)
    subprocess.run([CAPSTAN, "run", os.path.join(ROOT, "models/digits.onnx"), "-i",
                    "image=" + os.path.join(d, "image.npy"), "--out-dir", d], check=True,
                   capture_output=True)
    return np.load(os.path.join(d, "probabilities.npy"))


def infer_json(x, model="digits", extra=None):
    body = {"id": "req-%d" % id(x), "inputs": [{"name": "image", "shape": list(x.shape),
                                                 "datatype": "FP32", "data": x.ravel().tolist()}]}
    body.update(extra or {})
    return request("POST", "/v2/models/%s/infer" % model, body)


def split_binary(h, b):
    n = int(h["inference-header-content-length"])
    return json.loads(b[:n]), b[n:]


# --- phases --------------------------------------------------------------------------------


def health_and_metadata():
    expect("live", "GET", "/v2/health/live", 200)
    expect("ready", "GET", "/v2/health/ready", 200)
    st, _, b = expect("server metadata", "GET", "/v2", 200)
    j = jbody(b) or {}
    check("server extensions", {"binary_tensor_data", "model_repository"} <=
          set(j.get("extensions", [])), b)
    for path in ("/v2/models/digits", "/v2/models/digits/versions/1"):
        st, _, b = expect("model metadata " + path, "GET", path, 200)
        j = jbody(b) or {}
        check("dynamic dims " + path,
              j.get("inputs") == [{"name": "image", "datatype": "FP32", "shape": [-1, 1, 8, 8]}]
              and j.get("outputs") == [{"name": "probabilities", "datatype": "FP32",
                                         "shape": [-1, 10]}], b)
        check("platform is the protocol's name for ONNX " + path,
              j.get("platform") == "onnx_onnxv1", b)
    expect("model ready", "GET", "/v2/models/digits/ready", 200)
    expect("version ready", "GET", "/v2/models/digits/versions/1/ready", 200)
    expect("HEAD live", "HEAD", "/v2/health/live", 200, contains="")


def json_and_binary_match_run(x):
    want = capstan_run(x[:4])
    st, _, b = infer_json(x[:4], extra={"parameters": {"priority": 1, "custom": "ok"}})
    j = jbody(b) or {}
    out = (j.get("outputs") or [{}])[0]
    got = np.array(out.get("data", []), np.float32).reshape(out.get("shape", [0]))
    check("json infer matches capstan run", st == 200 and got.shape == want.shape and
          np.allclose(got, want, rtol=1e-5, atol=1e-6), b[:300])
    check("id echoed", j.get("id") == "req-%d" % id(x[:4]) or j.get("id", "").startswith("req-"), j)
    # Nested data, row-major.
    body = {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                        "data": x[:1].tolist()}]}
    st, _, b = request("POST", "/v2/models/digits/infer", body)
    got = np.array((jbody(b) or {"outputs": [{"data": []}]})["outputs"][0]["data"], np.float32)
    check("nested data", st == 200 and np.allclose(got, want[0], rtol=1e-5, atol=1e-6), b[:200])

    # Binary in, binary out.
    header = json.dumps({"inputs": [{"name": "image", "shape": [4, 1, 8, 8], "datatype": "FP32",
                                      "parameters": {"binary_data_size": 4 * 64 * 4}}],
                         "outputs": [{"name": "probabilities",
                                      "parameters": {"binary_data": True}}]}).encode()
    st, h, b = request("POST", "/v2/models/digits/infer", header + x[:4].tobytes(),
                       {"Inference-Header-Content-Length": str(len(header)),
                        "Content-Type": "application/octet-stream"})
    ok = st == 200 and "inference-header-content-length" in h
    if ok:
        hj, blob = split_binary(h, b)
        o = hj["outputs"][0]
        got = np.frombuffer(blob, np.float32).reshape(o["shape"])
        ok = (o["parameters"]["binary_data_size"] == len(blob) and
              np.allclose(got, want, rtol=1e-5, atol=1e-6))
    check("binary infer matches capstan run", ok, (st, b[:200]))

    # binary_data_output on the request, no outputs named.
    header = json.dumps({"parameters": {"binary_data_output": True},
                         "inputs": [{"name": "image", "shape": [1, 1, 8, 8],
                                     "datatype": "FP32", "data": x[:1].ravel().tolist()}]}).encode()
    st, h, b = request("POST", "/v2/models/digits/infer", header)
    ok = st == 200 and "inference-header-content-length" in h
    if ok:
        _, blob = split_binary(h, b)
        ok = np.allclose(np.frombuffer(blob, np.float32), want[0], rtol=1e-5, atol=1e-6)
    check("binary_data_output", ok, (st, b[:200]))

    # A raw body (Inference-Header-Content-Length: 0) is answered in binary, as the binary
    # extension says.
    st, h, b = request("POST", "/v2/models/digits/infer", x[:2].tobytes(),
                       {"Inference-Header-Content-Length": "0",
                        "Content-Type": "application/octet-stream"})
    ok = st == 200 and "inference-header-content-length" in h
    if ok:
        hj, blob = split_binary(h, b)
        o = hj["outputs"][0]
        got = np.frombuffer(blob, np.float32).reshape(o["shape"])
        ok = (h.get("content-type") == "application/octet-stream" and o["shape"] == [2, 10] and
              o["parameters"]["binary_data_size"] == len(blob) and "data" not in o and
              np.allclose(got, want[:2], rtol=1e-5, atol=1e-6))
    check("raw binary body answered in binary", ok, (st, h, b[:200]))

    # Binary inputs and no word on the outputs: binary back. binary_data_output false, or an
    # output's binary_data false, asks for JSON instead.
    def binary_request(extra):
        hdr = {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                           "parameters": {"binary_data_size": 256}}]}
        hdr.update(extra)
        hdr = json.dumps(hdr).encode()
        return request("POST", "/v2/models/digits/infer", hdr + x[:1].tobytes(),
                       {"Inference-Header-Content-Length": str(len(hdr))})
    st, h, b = binary_request({})
    ok = st == 200 and "inference-header-content-length" in h
    ok = ok and np.allclose(np.frombuffer(split_binary(h, b)[1], np.float32), want[0],
                            rtol=1e-5, atol=1e-6)
    check("binary inputs: outputs binary by default", ok, (st, h, b[:200]))
    st, h, b = binary_request({"outputs": [{"name": "probabilities"}]})
    check("binary inputs: a named output without binary_data is binary",
          st == 200 and "inference-header-content-length" in h, (st, h, b[:200]))
    for name, extra in (("binary_data_output false",
                         {"parameters": {"binary_data_output": False}}),
                        ("binary_data false", {"outputs": [{"name": "probabilities",
                                                            "parameters": {"binary_data": False}}]})):
        st, h, b = binary_request(extra)
        o = ((jbody(b) or {}).get("outputs") or [{}])[0]
        ok = st == 200 and "inference-header-content-length" not in h
        ok = ok and np.allclose(np.array(o.get("data", [0]), np.float32), want[0], rtol=1e-5,
                                atol=1e-6)
        check("binary inputs: %s answers JSON" % name, ok, (st, h, b[:200]))
    # JSON inputs stay JSON unless binary is asked for.
    st, h, b = infer_json(x[:1])
    check("json inputs: outputs JSON by default",
          st == 200 and "inference-header-content-length" not in h, (st, h, b[:200]))

    # The outputs filter naming the one output, as JSON.
    st, _, b = infer_json(x[:1], extra={"outputs": [{"name": "probabilities"}]})
    check("outputs filter", st == 200 and len((jbody(b) or {}).get("outputs", [])) == 1, b[:200])


def every_dtype():
    """Identity models of every numeric type and BOOL, JSON and binary both ways."""
    types = {"BOOL": np.bool_, "UINT8": np.uint8, "UINT16": np.uint16, "UINT32": np.uint32,
             "UINT64": np.uint64, "INT8": np.int8, "INT16": np.int16, "INT32": np.int32,
             "INT64": np.int64, "FP16": np.float16, "FP32": np.float32, "FP64": np.float64}
    for dt, npt in types.items():
        m = "id_" + dt.lower()
        if npt == np.bool_:
            x = np.array([[True, False, True], [False, False, True]])
        elif np.issubdtype(npt, np.integer):
            info = np.iinfo(npt)
            x = np.array([[info.min, 0, 1], [2, info.max - 1, info.max]], npt)
        else:
            x = np.array([[-1.5, 0, 0.25], [3.0, 65504 if npt == np.float16 else 1e10, -2]], npt)
        body = {"inputs": [{"name": "x", "shape": [2, 3], "datatype": dt,
                            "data": x.ravel().tolist()}]}
        st, _, b = request("POST", "/v2/models/%s/infer" % m, body)
        o = ((jbody(b) or {}).get("outputs") or [{}])[0]
        got = np.array(o.get("data", []), dtype=object)
        ok = st == 200 and o.get("datatype") == dt and o.get("shape") == [2, 3]
        ok = ok and [v for v in got.ravel()] == [v.item() for v in x.ravel()]
        check("json %s round trip" % dt, ok, b[:300])
        header = json.dumps({"inputs": [{"name": "x", "shape": [2, 3], "datatype": dt,
                                          "parameters": {"binary_data_size": x.nbytes}}],
                             "parameters": {"binary_data_output": True}}).encode()
        st, h, b = request("POST", "/v2/models/%s/infer" % m, header + x.tobytes(),
                           {"Inference-Header-Content-Length": str(len(header))})
        ok = st == 200 and "inference-header-content-length" in h
        ok = ok and split_binary(h, b)[1] == x.tobytes()
        check("binary %s round trip" % dt, ok, b[:300])
    # BF16: JSON numbers in, rounded to bfloat16.
    st, _, b = request("POST", "/v2/models/id_bf16/infer",
                       {"inputs": [{"name": "x", "shape": [2], "datatype": "BF16",
                                    "data": [1.0, -2.5]}]})
    check("json BF16", st == 200 and (jbody(b) or {}).get("outputs", [{}])[0].get("data") ==
          [1.0, -2.5], b[:200])
    # Integers out of range, fractions for integers, non-bools for BOOL, floats past the
    # dtype's range (1e39 in FP32 came back as null).
    for dt, val in (("INT8", 128), ("UINT8", -1), ("INT32", 1.5), ("BOOL", 1), ("FP32", 1e39),
                    ("FP32", -1e39), ("FP16", 70000.0)):
        m = "id_" + dt.lower()
        expect("json %s rejects %r" % (dt, val), "POST", "/v2/models/%s/infer" % m, 400,
               {"inputs": [{"name": "x", "shape": [1], "datatype": dt, "data": [val]}]})
    # BYTES decodes (JSON and binary) and is refused by a model that takes FP32.
    expect("BYTES json decodes, model says no", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                        "data": ["a\u00e9\\n", "x"]}]}, contains="image")
    blob = b"".join(len(s).to_bytes(4, "little") + s for s in (b"ab", b""))
    header = json.dumps({"inputs": [{"name": "image", "shape": [2], "datatype": "BYTES",
                                      "parameters": {"binary_data_size": len(blob)}}]}).encode()
    expect("BYTES binary decodes, model says no", "POST", "/v2/models/digits/infer", 400,
           header + blob, {"Inference-Header-Content-Length": str(len(header))}, contains="image")
    expect("BYTES binary malformed", "POST", "/v2/models/digits/infer", 400,
           header + blob[:-1] + b"\x09",
           {"Inference-Header-Content-Length": str(len(header))}, contains="BYTES")


def errors(x):
    good = {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                        "data": x[:1].ravel().tolist()}]}
    expect("404 unknown model", "POST", "/v2/models/nope/infer", 404, good)
    expect("404 unknown version", "GET", "/v2/models/digits/versions/9", 404)
    expect("404 unknown route", "GET", "/v3/whatever", 404)
    st, h, _ = expect("405 GET infer", "GET", "/v2/models/digits/infer", 405)
    check("405 has Allow", h.get("allow") == "POST", h)
    expect("400 not JSON", "POST", "/v2/models/digits/infer", 400, b"{not json")
    expect("400 empty body", "POST", "/v2/models/digits/infer", 400, b"")
    expect("400 wrong dtype", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [dict(good["inputs"][0], datatype="INT32",
                            data=[0] * 64)]}, contains="image")
    expect("400 wrong shape", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [dict(good["inputs"][0], shape=[1, 1, 4, 16])]}, contains="image")
    expect("400 data count", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [dict(good["inputs"][0], data=[0.0] * 63)]}, contains="63")
    expect("400 unknown datatype", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [dict(good["inputs"][0], datatype="FP8")]}, contains="FP8")
    expect("400 missing inputs", "POST", "/v2/models/digits/infer", 400, {"id": "x"})
    expect("400 unknown input", "POST", "/v2/models/digits/infer", 400,
           {"inputs": [dict(good["inputs"][0], name="img")]}, contains="img")
    expect("400 unknown output", "POST", "/v2/models/digits/infer", 400,
           dict(good, outputs=[{"name": "logits"}]), contains="probabilities")
    expect("400 bad priority", "POST", "/v2/models/digits/infer", 400,
           dict(good, parameters={"priority": -1}), contains="priority")
    deep = ("[" * 100) + ("]" * 100)
    expect("400 JSON depth", "POST", "/v2/models/digits/infer", 400,
           ('{"inputs":[{"name":"image","shape":[1],"datatype":"FP32","data":%s}]}' % deep).encode(),
           contains="deeper")
    expect("413 too many elements", "POST", "/v2/models/digits/infer", 413,
           {"inputs": [dict(good["inputs"][0], shape=[1 << 20, 1 << 20, 1, 1])]},
           contains="elements")
    expect("400 binary size past body", "POST", "/v2/models/digits/infer", 400,
           b'{"inputs":[{"name":"image","shape":[1,1,8,8],"datatype":"FP32",'
           b'"parameters":{"binary_data_size":256}}]}',
           contains="binary_data_size")
    expect("400 bad header length", "POST", "/v2/models/digits/infer", 400, b"{}",
           {"Inference-Header-Content-Length": "99"}, contains="Inference-Header-Content-Length")
    expect("400 raw body wrong size", "POST", "/v2/models/digits/infer", 400, b"abc",
           {"Inference-Header-Content-Length": "0"}, contains="raw")
    # 413: the server runs with --max-body-size 1048576 and answers before reading the body
    # (a client still sending would see its socket closed, so this one sends headers only).
    s = socket.create_connection((HOST, PORT), timeout=30)
    s.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
              b"Content-Length: 2000000\r\n\r\n")
    head = s.recv(4096)
    s.close()
    check("413 body too large", head.startswith(b"HTTP/1.1 413") and b'"error"' in head, head)
    # A chunked body has no Content-Length: it is cut off at the limit as it arrives.
    s = socket.create_connection((HOST, PORT), timeout=30)
    s.sendall(b"POST /v2/models/digits/infer HTTP/1.1\r\nHost: x\r\n"
              b"Transfer-Encoding: chunked\r\n\r\n")
    for _ in range(17):  # just past 1 MiB; the rest is read and dropped
        s.sendall(b"10000\r\n" + b"x" * 0x10000 + b"\r\n")
    s.sendall(b"0\r\n\r\n")
    head = s.recv(4096)
    s.close()
    check("413 chunked body too large", head.startswith(b"HTTP/1.1 413"), head[:100])
    # 504: the request's own timeout (1 us) passes in the batcher's 500 us wait.
    st, _, b = request("POST", "/v2/models/digits/infer", dict(good, parameters={"timeout": 1}))
    check("timeout parameter", st in (200, 504), (st, b[:200]))


def repository(x):
    st, _, b = expect("repository index", "POST", "/v2/repository/index", 200)
    idx = {e["name"]: e for e in (jbody(b) or [])}
    check("index lists loaded and data-dir models",
          idx.get("digits", {}).get("state") == "READY" and
          idx.get("digits2", {}).get("state") == "UNAVAILABLE", b[:300])
    st, _, b = expect("index ready only", "POST", "/v2/repository/index", 200, {"ready": True})
    check("ready-only index", "digits2" not in b.decode(), b[:300])
    expect("503 not loaded", "POST", "/v2/models/digits2/infer", 503,
           {"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                        "data": x[:1].ravel().tolist()}]})
    expect("load", "POST", "/v2/repository/models/digits2/load", 200)
    st, _, b = infer_json(x[:2], model="digits2")
    check("infer after load", st == 200, b[:200])
    expect("unload", "POST", "/v2/repository/models/digits2/unload", 200)
    expect("ready after unload is 400 (the protocol's 4xx for false)", "GET",
           "/v2/models/digits2/ready", 400)
    expect("load unknown", "POST", "/v2/repository/models/nope/load", 404)
    expect("load bad body", "POST", "/v2/repository/models/digits2/load", 400, b"[1")


def concurrent_answers(x):
    """32 threads x 8 requests, each with its own images: every answer must be its own."""
    want = capstan_run(x)
    bad = []

    def worker(t):
        for k in range(8):
            i = (t * 8 + k) % 60
            n = 1 + (t + k) % 4
            st, _, b = infer_json(x[i:i + n])
            j = jbody(b) or {}
            got = np.array(j.get("outputs", [{}])[0].get("data", []), np.float32).reshape(-1, 10)
            if st != 200 or got.shape != (n, 10) or not np.allclose(got, want[i:i + n],
                                                                    rtol=1e-5, atol=1e-6):
                bad.append((t, k, st, b[:100]))

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(32)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("concurrent answers match their requests", not bad, bad[:3])
    st, _, b = expect("stats", "GET", "/v2/models/digits/stats", 200)
    return b, (jbody(b) or {}).get("model_stats", [{}])[0]


def concurrency(x):
    b, stats = concurrent_answers(x)
    batched = sum(e["compute_infer"]["count"] for e in stats.get("batch_stats", [])
                  if e["batch_size"] > 4)
    check("batches larger than one request", batched > 0, b[:400])
    check("stats counts", stats.get("inference_count", 0) >= 256 and
          stats.get("execution_count", 0) < stats.get("inference_count", 0), b[:300])


def unbatched(x):
    """The shipped models/digits.yaml (no batching, two instances), whose requests run on
    the HTTP threads (test_runtime checks where): under concurrency every answer is still
    its own, and every execution holds exactly one request."""
    b, stats = concurrent_answers(x)
    check("unbatched: one request per execution",
          stats.get("inference_count", 0) >= 256 and
          stats.get("execution_count") == stats.get("inference_count") and
          all(e["batch_size"] <= 4 for e in stats.get("batch_stats", [])), b[:400])


def metrics_and_logs():
    st, h, b = expect("metrics", "GET", "/metrics", 200)
    text = b.decode()
    for name in ("capstan_requests_total{", "capstan_http_request_duration_seconds_bucket",
                 "capstan_request_duration_seconds_bucket", "capstan_queue_duration_seconds",
                 "capstan_compute_duration_seconds", "capstan_batch_size_bucket",
                 "capstan_inflight_requests", "capstan_queue_depth",
                 "capstan_model_load_duration_seconds", "capstan_build_info{",
                 "process_resident_memory_bytes", "process_cpu_seconds_total",
                 "process_threads", "process_open_fds"):
        check("metric " + name, name in text, "missing")
    check("no series for unknown models", 'model="nope"' not in text, "label minted")
    check("http_route on the HTTP histogram",
          'capstan_http_request_duration_seconds_count{http_route="/v2/models/{m}/infer",'
          'model="digits",version="1"}' in text and
          'capstan_http_request_duration_seconds_count{http_route="/v2/health/live"}' in text,
          [l for l in text.splitlines() if l.startswith("capstan_http_request_duration_seconds_count")])
    check("no empty model labels", 'model=""' not in text, "model=\"\" rendered")
    with open(os.path.join(TMP, "metrics.txt"), "w") as f:
        f.write(text)
    lines = [jbody(l) for l in open(os.path.join(TMP, "server.log")).read().splitlines()]
    check("log lines are JSON", lines and all(isinstance(l, dict) for l in lines), lines[:2])
    reqs = [l for l in lines if l and l.get("msg") == "request"]
    check("request log fields", reqs and all(
        {"time", "level", "request_id", "model", "status", "duration_us"} <= set(l) for l in reqs),
        reqs[:1])
    st, h, _ = request("GET", "/v2/health/live", headers={"X-Request-Id": "abc-123"})
    check("request id echoed", h.get("x-request-id") == "abc-123", h)
    long_id = "x" * 129
    st, h, _ = request("GET", "/v2/health/live", headers={"X-Request-Id": long_id})
    check("a request id over 128 bytes is replaced", h.get("x-request-id") not in (None, long_id), h)
    st, h, _ = request("GET", "/v2/health/live", headers={"X-Request-Id": "a b/c" + "y" * 123})
    check("a printable 128-byte request id is kept", h.get("x-request-id") == "a b/c" + "y" * 123, h)
    tid, pid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    st, h, _ = request("GET", "/v2/health/live",
                       headers={"traceparent": "00-%s-%s-01" % (tid, pid), "X-Request-Id": "tp-1"})
    tp = h.get("traceparent", "").split("-")
    check("traceparent continued", len(tp) == 4 and tp[0] == "00" and tp[1] == tid and
          len(tp[2]) == 16 and tp[2] != pid and tp[3] == "01", h)
    bad = []
    for hdr in ("ff-%s-%s-01" % (tid, pid), "00-%s-%s-01" % ("0" * 32, pid),
                "00-%s-%s-01" % (tid.upper(), pid), "garbage"):
        st, h2, _ = request("GET", "/v2/health/live", headers={"traceparent": hdr})
        t2 = h2.get("traceparent", "").split("-")
        if len(t2) != 4 or t2[1] == tid or t2[1] == "0" * 32 or len(t2[1]) != 32:
            bad.append((hdr, h2.get("traceparent")))
    check("invalid traceparent starts a new trace", not bad, bad)
    line = None
    for _ in range(50):
        for l in open(os.path.join(TMP, "server.log")).read().splitlines():
            j = jbody(l)
            if j and j.get("request_id") == "tp-1":
                line = j
        if line:
            break
        time.sleep(0.02)
    check("request log line joins the trace", line and line.get("trace_id") == tid and
          line.get("span_id") == (tp[2] if len(tp) == 4 else None), line)


def queue_full(x):
    """max_queue_size 1, one instance, no batching, big requests: some must get 429."""
    big = np.repeat(x, 64, axis=0)[:2048]
    codes, retry = [], []

    def worker():
        header = json.dumps({"inputs": [{"name": "image", "shape": list(big.shape),
                                          "datatype": "FP32",
                                          "parameters": {"binary_data_size": big.nbytes}}]}).encode()
        try:  # a reset while sending the body (no lingering close) is a failure too
            st, h, _ = request("POST", "/v2/models/digits/infer", header + big.tobytes(),
                               {"Inference-Header-Content-Length": str(len(header))})
        except OSError as e:
            codes.append(repr(e))
            return
        codes.append(st)
        if st == 429:
            retry.append(h.get("retry-after"))

    threads = [threading.Thread(target=worker) for _ in range(24)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    check("full queue answers 429", 429 in codes and set(codes) <= {200, 429}, codes)
    check("429 has Retry-After", retry and all(r for r in retry), retry)


def drain(x):
    """A request waits in a 3 s batching window; SIGTERM arrives meanwhile."""
    pid = int(open(os.path.join(TMP, "drain.pid")).read())
    want = capstan_run(x[:1])
    result = {}

    def slow():
        result["r"] = infer_json(x[:1])

    t = threading.Thread(target=slow)
    t.start()
    time.sleep(0.5)
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.2)
    st, _, _ = request("GET", "/v2/health/ready")
    check("ready turns 503 on SIGTERM", st == 503, st)
    st, _, _ = request("GET", "/v2/health/live")
    check("live stays 200 while draining", st == 200, st)
    st, _, b = infer_json(x[:1])
    check("new inference refused while draining", st == 503, (st, b[:100]))
    t.join()
    st, _, b = result.get("r", (0, {}, b""))
    got = np.array((jbody(b) or {"outputs": [{"data": []}]})["outputs"][0]["data"], np.float32)
    check("in-flight request finished", st == 200 and np.allclose(got, want[0], rtol=1e-5,
                                                                   atol=1e-6), (st, b[:200]))


def content_encodings(x):
    """gzip and deflate bodies, as Triton's clients send them; the limit holds after
    decompression (the server runs with --max-body-size 1048576)."""
    want = capstan_run(x[:1])[0]
    body = json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                                   "data": x[:1].ravel().tolist()}]}).encode()

    def gzip_of(b):
        c = zlib.compressobj(9, zlib.DEFLATED, 16 + 15)
        return c.compress(b) + c.flush()

    def raw_deflate_of(b):
        c = zlib.compressobj(9, zlib.DEFLATED, -15)
        return c.compress(b) + c.flush()

    for name, enc, data in (("gzip", "gzip", gzip_of(body)), ("deflate", "deflate",
                                                              zlib.compress(body)),
                            ("raw deflate", "deflate", raw_deflate_of(body)),
                            ("x-gzip", "x-gzip", gzip_of(body)),
                            ("upper-case GZIP", "GZIP", gzip_of(body))):
        st, _, b = request("POST", "/v2/models/digits/infer", data,
                           {"Content-Encoding": enc, "Content-Type": "application/json"})
        o = ((jbody(b) or {}).get("outputs") or [{}])[0]
        check("Content-Encoding %s accepted" % name, st == 200 and np.allclose(
            np.array(o.get("data", [0]), np.float32), want, rtol=1e-5, atol=1e-6), (st, b[:200]))
    # A binary request compressed whole: Inference-Header-Content-Length counts the plain JSON.
    hdr = json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                                  "parameters": {"binary_data_size": 256}}]}).encode()
    st, h, b = request("POST", "/v2/models/digits/infer", gzip_of(hdr + x[:1].tobytes()),
                       {"Content-Encoding": "gzip",
                        "Inference-Header-Content-Length": str(len(hdr))})
    ok = st == 200 and "inference-header-content-length" in h
    ok = ok and np.allclose(np.frombuffer(split_binary(h, b)[1], np.float32), want, rtol=1e-5,
                            atol=1e-6)
    check("gzip binary request", ok, (st, b[:200]))
    # A zip bomb: 8 KiB on the wire, 8 MiB inflated, past the 1 MiB limit.
    bomb = gzip_of(b"[" + b" " * (8 << 20) + b"]")
    check("zip bomb is small on the wire", len(bomb) < 64 << 10, len(bomb))
    expect("gzip past the limit after decompression is 413", "POST",
           "/v2/models/digits/infer", 413, bomb, {"Content-Encoding": "gzip"},
           contains="decompresses")
    expect("deflate past the limit after decompression is 413", "POST",
           "/v2/models/digits/infer", 413, zlib.compress(b" " * (2 << 20)),
           {"Content-Encoding": "deflate"}, contains="decompresses")
    expect("corrupt gzip is 400", "POST", "/v2/models/digits/infer", 400,
           b"\x1f\x8b" + b"not gzip at all", {"Content-Encoding": "gzip"}, contains="gzip")
    expect("truncated gzip is 400", "POST", "/v2/models/digits/infer", 400,
           gzip_of(body)[:-12], {"Content-Encoding": "gzip"}, contains="truncated")
    expect("gzip followed by other bytes is 400", "POST", "/v2/models/digits/infer", 400,
           gzip_of(body) + b"xx", {"Content-Encoding": "gzip"})
    st, h, _ = expect("an unsupported Content-Encoding is 415", "POST", "/v2/models/digits/infer",
                      415, gzip_of(body), {"Content-Encoding": "br"}, contains="gzip")
    check("415 says what is accepted", h.get("accept-encoding") == "gzip, deflate", h)
    expect("two codings at once are 415", "POST", "/v2/models/digits/infer", 415,
           gzip_of(body), {"Content-Encoding": "gzip, deflate"})
    expect("identity is plain", "POST", "/v2/models/digits/infer", 200, body,
           {"Content-Encoding": "identity"})
    # Other routes read the plain body too.
    expect("gzip on the repository API", "POST", "/v2/repository/index", 200,
           gzip_of(b'{"ready": true}'), {"Content-Encoding": "gzip"}, contains="digits")


x = digits_images()
if PHASE == "main":
    health_and_metadata()
    json_and_binary_match_run(x)
    every_dtype()
    errors(x)
    content_encodings(x)
    repository(x)
    concurrency(x)
    metrics_and_logs()
elif PHASE == "queue":
    queue_full(x)
elif PHASE == "unbatched":
    unbatched(x)
else:
    drain(x)
