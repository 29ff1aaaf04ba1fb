#!/usr/bin/env bash
# Autoscaler reaction to a step in load: a resnet18 deployment at min 1 (containerConcurrency 1,
# so its target is 0.7 in-flight requests an instance; max 4; a 6 s stable window, so a 0.6 s
# panic window) gets C closed-loop clients at once. Timed from the step: until the autoscaler's
# desired count first rises (status.desiredInstances), until it reaches its peak, and until
# that many instances are Ready; then the load stops and the deployment is let scale back to
# one before the next step. K steps; each row one step, with the in-flight load the clients
# kept. The autoscaler samples every second and decides every two (docs/deployments.md), so
# the floor of the first figure is up to two seconds.
# usage: bench/autoscale_bench.sh [BUILD_DIR] [K] [C]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
k=${2:-3}
c=${3:-8}
# shellcheck source=lib.sh
source bench/lib.sh
export_resnet18
serve_platform --threads 4
"$build/capstan" model push resnet18 "$resnet18" >/dev/null
cat >"$tmp/scale.yaml" <<YAML
apiVersion: capstan.dev/v1
kind: Deployment
metadata: {name: scale}
spec:
  model: resnet18
  instances: {min: 1, max: 4, containerConcurrency: 1}
  autoscaling: {stableWindow: 6s}
YAML
"$build/capstan" apply -f "$tmp/scale.yaml" >/dev/null
$py - "$CAPSTAN_SERVER" "$k" "$c" <<'PY'
import json, sys, threading, time, urllib.request
import numpy as np

server, k, c = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
body = np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32).tobytes()


def status():
    with urllib.request.urlopen(server + "/api/v1/deployments/scale", timeout=10) as r:
        return json.load(r)["status"]


def wait(pred, limit):
    t0 = time.monotonic()
    while time.monotonic() - t0 < limit:
        s = status()
        if pred(s):
            return s
        time.sleep(0.05)
    raise SystemExit("autoscale_bench: the deployment did not settle in %d s: %s" % (limit, s))


def client(stop, done):
    while not stop.is_set():
        req = urllib.request.Request(server + "/v2/models/scale/infer", data=body, headers={
            "Inference-Header-Content-Length": "0", "Content-Type": "application/octet-stream"})
        with urllib.request.urlopen(req, timeout=60) as r:
            r.read()
        done[0] += 1


print("| step | clients | desired first rises | desired at its peak (count) | that many Ready | requests answered |")
print("|---|---|---|---|---|---|")
wait(lambda s: s["readyInstances"] == 1 and s["desiredInstances"] == 1, 120)
for step in range(1, k + 1):
    stop, done = threading.Event(), [0]
    ts = [threading.Thread(target=client, args=(stop, done), daemon=True) for _ in range(c)]
    t0 = time.monotonic()
    for t in ts:
        t.start()
    rise = peak_t = ready_t = None
    peak = 1
    while time.monotonic() - t0 < 30:
        s = status()
        now = time.monotonic() - t0
        if s["desiredInstances"] > 1 and rise is None:
            rise = now
        if s["desiredInstances"] > peak:
            peak, peak_t, ready_t = s["desiredInstances"], now, None
        if rise is not None and ready_t is None and s["readyInstances"] >= peak:
            ready_t = now
        if peak == 4 and ready_t is not None:
            break
        time.sleep(0.05)
    stop.set()
    for t in ts:
        t.join()
    fmt = lambda v: "-" if v is None else "%.2f s" % v
    print("| %d | %d | %s | %s (%d) | %s | %d |" % (step, c, fmt(rise), fmt(peak_t), peak, fmt(ready_t),
                                                 done[0]))
    wait(lambda s: s["desiredInstances"] == 1 and s["readyInstances"] == 1, 120)
PY
