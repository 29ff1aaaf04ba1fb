"""artifacts_test.py - what a model's external data may reach, and paths in answers.

Usage: artifacts_test.py prepare TMP      (writes TMP/data/models/ and TMP/outside.bin)
       artifacts_test.py check TMP URL    (runs the checks against the server on TMP/data)

Every model is `y = x + w` with w [4] FP32 in external data; a load that reads the right
bytes answers x + [1, 2, 3, 4]. Prints one PASS/FAIL line per check.
"""
import hashlib
import http.client
import json
import os
import sys
from urllib.parse import urlparse

import onnx
from onnx import TensorProto, helper

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks  # noqa: E402

W = [1.0, 2.0, 3.0, 4.0]
WBYTES = b"".join(__import__("struct").pack("<f", v) for v in W)


_check = Checks()


def out(ok, name, why=""):
    """One check, in this file's (ok, name, why) order: check() here runs a case."""
    _check(name, ok, why)


def model(location, doc=""):
    X = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Add", ["x", "w"], ["y"])], "g",
                          [X("x", TensorProto.FLOAT, [4])], [X("y", TensorProto.FLOAT, [4])],
                          initializer=[helper.make_tensor("w", TensorProto.FLOAT, [4], W)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)], doc_string=doc)
    w = m.graph.initializer[0]
    w.ClearField("float_data")
    w.data_location = TensorProto.EXTERNAL
    for k, v in (("location", location), ("length", "16")):
        e = w.external_data.add()
        e.key, e.value = k, v
    return m.SerializeToString()


def prepare(tmp):
    models = os.path.join(tmp, "data", "models")
    os.makedirs(os.path.join(models, "sub"))
    open(os.path.join(tmp, "outside.bin"), "wb").write(b"\x00" * 16)
    open(os.path.join(models, "w.bin"), "wb").write(WBYTES)
    open(os.path.join(models, "sub", "w.bin"), "wb").write(WBYTES)
    os.symlink(os.path.join(tmp, "outside.bin"), os.path.join(models, "out.bin"))
    os.symlink("w.bin", os.path.join(models, "in.bin"))
    os.symlink(tmp, os.path.join(models, "up"))
    for name, loc in (("beside", "w.bin"), ("below", "sub/w.bin"), ("linkin", "in.bin"),
                      ("absolute", os.path.join(tmp, "outside.bin")), ("climbs", "../../outside.bin"),
                      ("linkout", "out.bin"), ("dirlink", "up/outside.bin"), ("missing", "nosuch.bin")):
        open(os.path.join(models, name + ".onnx"), "wb").write(model(loc))
    out(True, "prepared")


def call(url, method, path, body=None, headers=None):
    u = urlparse(url)
    c = http.client.HTTPConnection(u.hostname, u.port, timeout=30)
    c.request(method, path, body, headers or {})
    r = c.getresponse()
    data = r.read()
    c.close()
    return r.status, data


def no_path(name, tmp, data, own=None):
    """No path of the server in data; `own`, the location the model itself wrote, may be."""
    text = data.decode("utf-8", "replace").replace(own or "\0", "")
    leaked = [p for p in (tmp, "/tmp/", "blobs/sha256") if p in text]
    out(not leaked, name + ": no path in the answer", "%s in %s" % (leaked[:1], text[:300]))


def infer_ok(name, url, model_name):
    doc = {"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [0.5] * 4}]}
    st, data = call(url, "POST", "/v2/models/%s/infer" % model_name, json.dumps(doc),
                    {"Content-Type": "application/json"})
    got = json.loads(data)["outputs"][0]["data"] if st == 200 else None
    out(got == [v + 0.5 for v in W], name + ": infers with the weights beside it",
        "%s %r" % (st, data[:200]))


def check(tmp, url):
    for name, why in (("absolute", "relative path"), ("climbs", "relative path"),
                      ("linkout", "symlink"), ("dirlink", "symlink"), ("missing", "nosuch.bin")):
        st, data = call(url, "POST", "/v2/repository/models/%s/load" % name, b"{}")
        err = json.loads(data).get("error", "") if data.startswith(b"{") else ""
        out(400 <= st < 500 and "'w'" in err and why in err,
            "%s: refused naming the tensor and why" % name, "%s %r" % (st, data[:300]))
        own = os.path.join(tmp, "outside.bin")
        no_path(name, tmp, data, own)
        st, data = call(url, "POST", "/v2/repository/index", b"{}")
        no_path(name + ": index reason", tmp, data, own)

    # The server runs with --threads 2: refused loads come first and must give back the
    # engine threads they reserved, or the two good loads after them find none left.
    for name in ("beside", "below", "linkin"):
        if name == "linkin":
            st, data = call(url, "POST", "/v2/repository/models/beside/unload", b"{}")
            out(st == 200, "beside: unloads", "%s %r" % (st, data[:200]))
        st, data = call(url, "POST", "/v2/repository/models/%s/load" % name, b"{}")
        out(st == 200, "%s: loads after five refused loads" % name, "%s %r" % (st, data[:300]))
        if st == 200:
            infer_ok(name, url, name)
    # The registry: any external data in a pushed artifact is refused, the cross-blob
    # read included (a location naming another blob's file in the same blobs/sha256/XX/).
    J = {"Content-Type": "application/json"}
    for m in ("victim", "thief"):
        st, data = call(url, "POST", "/api/v1/models", json.dumps({"name": m}), J)
        out(st == 201, "create %s" % m, "%s %r" % (st, data[:200]))
    X = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "v",
                          [X("x", TensorProto.FLOAT, [4])], [X("y", TensorProto.FLOAT, [4])])
    victim = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()
    st, data = call(url, "POST", "/api/v1/models/victim/versions", victim,
                    {"Content-Type": "application/octet-stream"})
    out(st == 201, "push the victim", "%s %r" % (st, data[:200]))
    digest = hashlib.sha256(victim).hexdigest()
    thief = None
    for i in range(100000):
        cand = model(digest[2:], doc="try %d" % i)
        if hashlib.sha256(cand).hexdigest()[:2] == digest[:2]:
            thief = cand
            break
    st, data = call(url, "POST", "/api/v1/models/thief/versions", thief,
                    {"Content-Type": "application/octet-stream"})
    err = json.loads(data).get("error", "") if data.startswith(b"{") else ""
    out(st == 422 and "'w'" in err and "inline" in err,
        "push: external data naming another blob is refused (422, the tensor named)",
        "%s %r" % (st, data[:300]))
    no_path("push: cross-blob", tmp, data)
    st, data = call(url, "POST", "/api/v1/models/thief/versions", model("w.bin"),
                    {"Content-Type": "application/octet-stream"})
    out(st == 422 and "'w'" in data.decode(), "push: any external data is refused",
        "%s %r" % (st, data[:300]))
    st, data = call(url, "POST", "/api/v1/models/thief/versions", b"\x0a\xff\xff",
                    {"Content-Type": "application/octet-stream"})
    out(st == 422, "push: a malformed model is 422", "%s %r" % (st, data[:300]))
    no_path("push: malformed", tmp, data)

    # Issue 10 item 2: versions asked for by number hold engine threads only while the budget
    # has room. --threads 2: free the repository's two, pin versions 1 and 2, then the default
    # (3) and version 1 again must still be served.
    for name in ("below", "linkin"):
        call(url, "POST", "/v2/repository/models/%s/unload" % name, b"{}")
    st, _ = call(url, "POST", "/api/v1/models", json.dumps({"name": "pin"}), J)
    for i in range(3):
        st, data = call(url, "POST", "/api/v1/models/pin/versions", model_ident(i),
                        {"Content-Type": "application/octet-stream"})
        out(st == 201, "pin: push version %d" % (i + 1), "%s %r" % (st, data[:200]))
    doc = json.dumps({"inputs": [{"name": "x", "shape": [4], "datatype": "FP32", "data": [1] * 4}]})
    for path in ("/versions/1", "/versions/2", "", "/versions/1", "/versions/2", ""):
        st, data = call(url, "POST", "/v2/models/pin%s/infer" % path, doc, J)
        out(st == 200, "pin: infer%s with two engine threads" % (path or " (default)"),
            "%s %r" % (st, data[:300]))


def model_ident(i):
    X = helper.make_tensor_value_info
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "v%d" % i,
                          [X("x", TensorProto.FLOAT, [4])], [X("y", TensorProto.FLOAT, [4])])
    return helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]).SerializeToString()


if sys.argv[1] == "prepare":
    prepare(sys.argv[2])
else:
    check(sys.argv[2], sys.argv[3])
