"""implicit_test.py - implicit deployments end to end against a server started with
--model digits=models/digits.onnx (see test_implicit.sh).

Usage: implicit_test.py PHASE URL CAPSTAN ROOT, PHASE main or restart. Prints one PASS/FAIL
line per check.
"""
import json
import subprocess
import sys
import urllib.parse

sys.path.insert(0, sys.argv[4] + "/tests/lib")
from capstan_http import Api, Checks, poll, request  # noqa: E402

PHASE, URL, CAPSTAN, ROOT = sys.argv[1:5]
u = urllib.parse.urlparse(URL)
HOST, PORT = u.hostname, u.port
SAMPLE = json.load(open(ROOT + "/models/digits.sample.json"))["request"]
ANNOTATION = "capstan.dev/implicit"

check = Checks(limit=600)
API = Api(HOST, PORT)
call, apply, status = API.call, API.apply, API.status


def cli(*args):
    p = subprocess.run([CAPSTAN] + list(args), capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout, p.stderr


def infer(version=None):
    path = "/v2/models/digits%s/infer" % ("/versions/" + version if version else "")
    return call("POST", path, SAMPLE)


def get():
    st, j = call("GET", "/api/v1/deployments/digits")
    return j if st == 200 else None


def implicit_by(j):
    return ((j or {}).get("metadata", {}).get("annotations") or {}).get(ANNOTATION)


def metric(name, labels):
    _, _, b = request(HOST, PORT, "GET", "/metrics")
    for line in b.decode().splitlines():
        if line.startswith(name + "{") and all('%s="%s"' % kv in line for kv in labels.items()):
            return float(line.rsplit(" ", 1)[1])
    return None


def served_by_the_model():
    """The --model answers: 200 from version 1, with a Ready instance."""
    st, j = infer()
    return st == 200 and j.get("model_version") == "1"


def listed():
    st, j = call("GET", "/api/v1/deployments")
    items = [d for d in (j or {}).get("items", []) if d["metadata"]["name"] == "digits"]
    check("the --model is listed in GET /api/v1/deployments, annotated as implicit",
          st == 200 and len(items) == 1 and implicit_by(items[0]) == "--model", (st, j))
    d = items[0] if items else {}
    spec, s = d.get("spec", {}), d.get("status", {})
    check("it serves version 1 with min 1 and max 1 (the model's instance count)",
          spec.get("traffic") == [{"version": 1, "percent": 100}] and
          spec.get("instances", {}).get("min") == 1 and
          spec.get("instances", {}).get("max") == 1, spec)
    ready = poll(lambda: status("digits").get("readyInstances") == 1, 10)
    s = status("digits")
    inst = s.get("instances", [])
    check("its instance is reported like a deployment's: one Ready, no restart",
          ready and s.get("desiredInstances") == 1 and len(inst) == 1 and
          inst[0]["state"] == "Ready" and inst[0]["restarts"] == 0 and
          inst[0]["version"] == "1", s)
    check("the deployment metrics carry it",
          poll(lambda: metric("capstan_deployment_ready_instances", {"deployment": "digits"}) == 1,
               5), metric("capstan_deployment_ready_instances", {"deployment": "digits"}))
    rc, out, err = cli("get", "deployments", "-o", "wide")
    row = [line.split() for line in out.splitlines() if line.startswith("digits ")]
    check("capstan get deployments -o wide marks it IMPLICIT --model",
          rc == 0 and "IMPLICIT" in out.splitlines()[0] and row and row[0][-1] == "--model",
          (rc, out, err))


def v2_routes():
    check("infer answers from version 1", served_by_the_model(), infer())
    st, j = infer("1")
    check("/versions/1/infer answers", st == 200 and j.get("model_version") == "1", (st, j))
    st, j = infer("2")
    check("/versions/2/infer is 404", st == 404, (st, j))
    st, j = call("GET", "/v2/models/digits")
    check("metadata answers", st == 200 and j.get("name") == "digits", (st, j))
    st, _ = call("GET", "/v2/models/digits/ready")
    check("ready answers 200", st == 200, st)


def cannot_be_broken():
    st, j = call("DELETE", "/api/v1/deployments/digits")
    check("DELETE is 409 naming --model and what to do instead",
          st == 409 and "--model" in j["error"] and "explicit deployment" in j["error"], (st, j))
    st, j = call("POST", "/api/v1/deployments/digits/rollout/start", {"to": "2"})
    check("a rollout is 409", st == 409 and "implicit" in j["error"], (st, j))
    check("it still serves after both", served_by_the_model(), infer())
    # A registry model of the same name: pushes and an archive of its version 1 (which used to
    # unload the --model) leave the --model serving.
    for _ in range(2):
        rc, _, err = cli("model", "push", "digits", ROOT + "/models/digits.onnx")
        check("push digits to the registry", rc == 0, err)
    rc, _, err = cli("model", "archive", "digits:1")
    check("archive digits:1", rc == 0, err)
    check("a registry change cannot unload it", served_by_the_model() and
          implicit_by(get()) == "--model" and status("digits").get("readyInstances") == 1,
          (infer(), get()))


def scaled():
    st, j = call("PATCH", "/api/v1/deployments/digits/scale", {"min": 2, "max": 2})
    check("scale answers 200 and keeps it implicit",
          st == 200 and implicit_by(j) == "--model", (st, j))
    check("it scales to 2 Ready instances",
          poll(lambda: status("digits").get("readyInstances") == 2, 15), status("digits"))
    st, j = call("PATCH", "/api/v1/deployments/digits/scale", {"min": 1, "max": 1})
    check("and back to 1", st == 200 and poll(
        lambda: len(status("digits").get("instances", [])) == 1, 15), status("digits"))


def taken_over():
    st, j = apply("digits", {"model": "digits", "traffic": [{"version": 2, "percent": 100}]})
    check("an explicit deployment of the name is applied (201)", st == 201, (st, j))
    j = get()
    check("it replaces the implicit one", j and implicit_by(j) is None and
          j["spec"]["traffic"] == [{"version": 2, "percent": 100}], j)
    st, r = infer()
    check("requests go to the explicit deployment's version",
          st == 200 and r.get("model_version") == "2", (st, r))


def given_back():
    st, j = call("DELETE", "/api/v1/deployments/digits")
    check("the explicit deployment is deleted", st == 200, (st, j))
    check("the implicit deployment comes back",
          poll(lambda: implicit_by(get()) == "--model" and
               status("digits").get("readyInstances") == 1, 15), get())
    check("and serves the --model again", poll(served_by_the_model, 5), infer())


def repository_unload_and_load():
    st, j = call("POST", "/v2/repository/models/digits/unload", {})
    check("a repository unload answers 200", st == 200, (st, j))
    check("it withdraws the implicit deployment", get() is None, get())
    st, j = infer()
    check("the model is not served once unloaded", st in (404, 503), (st, j))
    st, j = call("POST", "/v2/repository/models/digits/load", {})
    check("a repository load answers 200", st == 200, (st, j))
    check("and declares it again", implicit_by(get()) == "--model" and served_by_the_model(),
          (get(), infer()))


if PHASE == "main":
    listed()
    v2_routes()
    cannot_be_broken()
    scaled()
    taken_over()
    given_back()
    repository_unload_and_load()
    taken_over()  # left applied: the restart phase starts with it stored
else:
    j = get()
    check("after a restart the stored explicit deployment wins over the --model",
          j and implicit_by(j) is None, j)
    st, r = infer()
    check("it serves version 2", st == 200 and r.get("model_version") == "2", (st, r))
    st, j = call("POST", "/v2/repository/models/digits/unload", {})
    check("a repository unload of the --model leaves the explicit deployment serving",
          st == 200 and infer()[0] == 200 and implicit_by(get()) is None, (st, j, get()))
    st, j = call("POST", "/v2/repository/models/digits/load", {})
    check("a repository load while it is shadowed answers 200", st == 200, (st, j))
    given_back()
sys.exit(check.summary("implicit " + PHASE))
