"""Checks against `capstan serve --model-repository` (started by test_modelrepo.sh).

Usage: modelrepo_test.py PHASE BASE_URL TMPDIR CAPSTAN ROOT

PHASE `setup` writes the repository TMPDIR/repo; `none`, `explicit` and `poll` check a server
in that control mode. Prints one `PASS name` or `FAIL name: why` line per check. Standard
library, numpy and onnx only; raw HTTP, as Triton's Python client would send it.
"""
import base64
import json
import os
import shutil
import sys
import time
import urllib.parse

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import capstan_http  # noqa: E402
from capstan_http import Checks, jbody  # noqa: E402

PHASE, BASE, TMP, CAPSTAN, ROOT = sys.argv[1:6]
REPO = os.path.join(TMP, "repo")
DIGITS = os.path.join(ROOT, "models", "digits.onnx")


check = Checks()


def request(method, path, body=None, headers=None):
    u = urllib.parse.urlsplit(BASE)
    return capstan_http.request(u.hostname, u.port, method, path, body, headers, 60)


def expect(name, method, path, status, body=None, contains=None):
    st, h, b = request(method, path, body)
    ok = st == status and (not contains or contains in b.decode(errors="replace"))
    if ok and status >= 400:
        ok = isinstance(jbody(b), dict) and bool((jbody(b) or {}).get("error"))
    check(name, ok, "got %d %s, want %d%s" % (st, b[:300], status,
                                               " with %r" % contains if contains else ""))
    return jbody(b)


def scale_model(path, k):
    """y = x * k on FP32 [-1, 4]: versions that answer differently."""
    import onnx
    from onnx import TensorProto, helper
    g = helper.make_graph(
        [helper.make_node("Mul", ["x", "k"], ["y"])], "scale",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [None, 4])],
        [helper.make_tensor("k", TensorProto.FLOAT, [1], [float(k)])])
    os.makedirs(os.path.dirname(path), exist_ok=True)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), path)


def put(path, text):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write(text)


def setup():
    os.makedirs(os.path.join(REPO, "digits", "1"))
    shutil.copy(DIGITS, os.path.join(REPO, "digits", "1", "model.onnx"))
    put(os.path.join(REPO, "digits", "config.pbtxt"), """
# Triton's own example layout, with a field capstan does not honour (warned, skipped).
name: "digits"
platform: "onnxruntime_onnx"
max_batch_size: 8
input [ { name: "image" data_type: TYPE_FP32 dims: [ 1, 8, 8 ] } ]
output [
  {
    name: "probabilities"
    data_type: TYPE_FP32
    dims: [ 10 ]
  }
]
instance_group [ { count: 2, kind: KIND_CPU } ]
dynamic_batching { preferred_batch_size: [ 4, 8 ] max_queue_delay_microseconds: 100 }
optimization { graph { level: 1 } }
""")
    scale_model(os.path.join(REPO, "scale", "1", "model.onnx"), 1)
    scale_model(os.path.join(REPO, "scale", "2", "model.onnx"), 2)
    put(os.path.join(REPO, "scale", "config.pbtxt"), 'version_policy: { all { } }\n')
    scale_model(os.path.join(REPO, "yam", "1", "model.onnx"), 3)
    put(os.path.join(REPO, "yam", "config.yaml"), "max_batch_size: 0\ninstances: 1\n")
    # Not models, not versions: skipped.
    put(os.path.join(REPO, "notes.txt"), "a file, not a model\n")
    os.makedirs(os.path.join(REPO, ".hidden", "1"))
    os.makedirs(os.path.join(REPO, "scale", "01"))
    check("repository written", True)


def scale_infer(model, version=None, x=(1, 2, 3, 4)):
    path = "/v2/models/%s%s/infer" % (model, "/versions/%s" % version if version else "")
    st, _, b = request("POST", path, {"inputs": [{"name": "x", "shape": [1, 4], "datatype": "FP32",
                                                  "data": list(x)}]})
    o = ((jbody(b) or {}).get("outputs") or [{}])[0]
    return st, o.get("data"), b


def digits_ok(model="digits"):
    x = json.load(open(os.path.join(ROOT, "models", "digits.sample.json")))["request"]
    st, _, b = request("POST", "/v2/models/%s/infer" % model, x)
    return st == 200 and len(((jbody(b) or {}).get("outputs") or [{}])[0].get("data", [])) == 10


def index():
    st, _, b = request("POST", "/v2/repository/index", {})
    rows = jbody(b) or []
    return {(r["name"], r.get("version")): r for r in rows}, b


def wait_for(name, cond, secs=15):
    end = time.time() + secs
    while time.time() < end:
        ok, why = cond()
        if ok:
            return check(name, True)
        time.sleep(0.2)
    return check(name, False, why)


def none_mode():
    j = expect("models list", "GET", "/v2/models", 200)
    check("GET /v2/models lists the folder's models, sorted",
          (j or {}).get("models") == ["digits", "scale", "yam"], j)
    idx, b = index()
    check("every model loaded at start",
          all(idx.get(k, {}).get("state") == "READY" for k in
              (("digits", "1"), ("scale", "1"), ("scale", "2"), ("yam", "1"))), b)
    check("digits infers", digits_ok())
    st, y, b = scale_infer("scale", "2")
    check("version 2 of scale answers as version 2", st == 200 and y == [2, 4, 6, 8], b)
    st, y, b = scale_infer("scale")
    check("the default version is the highest", st == 200 and y == [2, 4, 6, 8], b)
    j = expect("scale metadata", "GET", "/v2/models/scale", 200)
    check("metadata lists both versions", sorted((j or {}).get("versions", [])) == ["1", "2"], j)
    c = expect("digits config", "GET", "/v2/models/digits/config", 200)
    c = c or {}
    check("config: name, platform, backend",
          c.get("name") == "digits" and c.get("platform") == "onnxruntime_onnx" and
          c.get("backend") == "onnxruntime", c)
    check("config: config.pbtxt's max_batch_size", c.get("max_batch_size") == 8, c)
    check("config: input without the batch dimension",
          c.get("input") == [{"name": "image", "data_type": "TYPE_FP32", "dims": [1, 8, 8]}], c)
    check("config: output", c.get("output") == [{"name": "probabilities",
                                                  "data_type": "TYPE_FP32", "dims": [10]}], c)
    check("config: instance_group count", [g.get("count") for g in c.get("instance_group", [])]
          == [2] and c["instance_group"][0].get("kind") == "KIND_CPU", c)
    check("config: dynamic_batching", c.get("dynamic_batching") ==
          {"preferred_batch_size": [4, 8], "max_queue_delay_microseconds": 100}, c)
    check("config: version_policy latest 1", c.get("version_policy") ==
          {"latest": {"num_versions": 1}}, c)
    c = expect("scale config", "GET", "/v2/models/scale/versions/1/config", 200) or {}
    check("config: version_policy all", c.get("version_policy") == {"all": {}}, c)
    c = expect("yam config", "GET", "/v2/models/yam/config", 200) or {}
    check("config.yaml applies: no batching, so dims keep the batch dimension",
          c.get("max_batch_size") == 0 and c.get("input", [{}])[0].get("dims") == [-1, 4] and
          "dynamic_batching" not in c, c)
    expect("config of an unknown model is 404", "GET", "/v2/models/nope/config", 404)
    j = expect("server metadata", "GET", "/v2", 200) or {}
    check("server metadata names model_configuration",
          "model_configuration" in j.get("extensions", []), j)
    expect("none mode: load is 400", "POST", "/v2/repository/models/digits/load", 400,
           contains="none")
    expect("none mode: unload is 400", "POST", "/v2/repository/models/digits/unload", 400,
           contains="explicit")


def explicit_mode():
    idx, b = index()
    check("explicit: --load-model digits loaded", idx.get(("digits", "1"), {}).get("state") ==
          "READY", b)
    check("explicit: the others are listed, not loaded",
          idx.get(("scale", None), {}).get("state") == "UNAVAILABLE" and
          idx.get(("yam", None), {}).get("state") == "UNAVAILABLE", b)
    expect("explicit: load scale", "POST", "/v2/repository/models/scale/load", 200)
    st, y, b = scale_infer("scale", "1")
    check("explicit: scale version 1 after load", st == 200 and y == [1, 2, 3, 4], b)
    # `config`: a JSON model configuration applied as Triton applies it (the model reloads).
    cfg = {"name": "scale", "max_batch_size": 4, "instance_group": [{"count": 2,
                                                                     "kind": "KIND_CPU"}],
           "dynamic_batching": {"max_queue_delay_microseconds": 50},
           "input": [{"name": "x", "data_type": "TYPE_FP32", "dims": ["4"]}],
           "version_policy": {"specific": {"versions": [1]}}}
    expect("explicit: load with config", "POST", "/v2/repository/models/scale/load", 200,
           {"parameters": {"config": json.dumps(cfg)}})
    c = expect("config after a config load", "GET", "/v2/models/scale/config", 200) or {}
    check("config parameter applied: max_batch_size, instances, delay, policy",
          c.get("max_batch_size") == 4 and c.get("instance_group", [{}])[0].get("count") == 2 and
          c.get("dynamic_batching", {}).get("max_queue_delay_microseconds") == 50 and
          c.get("version_policy") == {"specific": {"versions": [1]}}, c)
    idx, b = index()
    check("config's version_policy: version 2 unloaded",
          ("scale", "2") not in idx and idx.get(("scale", "1"), {}).get("state") == "READY", b)
    st, y, b = scale_infer("scale", x=[1, 1, 1, 1])
    check("scale still infers after the config load", st == 200 and y == [1, 1, 1, 1], b)
    for name, params, want in (
            ("an unsupported config field", {"config": json.dumps({"optimization": {}})},
             "optimization"),
            ("config not JSON", {"config": "{max_batch_size: 4"}, "config"),
            ("config not a string", {"config": {"max_batch_size": 4}}, "config"),
            ("config naming another model", {"config": json.dumps({"name": "other"})}, "other"),
            ("config with an input the model lacks",
             {"config": json.dumps({"input": [{"name": "nope", "data_type": "TYPE_FP32"}]})},
             "nope"),
            ("config with a wrong data_type",
             {"config": json.dumps({"input": [{"name": "x", "data_type": "TYPE_INT8"}]})},
             "data_type"),
            ("config with preferred above max_batch_size",
             {"config": json.dumps({"max_batch_size": 2,
                                    "dynamic_batching": {"preferred_batch_size": [4]}})},
             "preferred"),
            ("an unsupported parameter", {"foo": 1}, "foo"),
            ("a file parameter other than model.onnx", {"config": "{}", "file:1/weights.bin":
                                                        "AAAA"}, "file:1/weights.bin"),
            ("file: without config", {"file:1/model.onnx": "AAAA"}, "config"),
            ("file: content not base64", {"config": "{}", "file:1/model.onnx": "not base64!"},
             "base64")):
        expect("load refuses %s (400 naming it)" % name, "POST",
               "/v2/repository/models/scale/load", 400, {"parameters": params}, contains=want)
    expect("load refuses a body field other than parameters", "POST",
           "/v2/repository/models/scale/load", 400, {"params": {}}, contains="params")
    expect("unload refuses an unsupported parameter", "POST",
           "/v2/repository/models/scale/unload", 400, {"parameters": {"force": True}},
           contains="force")
    # `file:`: a model of a new name, from base64 content.
    b64 = base64.b64encode(open(DIGITS, "rb").read()).decode()
    expect("file: load of a new name", "POST", "/v2/repository/models/fresh/load", 200,
           {"parameters": {"config": json.dumps({"name": "fresh", "max_batch_size": 16}),
                           "file:3/model.onnx": b64}})
    check("file: model infers", digits_ok("fresh"))
    c = expect("file: model config", "GET", "/v2/models/fresh/config", 200) or {}
    check("file: model has its config and version", c.get("max_batch_size") == 16, c)
    idx, b = index()
    check("file: model in the index as version 3", idx.get(("fresh", "3"), {}).get("state") ==
          "READY", b)
    written = os.path.join(TMP, "data", "repository", "fresh", "3", "model.onnx")
    check("file: content written under --data-dir, byte for byte",
          os.path.exists(written) and open(written, "rb").read() == open(DIGITS, "rb").read(),
          written)
    j = expect("models list after a file: load", "GET", "/v2/models", 200) or {}
    check("GET /v2/models lists the new name", "fresh" in j.get("models", []), j)
    expect("unload scale", "POST", "/v2/repository/models/scale/unload", 200,
           {"parameters": {"unload_dependents": False}})
    expect("ready after unload is 400", "GET", "/v2/models/scale/ready", 400)
    expect("load of an unknown name without files is 404", "POST",
           "/v2/repository/models/nobody/load", 404)


def poll_mode():
    check("poll: everything loaded at start", digits_ok())
    # A new folder joins and loads.
    scale_model(os.path.join(REPO, "lat", "1", "model.onnx"), 5)

    def served(model, version, want):
        def cond():
            st, y, b = scale_infer(model, version)
            return st == 200 and y == want, (st, b[:200])
        return cond
    wait_for("poll: a new model folder loads", served("lat", None, [5, 10, 15, 20]))
    # A broken new version: the old one keeps serving, the index says why.
    os.makedirs(os.path.join(REPO, "lat", "2"))
    with open(os.path.join(REPO, "lat", "2", "model.onnx"), "wb") as f:
        f.write(b"this is not an ONNX model")

    def failed():
        idx, b = index()
        row = idx.get(("lat", "2"), {})
        return row.get("state") == "UNAVAILABLE" and row.get("reason"), b
    wait_for("poll: a broken version shows UNAVAILABLE with its reason", failed)
    st, y, b = scale_infer("lat")
    check("poll: the old version keeps serving", st == 200 and y == [5, 10, 15, 20], b)
    # Fixed: version 2 loads and, by latest 1, version 1 unloads.
    scale_model(os.path.join(REPO, "lat", "2", "model.onnx"), 6)
    wait_for("poll: the fixed version loads", served("lat", "2", [6, 12, 18, 24]))

    def v1_gone():
        st, _, b = scale_infer("lat", "1")
        return st == 404, (st, b[:200])
    wait_for("poll: the version no longer selected unloads", v1_gone)
    # A version removed from disk unloads (scale has version_policy all).
    shutil.rmtree(os.path.join(REPO, "scale", "2"))

    def scale2_gone():
        st, _, b = scale_infer("scale", "2")
        return st == 404, (st, b[:200])
    wait_for("poll: a removed version unloads", scale2_gone)
    st, y, b = scale_infer("scale", "1")
    check("poll: the other version stays", st == 200 and y == [1, 2, 3, 4], b)
    # A removed folder unloads, and the index says so.
    shutil.rmtree(os.path.join(REPO, "lat"))

    def lat_gone():
        idx, b = index()
        row = idx.get(("lat", None), {})
        return row.get("state") == "UNAVAILABLE" and "removed" in row.get("reason", ""), b
    wait_for("poll: a removed folder unloads", lat_gone)
    expect("poll mode: load is 400", "POST", "/v2/repository/models/digits/load", 400,
           contains="poll")


{"setup": setup, "none": none_mode, "explicit": explicit_mode, "poll": poll_mode}[PHASE]()
