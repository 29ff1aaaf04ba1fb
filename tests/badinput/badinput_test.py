"""badinput_test.py - the bad-input catalogue: malformed requests, each with the answer it must get.

Usage: badinput_test.py URL TMP ROOT (run by test_badinput.sh against a fresh server).

Every case goes out on a fresh socket exactly as written (raw HTTP/1.1, so framing attacks
reach the server unchanged) and must be answered with its one expected status, a JSON body
{"error": "<non-empty>"} and no path of the machine (the data directory, the checkout, /tmp).
After each case a good inference on digits must be answered 200 with the right class, so a
case that wedges or poisons the server fails there. Prints one PASS/FAIL line per check.
"""
import base64
import json
import os
import socket
import sys
import time
from urllib.parse import urlparse

import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

URL, TMP, ROOT = sys.argv[1], sys.argv[2], sys.argv[3]
HOST, PORT = urlparse(URL).hostname, urlparse(URL).port
SAMPLE = json.load(open(os.path.join(ROOT, "models/digits.sample.json")))
GOOD = json.dumps(SAMPLE["request"]).encode()
DIGITS = open(os.path.join(ROOT, "models/digits.onnx"), "rb").read()
FORBIDDEN = [TMP, ROOT, "/tmp/", "/work/", "/home/", "/usr/", "blobs/sha256/"]


_check = Checks()


def out(ok, name, why=""):
    """One check, in this file's (ok, name, why) order: check() here runs a case."""
    _check(name, ok, why)


def exchange(raw, timeout=8.0):
    """Sends raw bytes and reads one answer: (status, headers, body) or (None, {}, why)."""
    s = socket.create_connection((HOST, PORT), timeout=timeout)
    try:
        s.sendall(raw)
        buf = b""
        deadline = time.monotonic() + timeout
        while b"\r\n\r\n" not in buf:
            if time.monotonic() > deadline:
                return None, {}, b"no answer in %.0f s" % timeout
            try:
                chunk = s.recv(65536)
            except OSError:
                return None, {}, b"no answer in %.0f s" % timeout
            if not chunk:
                return None, {}, b"closed without an answer"
            buf += chunk
        head, body = buf.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            headers[k.strip().lower()] = v.strip()
        want = int(headers.get("content-length", "-1"))
        while want < 0 or len(body) < want:
            try:
                chunk = s.recv(65536)
            except OSError:
                break
            if not chunk:
                break
            body += chunk
        return status, headers, body[:want] if want >= 0 else body
    finally:
        s.close()


def req(method, path, body=b"", headers=None, version="HTTP/1.1"):
    """A well-framed request unless the headers say otherwise."""
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    h = {"Host": "x", "Connection": "close"}
    if body or method in ("POST", "PUT", "PATCH"):
        h["Content-Length"] = str(len(body))
    h.update(headers or {})
    lines = ["%s %s %s" % (method, path, version)] + [
        "%s: %s" % (k, v) for k, v in h.items() if v is not None]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


def good_request_served(name):
    st, _, body = exchange(req("POST", "/v2/models/digits/infer", GOOD,
                               {"Content-Type": "application/json"}))
    if st != 200:
        out(False, name + ": next good request", "status %s %r" % (st, body[:200]))
        return
    scores = json.loads(body)["outputs"][0]["data"]
    best = max(range(len(scores)), key=scores.__getitem__)
    out(best == int(SAMPLE["label"]), name + ": next good request",
        "classified %d, the sample is %s" % (best, SAMPLE["label"]))


def check(name, expect, raw, good_after=True):
    st, headers, body = exchange(raw)
    if st is None:
        out(False, name, body.decode())
    elif st != expect:
        out(False, name, "status %d, want %d: %r" % (st, expect, body[:300]))
    else:
        try:
            doc = json.loads(body)
            err = doc.get("error") if isinstance(doc, dict) else None
        except ValueError:
            err = None
        text = body.decode("utf-8", "replace")
        leaked = [p for p in FORBIDDEN if p in text]
        if expect != 204 and (not isinstance(err, str) or not err):
            out(False, name, "not a JSON error: %r" % body[:200])
        elif "json" not in headers.get("content-type", ""):
            out(False, name, "content-type %r" % headers.get("content-type"))
        elif leaked:
            out(False, name, "shows a path (%s): %s" % (leaked[0], text[:200]))
        else:
            out(True, "%s -> %d" % (name, expect))
    if good_after:
        good_request_served(name)


def infer(inputs_doc, model="digits", headers=None):
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    body = inputs_doc if isinstance(inputs_doc, (bytes, str)) else json.dumps(inputs_doc)
    return req("POST", "/v2/models/%s/infer" % model, body, h)


def tensor(**kw):
    t = {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0] * 64}
    t.update(kw)
    for k in [k for k, v in t.items() if v is None]:
        del t[k]
    return {"inputs": [t]}


def model_bytes(nodes, inputs, outputs, opset=13, inits=()):
    g = helper.make_graph(nodes, "g", inputs, outputs, initializer=list(inits))
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", opset)]).SerializeToString()


def push(model, data, headers=None):
    h = {"Content-Type": "application/octet-stream"}
    h.update(headers or {})
    return req("POST", "/api/v1/models/%s/versions" % model, data, h)


# --- fixtures: a registry model with one version, for the management cases -----------------
st, _, b = exchange(req("POST", "/api/v1/models", {"name": "fix"}, {"Content-Type": "application/json"}))
out(st == 201, "fixture: model created", "%s %r" % (st, b[:200]))
st, _, b = exchange(push("fix", DIGITS))
out(st == 201, "fixture: version pushed", "%s %r" % (st, b[:200]))

X = helper.make_tensor_value_info
F = TensorProto.FLOAT
ident = model_bytes([helper.make_node("Identity", ["x"], ["y"])], [X("x", F, [2])], [X("y", F, [2])])
ext = onnx.ModelProto()
ext.ParseFromString(model_bytes([helper.make_node("Add", ["x", "w"], ["y"])], [X("x", F, [4])],
                                [X("y", F, [4])],
                                inits=[helper.make_tensor("w", F, [4], [1.0, 2.0, 3.0, 4.0])]))
w = ext.graph.initializer[0]
w.ClearField("float_data")
w.data_location = TensorProto.EXTERNAL
for k, v in (("location", "0000000000000000000000000000000000000000000000000000000000000000"),
             ("length", "16")):
    e = w.external_data.add()
    e.key, e.value = k, v
ext = ext.SerializeToString()

cases = []


def case(name, expect, raw):
    cases.append((name, expect, raw))


# --- HTTP framing -------------------------------------------------------------------------
IDX = "POST /v2/repository/index HTTP/1.1\r\nHost: x\r\n"
case("two Content-Length headers", 400,
     (IDX + "Content-Length: 0\r\nContent-Length: 44\r\n\r\nGET /v2/health/ready HTTP/1.1\r\nHost: x\r\n\r\n").encode())
case("two equal Content-Length headers with a smuggled request", 400,
     (IDX + "Content-Length: 2\r\nContent-Length: 2\r\n\r\n{}GET /v2 HTTP/1.1\r\nHost: x\r\n\r\n").encode())
case("Transfer-Encoding chunked with Content-Length", 400,
     (IDX + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v2 HTTP/1.1\r\nHost: x\r\n\r\n").encode())
case("two Transfer-Encoding headers", 400,
     (IDX + "Transfer-Encoding: chunked\r\nTransfer-Encoding: identity\r\n\r\n0\r\n\r\n").encode())
case("Transfer-Encoding gzip", 501, (IDX + "Transfer-Encoding: gzip\r\n\r\n").encode())
case("Transfer-Encoding gzip, chunked", 501, (IDX + "Transfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n").encode())
case("a 2^64 chunk size", 400, (IDX + "Transfer-Encoding: chunked\r\n\r\n10000000000000000\r\nx\r\n").encode())
case("a non-hex chunk size", 400, (IDX + "Transfer-Encoding: chunked\r\n\r\nzz\r\nx\r\n0\r\n\r\n").encode())
case("a negative chunk size", 400, (IDX + "Transfer-Encoding: chunked\r\n\r\n-5\r\nx\r\n0\r\n\r\n").encode())
case("Content-Length not a number", 400, (IDX + "Content-Length: abc\r\n\r\n").encode())
case("Content-Length negative", 400, (IDX + "Content-Length: -1\r\n\r\n").encode())
case("Content-Length with a sign", 400, (IDX + "Content-Length: +2\r\n\r\n{}").encode())
case("Content-Length past 2^64", 400, (IDX + "Content-Length: 99999999999999999999999\r\n\r\n").encode())
case("HTTP/1.1 without Host", 400, b"GET /v2 HTTP/1.1\r\n\r\n")
case("two Host headers", 400, b"GET /v2 HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n")
case("NUL in a header value", 400, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n")
case("a control character in a header value", 400, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\x01b\r\n\r\n")
case("a header line without a colon", 400, b"GET /v2 HTTP/1.1\r\nHost: x\r\nbroken\r\n\r\n")
case("a space before the header colon", 400, b"GET /v2 HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n")
case("an obsolete folded header line", 400, b"GET /v2 HTTP/1.1\r\nHost: x\r\nX-A: a\r\n b\r\n\r\n")
case("HTTP/2.0 in the request line", 505, b"GET /v2 HTTP/2.0\r\nHost: x\r\n\r\n")
case("HTTP/3.7 in the request line", 505, b"GET /v2 HTTP/3.7\r\nHost: x\r\n\r\n")
case("a URI past the limit", 414, ("GET /v2/" + "a" * 20000 + " HTTP/1.1\r\nHost: x\r\n\r\n").encode())
case("headers past the limit", 431, ("GET /v2 HTTP/1.1\r\nHost: x\r\nX-Big: " + "a" * 20000 + "\r\n\r\n").encode())
case("too many headers", 431, ("GET /v2 HTTP/1.1\r\nHost: x\r\n" + "".join("X-%d: v\r\n" % i for i in range(3000)) + "\r\n").encode())
case("an inference body past --max-body-size", 413,
     req("POST", "/v2/models/digits/infer", b"", {"Content-Length": str(2 << 20), "Content-Type": "application/json"}))
case("an unknown method on a known path", 405, req("BREW", "/v2/models/digits/infer"))
case("DELETE on an inference path", 405, req("DELETE", "/v2/models/digits/infer"))
case("GET on the inference path", 405, req("GET", "/v2/models/digits/infer"))
case("an unknown route", 404, req("GET", "/v3/models"))
case("a path with a NUL escape", 400, req("GET", "/v2/models/dig%00its"))
case("a path with an encoded slash in a model name", 404, req("GET", "/v2/models/a%2fb/ready"))
case("an unsupported Content-Encoding", 415, infer(GOOD, headers={"Content-Encoding": "br"}))
case("Expect with an unknown expectation", 417, req("POST", "/v2/models/digits/infer", GOOD, {"Expect": "200-ok", "Content-Type": "application/json"}))

# --- model names on /v2 -----------------------------------------------------------------------
for label, name in (("upper case", "Digits"), ("an underscore", "my_model"), ("..", ".."),
                    ("encoded ..", "%2e%2e"), ("UTF-8", "d%C3%AFgits"), ("a dot", "a.b"),
                    ("a leading dash", "-digits"), ("a trailing dash", "digits-"),
                    ("a space", "di%20gits"), ("64 characters", "a" * 64),
                    ("300 characters", "b" * 300), ("a percent sign", "a%25b")):
    case("model name with %s: metadata" % label, 400, req("GET", "/v2/models/%s" % name))
    case("model name with %s: infer" % label, 400, infer(GOOD, model=name))
case("an unknown model: metadata", 404, req("GET", "/v2/models/nosuchmodel"))
case("an unknown model: infer", 404, infer(GOOD, model="nosuchmodel"))
case("an unknown model: ready", 404, req("GET", "/v2/models/nosuchmodel/ready"))
# Version names in the v2 protocol are strings: one that is not a loaded version is 404.
case("version not a number", 404, req("GET", "/v2/models/digits/versions/abc"))
case("version zero", 404, req("GET", "/v2/models/digits/versions/0"))
case("version negative", 404, req("GET", "/v2/models/digits/versions/-1"))
case("version past int64", 404, req("GET", "/v2/models/digits/versions/99999999999999999999"))
case("an unknown version", 404, req("GET", "/v2/models/digits/versions/7"))
case("an unknown version: infer", 404, req("POST", "/v2/models/digits/versions/7/infer", GOOD, {"Content-Type": "application/json"}))

# --- JSON inference bodies ----------------------------------------------------------------------
case("an empty body", 400, infer(b""))
case("not JSON", 400, infer(b"hello"))
case("truncated JSON", 400, infer(GOOD[:-3]))
case("trailing garbage after the JSON", 400, infer(GOOD + b"}"))
case("a JSON array at the top", 400, infer(b"[]"))
case("a JSON string at the top", 400, infer(b'"x"'))
case("inputs missing", 400, infer({}))
case("inputs not an array", 400, infer({"inputs": {}}))
case("inputs empty", 400, infer({"inputs": []}))
case("an input that is not an object", 400, infer({"inputs": [1]}))
case("input name missing", 400, infer(tensor(name=None)))
case("input name not a string", 400, infer(tensor(name=5)))
case("an unknown input name", 400, infer(tensor(name="nosuch")))
case("the same input twice", 400, infer({"inputs": tensor()["inputs"] * 2}))
case("shape missing", 400, infer(tensor(shape=None)))
case("shape not an array", 400, infer(tensor(shape="1,64")))
case("a negative dimension", 400, infer(tensor(shape=[-1, 1, 8, 8])))
case("a fractional dimension", 400, infer(tensor(shape=[1.5, 1, 8, 8])))
case("a dimension past int64", 400, infer(tensor(shape=[1e30, 1, 8, 8])))
case("the wrong rank for the model", 400, infer(tensor(shape=[1, 64], data=[0.0] * 64)))
case("the wrong fixed dimension", 400, infer(tensor(shape=[1, 1, 8, 9], data=[0.0] * 72)))
case("fewer data than the shape", 400, infer(tensor(data=[0.0] * 63)))
case("more data than the shape", 400, infer(tensor(data=[0.0] * 65)))
case("datatype missing", 400, infer(tensor(datatype=None)))
case("an unknown datatype", 400, infer(tensor(datatype="FP8")))
case("a lower-case datatype", 400, infer(tensor(datatype="fp32")))
case("the wrong datatype for the model", 400, infer(tensor(datatype="INT32", data=[0] * 64)))
case("data missing", 400, infer(tensor(data=None)))
case("data not an array", 400, infer(tensor(data="0")))
case("a string in FP32 data", 400, infer(tensor(data=["a"] + [0.0] * 63)))
case("null in FP32 data", 400, infer(tensor(data=[None] + [0.0] * 63)))
case("true in FP32 data", 400, infer(tensor(data=[True] + [0.0] * 63)))
case("an object in FP32 data", 400, infer(tensor(data=[{}] + [0.0] * 63)))
case("1e39 in FP32 data", 400, infer(json.dumps(tensor()).replace("[0.0,", "[1e39,", 1)))
case("NaN as a bare word", 400, infer(json.dumps(tensor()).replace("[0.0,", "[NaN,", 1)))
case("Infinity as a bare word", 400, infer(json.dumps(tensor()).replace("[0.0,", "[Infinity,", 1)))
case("a number with two dots", 400, infer(json.dumps(tensor()).replace("[0.0,", "[1.2.3,", 1)))
case("nested data of the wrong shape", 400, infer(tensor(data=[[0.0] * 60, [0.0] * 4])))
case("nesting past the depth limit", 400, infer(b'{"inputs": [' + b"[" * 200 + b"]" * 200 + b"]}"))
case("outputs not an array", 400, infer(dict(tensor(), outputs={})))
case("an unknown output name", 400, infer(dict(tensor(), outputs=[{"name": "nosuch"}])))
case("output without a name", 400, infer(dict(tensor(), outputs=[{}])))
case("parameters not an object", 400, infer(dict(tensor(), parameters=[])))
case("priority not a number", 400, infer(dict(tensor(), parameters={"priority": "high"})))
case("priority negative", 400, infer(dict(tensor(), parameters={"priority": -1})))
case("timeout negative", 400, infer(dict(tensor(), parameters={"timeout": -5})))
case("timeout a string", 400, infer(dict(tensor(), parameters={"timeout": "5s"})))
case("id not a string", 400, infer(dict(tensor(), id=5)))
case("an invalid UTF-8 byte in a name", 400, infer(json.dumps(tensor()).encode().replace(b'"image"', b'"im\xffage"')))
case("an invalid escape in a string", 400, infer(json.dumps(tensor()).replace('"image"', '"im\\qage"')))
case("a lone surrogate escape", 400, infer(json.dumps(tensor()).replace('"image"', '"\\ud800"')))
case("a duplicate key", 400, infer(json.dumps(tensor()).replace('"name": "image"', '"name": "image", "name": "x"')))
case("INT8 past its range", 400, infer(tensor(datatype="INT8", data=[300] + [0] * 63)))
case("UINT8 negative", 400, infer(tensor(datatype="UINT8", data=[-1] + [0] * 63)))
case("BOOL given 2", 400, infer(tensor(datatype="BOOL", data=[2] + [0] * 63)))
case("INT64 past its range", 400, infer(json.dumps(tensor(datatype="INT64", data=[0] * 64)).replace("[0,", "[9223372036854775808,", 1)))
case("an integer type given a fraction", 400, infer(tensor(datatype="INT32", data=[0.5] + [0] * 63)))
case("elements past the limit", 413, infer(tensor(shape=[1 << 20, 1 << 20, 8, 8], data=[0.0])))

# --- binary tensor data -------------------------------------------------------------------------
hdr = json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
                              "parameters": {"binary_data_size": 256}}]}).encode()
bin_h = {"Content-Type": "application/octet-stream"}
case("binary: header length past the body", 400, req("POST", "/v2/models/digits/infer", hdr + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": str(len(hdr) + 300)})))
case("binary: header length negative", 400, req("POST", "/v2/models/digits/infer", hdr + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": "-4"})))
case("binary: header length not a number", 400, req("POST", "/v2/models/digits/infer", hdr + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": "ten"})))
case("binary: data shorter than binary_data_size", 400, req("POST", "/v2/models/digits/infer", hdr + b"\0" * 200, dict(bin_h, **{"Inference-Header-Content-Length": str(len(hdr))})))
case("binary: data longer than binary_data_size", 400, req("POST", "/v2/models/digits/infer", hdr + b"\0" * 300, dict(bin_h, **{"Inference-Header-Content-Length": str(len(hdr))})))
bad_size = hdr.replace(b"256", b"255")
case("binary: binary_data_size not the tensor's size", 400, req("POST", "/v2/models/digits/infer", bad_size + b"\0" * 255, dict(bin_h, **{"Inference-Header-Content-Length": str(len(bad_size))})))
neg = hdr.replace(b"256", b"-256")
case("binary: binary_data_size negative", 400, req("POST", "/v2/models/digits/infer", neg + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": str(len(neg))})))
both = json.dumps({"inputs": [{"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": [0.0] * 64,
                               "parameters": {"binary_data_size": 256}}]}).encode()
case("binary: data and binary_data_size both", 400, req("POST", "/v2/models/digits/infer", both + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": str(len(both))})))
case("binary: raw body of the wrong size", 400, req("POST", "/v2/models/digits/infer", b"\0" * 255, dict(bin_h, **{"Inference-Header-Content-Length": "0"})))
case("binary: empty raw body", 400, req("POST", "/v2/models/digits/infer", b"", dict(bin_h, **{"Inference-Header-Content-Length": "0"})))
case("binary: header that is not JSON", 400, req("POST", "/v2/models/digits/infer", b"xxxx" + b"\0" * 256, dict(bin_h, **{"Inference-Header-Content-Length": "4"})))

# --- the management API -------------------------------------------------------------------------
J = {"Content-Type": "application/json"}
case("model create: not JSON", 400, req("POST", "/api/v1/models", "{", J))
case("model create: name missing", 400, req("POST", "/api/v1/models", {}, J))
case("model create: upper-case name", 400, req("POST", "/api/v1/models", {"name": "Fix2"}, J))
case("model create: name too long", 400, req("POST", "/api/v1/models", {"name": "a" * 64}, J))
case("model create: name not a string", 400, req("POST", "/api/v1/models", {"name": 7}, J))
case("model create: an unknown field", 400, req("POST", "/api/v1/models", {"name": "fix3", "colour": "red"}, J))
case("model create: labels not an object", 400, req("POST", "/api/v1/models", {"name": "fix4", "labels": []}, J))
case("model create: a bad label key", 400, req("POST", "/api/v1/models", {"name": "fix5", "labels": {"-x": "1"}}, J))
case("model create: a bad label value", 400, req("POST", "/api/v1/models", {"name": "fix6", "labels": {"x": "a b"}}, J))
case("model create: a taken name", 409, req("POST", "/api/v1/models", {"name": "fix"}, J))
case("model patch: description not a string", 400, req("PATCH", "/api/v1/models/fix", {"description": 5}, J))
case("model patch: an unknown field", 400, req("PATCH", "/api/v1/models/fix", {"descripton": "typo"}, J))
case("version patch: an unknown field", 400, req("PATCH", "/api/v1/models/fix/versions/1", {"stat": "archived"}, J))
case("alias put: an unknown field", 400, req("PUT", "/api/v1/models/fix/aliases/prod", {"version": 1, "force": True}, J))
case("model get: unknown", 404, req("GET", "/api/v1/models/nosuch"))
case("model delete: still has versions", 409, req("DELETE", "/api/v1/models/fix"))
case("models list: limit zero", 400, req("GET", "/api/v1/models?limit=0"))
case("models list: limit not a number", 400, req("GET", "/api/v1/models?limit=abc"))
case("models list: limit too large", 400, req("GET", "/api/v1/models?limit=100000"))
case("models list: a bad page token", 400, req("GET", "/api/v1/models?page_token=%21%21"))
case("models list: a bad selector", 400, req("GET", "/api/v1/models?selector=%3D%3D%3D"))
case("models list: a bad order", 400, req("GET", "/api/v1/models?order=sideways"))
case("push: to an unknown model", 404, push("nosuch", DIGITS))
case("push: an empty body", 422, push("fix", b""))
case("push: random bytes", 422, push("fix", os.urandom(4096)))
case("push: a truncated model", 422, push("fix", DIGITS[: len(DIGITS) // 2]))
case("push: an unsupported operator", 422, push("fix", model_bytes([helper.make_node("NoSuchOp", ["x"], ["y"])], [X("x", F, [2])], [X("y", F, [2])])))
case("push: a node reading a missing tensor", 422, push("fix", model_bytes([helper.make_node("Add", ["x", "nosuch"], ["y"])], [X("x", F, [2])], [X("y", F, [2])])))
case("push: external data pointing into the store", 422, push("fix", ext))
case("push: the wrong digest", 400, push("fix", ident, {"X-Capstan-Digest": "sha256:" + "0" * 64}))
case("push: a malformed digest", 400, push("fix", ident, {"X-Capstan-Digest": "md5:abc"}))
case("push: a bad label", 400, push("fix", ident, {"X-Capstan-Label": "bad key=1"}))
case("push: an artifact past the size limit", 413, req("POST", "/api/v1/models/fix/versions", b"", {"Content-Length": str(1 << 62), "Content-Type": "application/octet-stream"}))
case("version get: not a number or alias", 400, req("GET", "/api/v1/models/fix/versions/UPPER"))
case("version get: unknown", 404, req("GET", "/api/v1/models/fix/versions/99"))
case("version patch: an unknown state", 400, req("PATCH", "/api/v1/models/fix/versions/1", {"state": "gone"}, J))
case("version patch: labels not an object", 400, req("PATCH", "/api/v1/models/fix/versions/1", {"labels": 3}, J))
case("alias put: version missing", 400, req("PUT", "/api/v1/models/fix/aliases/prod", {}, J))
case("alias put: version not a number", 400, req("PUT", "/api/v1/models/fix/aliases/prod", {"version": "one"}, J))
case("alias put: an unknown version", 404, req("PUT", "/api/v1/models/fix/aliases/prod", {"version": 42}, J))
case("alias put: a numeric alias name", 400, req("PUT", "/api/v1/models/fix/aliases/12", {"version": 1}, J))
case("alias put: the reserved name latest", 400, req("PUT", "/api/v1/models/fix/aliases/latest", {"version": 1}, J))
case("alias put: an upper-case alias", 400, req("PUT", "/api/v1/models/fix/aliases/Prod", {"version": 1}, J))
case("alias delete: unknown", 404, req("DELETE", "/api/v1/models/fix/aliases/nosuch"))
case("audit: limit negative", 400, req("GET", "/api/v1/audit?limit=-1"))
case("audit: a bad model name", 400, req("GET", "/api/v1/audit?model=Bad_Name"))
case("gc: a bad dry_run value", 400, req("POST", "/api/v1/gc?dry_run=maybe"))

# --- devices: YAML, CEL and claims --------------------------------------------------------------
Y = {"Content-Type": "application/yaml"}
CLAIM = "apiVersion: resource.k8s.io/v1\nkind: ResourceClaim\nmetadata: {name: %s}\nspec:\n  devices:\n    requests:\n    - name: g\n      exactly: %s\n"
CLASS = "apiVersion: resource.k8s.io/v1\nkind: DeviceClass\nmetadata: {name: %s}\nspec:\n  selectors:\n  - cel: {expression: '%s'}\n"
case("claim: malformed YAML", 400, req("POST", "/api/v1/claims", "kind: [", Y))
case("claim: YAML with a tab indent", 400, req("POST", "/api/v1/claims", "kind: ResourceClaim\nmetadata:\n\tname: a\n", Y))
case("claim: the wrong apiVersion", 400, req("POST", "/api/v1/claims", (CLAIM % ("c1", "{deviceClassName: gpu}")).replace("resource.k8s.io/v1", "v9"), Y))
case("claim: the wrong kind", 400, req("POST", "/api/v1/claims", (CLAIM % ("c2", "{deviceClassName: gpu}")).replace("kind: ResourceClaim", "kind: Pod"), Y))
case("claim: name missing", 400, req("POST", "/api/v1/claims", (CLAIM % ("c3", "{deviceClassName: gpu}")).replace("metadata: {name: c3}", "metadata: {}"), Y))
case("claim: an invalid name", 400, req("POST", "/api/v1/claims", CLAIM % ("Bad_Name", "{deviceClassName: gpu}"), Y))
case("claim: count -1", 400, req("POST", "/api/v1/claims", CLAIM % ("c4", "{deviceClassName: gpu, allocationMode: ExactCount, count: -1}"), Y))
case("claim: count zero", 400, req("POST", "/api/v1/claims", CLAIM % ("c5", "{deviceClassName: gpu, allocationMode: ExactCount, count: 0}"), Y))
case("claim: count a string", 400, req("POST", "/api/v1/claims", CLAIM % ("c6", "{deviceClassName: gpu, count: many}"), Y))
case("claim: an unknown allocation mode", 400, req("POST", "/api/v1/claims", CLAIM % ("c7", "{deviceClassName: gpu, allocationMode: Some}"), Y))
case("claim: class missing", 400, req("POST", "/api/v1/claims", CLAIM % ("c8", "{count: 1}"), Y))
case("claim: an unknown field", 400, req("POST", "/api/v1/claims", CLAIM % ("c9", "{deviceClassName: gpu, colour: red}"), Y))
case("claim: a CEL syntax error", 400, req("POST", "/api/v1/claims", CLAIM % ("c10", "{deviceClassName: gpu, selectors: [{cel: {expression: 'device.driver ==' }}]}"), Y))
case("claim: a CEL type error", 400, req("POST", "/api/v1/claims", CLAIM % ("c11", "{deviceClassName: gpu, selectors: [{cel: {expression: '1 + \"a\"'}}]}"), Y))
case("claim: a CEL expression that is not boolean", 400, req("POST", "/api/v1/claims", CLAIM % ("c12", "{deviceClassName: gpu, selectors: [{cel: {expression: '\"x\"'}}]}"), Y))
case("claim: a CEL expression past the size limit", 400, req("POST", "/api/v1/claims", CLAIM % ("c13", "{deviceClassName: gpu, selectors: [{cel: {expression: '%s'}}]}" % " || ".join(["device.driver == \"x%d\"" % i for i in range(3000)])), Y))
case("claim: a bad quantity", 400, req("POST", "/api/v1/claims", CLAIM % ("c14", "{deviceClassName: gpu, capacity: {requests: {memory: 12Qi}}}"), Y))
case("claim: an unknown class", 422, req("POST", "/api/v1/claims", CLAIM % ("c15", "{deviceClassName: nosuch}"), Y))
case("claim: more devices than exist", 422, req("POST", "/api/v1/claims", CLAIM % ("c16", "{deviceClassName: gpu, allocationMode: ExactCount, count: 64}"), Y))
case("claim: an unsupported media type", 415, req("POST", "/api/v1/claims", "x", {"Content-Type": "text/plain"}))
case("claim: an empty body", 400, req("POST", "/api/v1/claims", "", J))
case("claim: JSON that is an array", 400, req("POST", "/api/v1/claims", "[]", J))
case("claim get: unknown", 404, req("GET", "/api/v1/claims/nosuch"))
case("class: a CEL syntax error", 400, req("POST", "/api/v1/deviceclasses", CLASS % ("k1", "device.("), Y))
case("class: an unknown CEL variable", 400, req("POST", "/api/v1/deviceclasses", CLASS % ("k2", "nosuch.driver == \"x\""), Y))
case("class: a taken name", 409, req("POST", "/api/v1/deviceclasses", CLASS % ("gpu", "true"), Y))
case("class delete: unknown", 404, req("DELETE", "/api/v1/deviceclasses/nosuch"))

for name, expect, raw in cases:
    check(name, expect, raw)
print("PASS catalogue size %d" % len(cases) if len(cases) >= 150 else "FAIL catalogue size %d < 150" % len(cases))
