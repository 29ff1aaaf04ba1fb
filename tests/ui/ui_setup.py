"""ui_setup.py - what the browser test finds on the server: the digits and spare models (two
versions each, pushed by test_ui.sh) with `prod` on v1, deployments g1 (8 Gi) and g2 (6 Gi) sharing the simulated 16 Gi GPU, g3
(4 Gi) Pending for want of memory, c1 (no device) serving digits v1 with a canary strategy
whose pause holds a rollout at 60% until a button ends it, a viewer token, and a digit to
draw: a sklearn 8x8 digit (pixels 0..16), inked at 16 where it is >= 8, that the model
classifies as its label.

Usage: ui_setup.py URL ADMIN_TOKEN ROOT OUT.json. Prints FAIL lines; writes {viewer, label,
pixels} to OUT.json.
"""
import json
import sys
import time
import urllib.parse

sys.path.insert(0, sys.argv[3] + "/tests/lib")
from capstan_http import jbody, request  # noqa: E402

URL, ADMIN, ROOT, OUT = sys.argv[1:5]
u = urllib.parse.urlparse(URL)
AUTH = {"Authorization": "Bearer " + ADMIN}


def call(method, path, body=None):
    st, _, b = request(u.hostname, u.port, method, path, body, AUTH)
    return st, jbody(b) if b else None


def must(what, st, j, ok=(200, 201)):
    if st not in ok:
        print("FAIL setup: %s: %s %s" % (what, st, j))
        sys.exit(1)


def gpu(gib):
    return {"requests": [{"name": "gpu", "exactly": {"deviceClassName": "gpu.nvidia.com",
                                                     "capacity": {"requests":
                                                                  {"memory": "%dGi" % gib}}}}]}


for m in ("digits", "spare"):
    must("alias prod", *call("PUT", "/api/v1/models/%s/aliases/prod" % m, {"version": 1}))
for name, gib in (("g1", 8), ("g2", 6), ("g3", 4)):
    must("deployment " + name, *call("PUT", "/api/v1/deployments/" + name, {
        "apiVersion": "capstan.dev/v1", "kind": "Deployment", "metadata": {"name": name},
        "spec": {"model": "digits", "instances": {"min": 1}, "resources": {"devices": gpu(gib)}}}))
    for _ in range(100):
        st, j = call("GET", "/api/v1/deployments/" + name)
        s = j.get("status", {})
        if s.get("readyInstances") == 1 or "cannot be placed" in s.get("reason", ""):
            break
        time.sleep(0.1)
must("deployment c1", *call("PUT", "/api/v1/deployments/c1", {
    "apiVersion": "capstan.dev/v1", "kind": "Deployment", "metadata": {"name": "c1"},
    "spec": {"model": "digits", "traffic": [{"version": 1, "percent": 100}],
             "instances": {"min": 1},
             "rollout": {"strategy": "canary", "steps": [{"setWeight": 60}, {"pause": "1h"}]}}}))
for _ in range(100):
    st, j = call("GET", "/api/v1/deployments/c1")
    if j.get("status", {}).get("readyInstances") == 1:
        break
    time.sleep(0.1)
else:
    print("FAIL setup: deployment c1 is not ready: %s" % j.get("status"))
    sys.exit(1)
st, j = call("POST", "/api/v1/tokens", {"name": "viewer", "role": "viewer"})
must("viewer token", st, j)
viewer = j["token"]

from sklearn.datasets import load_digits  # noqa: E402

d = load_digits()
LABEL = 3
for img, label in zip(d.data, d.target):
    if label != LABEL:
        continue
    pixels = [16.0 if v >= 8 else 0.0 for v in img]
    st, r = call("POST", "/v2/models/digits/infer", {"inputs": [
        {"name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32", "data": pixels}]})
    must("infer", st, r, (200,))
    o = r["outputs"][0]["data"]
    if o.index(max(o)) == LABEL:
        break
else:
    print("FAIL setup: no inked %d is classified as %d" % (LABEL, LABEL))
    sys.exit(1)
json.dump({"viewer": viewer, "label": LABEL, "pixels": pixels}, open(OUT, "w"))
