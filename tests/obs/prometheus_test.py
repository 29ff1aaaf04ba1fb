"""prometheus_test.py - the Grafana dashboard and the Prometheus rules against a real
Prometheus scraping a real capstan server under load (started by test_prometheus.sh).

Usage: prometheus_test.py CAPSTAN_URL PROMETHEUS_URL DASHBOARD RULES. Applies a deployment
`web` of the registry model dmodel (pushed by test_prometheus.sh) and waits for it to scale
to zero, then
sends inference to the served model digits and to web (and some 404s) for a bounded time
while it waits for every PromQL expression of the dashboard (with $__rate_interval, $model,
$deployment and $job filled in) and every recording rule to return data through
Prometheus's HTTP API, and every rule to evaluate without error. The GPU expressions get
their data from dcgm_stand_in.py. Also checks that every capstan metric the dashboard and
the rules name is one the server exposes, and the deployment's own series (a Ready
instance, the cold start from zero, the activator). Prints one PASS/FAIL line per check.
"""
import json
import os
import re
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from capstan_http import Checks, request  # noqa: E402

CAP, PROM = urllib.parse.urlparse(sys.argv[1]), sys.argv[2]
DASHBOARD, RULES = sys.argv[3], sys.argv[4]
BODY = {"inputs": [{"name": "image", "datatype": "FP32", "shape": [1, 1, 8, 8],
                    "data": [0.5] * 64}]}


check = Checks(limit=600)


def prom(path, **params):
    url = PROM + path + ("?" + urllib.parse.urlencode(params) if params else "")
    with urllib.request.urlopen(url, timeout=10) as r:
        return json.load(r)["data"]


def has_data(expr):
    try:
        return bool(prom("/api/v1/query", query=expr)["result"])
    except Exception:  # noqa: BLE001 - a bad expression is a 400: no data
        return False


def load(stop):
    """About 100 requests a second until stop, one in ten for an unknown model (404), one in
    three to the deployment."""
    n = 0
    while not stop.is_set():
        path = ("/v2/models/nosuch/infer" if n % 10 == 9 else
                "/v2/models/web/infer" if n % 3 == 0 else "/v2/models/digits/infer")
        request(CAP.hostname, CAP.port, "POST", path, BODY)
        n += 1
        time.sleep(0.01)


def dashboard_exprs():
    with open(DASHBOARD) as f:
        d = json.load(f)
    out = []
    for p in d["panels"]:
        for t in p.get("targets", []):
            e = t["expr"].replace("$__rate_interval", "15s").replace("$model", ".+")
            e = e.replace("$deployment", ".+")
            out.append((p["title"], e.replace("$job", "capstan")))
    return d, out


def main():
    d, exprs = dashboard_exprs()
    check("the dashboard is Grafana JSON with panels and a Prometheus datasource variable",
          d.get("schemaVersion") and exprs and any(
              v["type"] == "datasource" for v in d["templating"]["list"]), d.get("title"))
    st, _, b = request(CAP.hostname, CAP.port, "PUT", "/api/v1/deployments/web",
                       {"apiVersion": "capstan.dev/v1", "kind": "Deployment",
                        "metadata": {"name": "web"},
                        "spec": {"model": "dmodel", "instances": {"min": 0, "max": 2},
                                 "autoscaling": {"stableWindow": "2s",
                                                 "scaleToZeroGracePeriod": "1s"}}})
    check("a deployment is applied", st in (200, 201), (st, b[:200]))
    # Without traffic it scales to zero (initial scale 1, then the window and the grace
    # period); the load's first request to it is then a cold start.
    deadline = time.time() + 30
    while time.time() < deadline:
        _, _, b = request(CAP.hostname, CAP.port, "GET", "/api/v1/deployments/web")
        s = json.loads(b).get("status", {})
        if s.get("desiredInstances") == 0 and s.get("readyInstances") == 0:
            break
        time.sleep(0.2)
    check("the deployment scaled to zero before the load", s.get("readyInstances") == 0, s)
    # Read while the load runs: once it stops, the deployment is back at zero within seconds.
    want = {
        'capstan_deployment_instances{deployment="web", state="Ready"} >= 1': "a Ready instance",
        'capstan_cold_start_duration_seconds_count{deployment="web"} >= 1':
            "the cold start from zero counted",
        'capstan_deployment_canary_weight{deployment="web"} == 0': "no canary weight",
        'capstan_deployment_instances{deployment="web", state="Failed"} == 0': "none Failed",
        'capstan_deployment_restarts_total{deployment="web"} == 0': "no restarts",
        'capstan_deployment_activator_queue_depth{deployment="web"} == 0':
            "the activator holds nothing once Ready",
        'sum by (deployment) (label_replace(capstan_queue_depth, "deployment", "$1", '
        '"model", "(.+)")) and on (deployment) capstan_deployment_desired_instances':
            "queue depth joined to the deployment",
    }
    stop = threading.Event()
    t = threading.Thread(target=load, args=(stop,), daemon=True)
    t.start()
    missing, rules, pending = exprs, [], list(want)
    deadline = time.time() + 60
    try:
        while time.time() < deadline:
            missing = [(title, e) for title, e in missing if not has_data(e)]
            pending = [e for e in pending if not has_data(e)]
            groups = prom("/api/v1/rules")["groups"]
            rules = [r for g in groups for r in g["rules"]]
            unrecorded = [r["name"] for r in rules if r["type"] == "recording" and
                          not has_data(r["name"])]
            unhealthy = [r["name"] for r in rules if r.get("health") != "ok"]
            if not missing and not pending and rules and not unrecorded and not unhealthy:
                break
            time.sleep(1)
    finally:
        stop.set()
        t.join()
    check("every dashboard expression returns data (%d)" % len(exprs), not missing, missing)
    with open(RULES) as f:
        n_rules = f.read().count("- record:") + 0
    check("Prometheus loaded the rules", len([r for r in rules if r["type"] == "recording"]) ==
          n_rules and any(r["type"] == "alerting" for r in rules), len(rules))
    check("every recording rule returns data", not unrecorded, unrecorded)
    check("every rule evaluates without error", not unhealthy,
          [(r["name"], r.get("lastError")) for r in rules if r.get("health") != "ok"])
    _, _, b = request(CAP.hostname, CAP.port, "GET", "/metrics")
    exposed = set(re.findall(r"^# TYPE (\w+) ", b.decode(), re.M))
    with open(DASHBOARD) as f, open(RULES) as g:
        text = f.read() + g.read()
    named = set(re.sub(r"_(bucket|sum|count)$", "", m) for m in
                re.findall(r"(?<![:\w])(capstan_\w+|process_\w+)", text))
    check("every metric named by the dashboard and rules is exposed", named <= exposed,
          sorted(named - exposed))
    # These hold for good, so they must still hold after the load as well.
    always = [e for e in want if e.endswith("== 0") and "activator" not in e]
    for expr, what in want.items():
        check("deployment series through Prometheus: " + what,
              expr not in pending and (expr not in always or has_data(expr)), expr)
    check("GPU series come from the dcgm-exporter stand-in (no GPU here)",
          has_data('DCGM_FI_DEV_GPU_UTIL{job="dcgm-exporter", gpu="0", modelName="NVIDIA H200"}'))


main()
