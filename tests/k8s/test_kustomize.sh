#!/usr/bin/env bash
# test_kustomize.sh - the Kubernetes manifests (label `k8s`, ~20 s with npm's cache warm):
# `kubectl kustomize` renders the base, every overlay (cpu, gpu, cluster) and the
# prometheus-adapter config; validate.mjs checks every rendered object against the
# Kubernetes 1.34 schemas of kubernetes-models 5.1.0 (installed from npm into BUILD/k8s-schemas
# with package-lock.json) and rejects objects known to be wrong; check_manifests.py checks what
# the schemas cannot (probes, securityContext, the DRA claim wiring, the HPA's metric being
# the one capstan exports, the cluster overlay's Secret and shared volume).
# The last line is `k8s: N passed, M failed`.
#
# Usage: tests/k8s/test_kustomize.sh BUILD_DIR
set -u

BUILD=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=k8s
# shellcheck source=../lib/server.sh
. "$ROOT/tests/lib/server.sh"

for tool in kubectl node npm; do
    command -v "$tool" >/dev/null || { fail "$tool is not installed"; summary; exit; }
done

SCHEMAS=$BUILD/k8s-schemas
mkdir -p "$SCHEMAS"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/validate.mjs" "$SCHEMAS/"
if ! (cd "$SCHEMAS" && npm ci --silent --no-audit --no-fund >"$TMP/npm.log" 2>&1); then
    fail "npm ci (kubernetes-models): $(grep -v EBADENGINE "$TMP/npm.log" | tail -3)"
    summary
    exit
fi

K=$ROOT/deploy/kubernetes
for dir in base overlays/cpu overlays/gpu overlays/cluster prometheus-adapter; do
    out=$TMP/$(basename "$dir").yaml
    if ! kubectl kustomize "$K/$dir" >"$out" 2>"$TMP/kustomize.err"; then
        fail "kubectl kustomize $dir: $(head -3 "$TMP/kustomize.err")"
        continue
    fi
    pass "kubectl kustomize $dir"
    if node "$SCHEMAS/validate.mjs" "$out" >"$TMP/validate.out" 2>&1; then
        pass "$dir: $(grep -c '^ok' "$TMP/validate.out") objects valid"
    else
        fail "$dir: $(grep -v '^ok' "$TMP/validate.out" | grep -v EBADENGINE | head -5)"
    fi
done

# The validator rejects what is wrong: a string replica count, a claim template without spec,
# a kind it has no schema for.
cat >"$TMP/wrong.yaml" <<'YAML'
apiVersion: apps/v1
kind: Deployment
metadata: {name: wrong}
spec:
  replicas: two
  selector: {matchLabels: {a: b}}
  template: {spec: {containers: [{name: c, image: i}]}}
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaimTemplate
metadata: {name: wrong}
---
apiVersion: example.com/v1
kind: Unknown
metadata: {name: wrong}
YAML
node "$SCHEMAS/validate.mjs" "$TMP/wrong.yaml" >"$TMP/wrong.out" 2>&1
[ "$(grep -c '^invalid' "$TMP/wrong.out")" = 3 ] && pass "wrong objects rejected" ||
    fail "wrong objects not all rejected: $(cat "$TMP/wrong.out")"

"$PY" "$HERE/check_manifests.py" "$TMP" "$ROOT/src/runtime/runtime.c" >>"$RESULTS"

# capstan k8s render: the example Deployment and one with a device request, validated as the
# overlays are, then checked by check_render.py against the rendered base and cluster overlay.
cat >"$TMP/gpu-deployment.yaml" <<'YAML'
apiVersion: capstan.dev/v1
kind: Deployment
metadata: {name: digits-gpu}
spec:
  model: digits
  instances: {min: 2, max: 6, targetConcurrency: 2.5}
  autoscaling: {stableWindow: 120s}
  resources:
    devices:
      requests:
      - name: gpu
        exactly: {deviceClassName: gpu.nvidia.com, count: 1}
YAML
CAPSTAN=$BUILD/capstan
for r in "web $ROOT/docs/examples/deployment.yaml" "gpu $TMP/gpu-deployment.yaml"; do
    set -- $r
    if "$CAPSTAN" k8s render -f "$2" >"$TMP/render-$1.yaml" 2>"$TMP/render.err"; then
        pass "k8s render $(basename "$2")"
    else
        fail "k8s render $(basename "$2"): $(cat "$TMP/render.err")"
    fi
    if node "$SCHEMAS/validate.mjs" "$TMP/render-$1.yaml" >"$TMP/validate.out" 2>&1; then
        pass "k8s render $1: $(grep -c '^ok' "$TMP/validate.out") objects valid"
    else
        fail "k8s render $1: $(grep -v '^ok' "$TMP/validate.out" | grep -v EBADENGINE | head -5)"
    fi
done
"$CAPSTAN" k8s render -f "$TMP/gpu-deployment.yaml" -o json >"$TMP/render-gpu.json" ||
    fail "k8s render -o json"
"$PY" "$HERE/check_render.py" "$TMP" >>"$RESULTS" || fail "check_render.py stopped early"
# What apply would refuse, render refuses the same way (the server's decoder).
printf 'apiVersion: capstan.dev/v1\nkind: Deployment\nmetadata: {name: bad}\nspec:\n  model: m\n  instances: {mni: 1}\n' >"$TMP/bad.yaml"
msg=$("$CAPSTAN" k8s render -f "$TMP/bad.yaml" 2>&1)
[ $? -eq 1 ] && grep -q "bad.yaml: document 1: spec.instances.mni: unknown field" <<<"$msg" &&
    pass "k8s render refuses a bad spec with its field path" || fail "k8s render bad spec: $msg"
msg=$("$CAPSTAN" k8s render -f "$TMP/bad.yaml" -o xml 2>&1)
[ $? -eq 2 ] && grep -q -- "-o expects yaml or json, got 'xml'" <<<"$msg" &&
    pass "k8s render -o xml is a usage error" || fail "k8s render -o xml: $msg"
summary
