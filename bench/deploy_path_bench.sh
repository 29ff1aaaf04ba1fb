#!/usr/bin/env bash
# What the deployment path costs: digits served by one server two ways, as `--model` (the
# model's own queue) and as a deployment of the same registry model with its instance count
# held at the model's (min = max = 2, digits.yaml's instances), driven by wrk with the JSON
# request at 1 connection and at 64, the two alternately. Reports requests/s, p50 and the
# ratios deployment/model.
# usage: bench/deploy_path_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-5}
# shellcheck source=lib.sh
source bench/lib.sh
serve_platform --threads 2 \
  --model digits=models/digits.onnx --model-config digits=models/digits.yaml
"$build/capstan" model push digits-reg models/digits.onnx >/dev/null
cat >"$tmp/dep.yaml" <<YAML
apiVersion: capstan.dev/v1
kind: Deployment
metadata: {name: digits-dep}
spec:
  model: digits-reg
  instances: {min: 2, max: 2}
  batching: {maxBatchSize: 0}
YAML
"$build/capstan" apply -f "$tmp/dep.yaml" >/dev/null
for _ in $(seq 100); do
  curl -s "$CAPSTAN_SERVER/api/v1/deployments/digits-dep" | grep -q '"readyInstances": *2' && break
  sleep 0.1
done
$py -c 'import json; print(json.dumps(json.load(open("models/digits.sample.json"))["request"]))' >"$tmp/req.json"
cat >"$tmp/json.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/req.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
measure() { # path connections -> "rps p50_ms"
  local t=1
  [ "$2" -gt 1 ] && t=2
  wrk -t$t -c"$2" -d"${secs}s" --latency -s "$tmp/json.lua" "$CAPSTAN_SERVER$1" |
    awk '/Requests\/sec/ {r = $2} $1 == "50%" {v = $2; if (v ~ /us$/) {sub(/us/, "", v); v /= 1000}
         else if (v ~ /ms$/) sub(/ms/, "", v); else {sub(/s/, "", v); v *= 1000}; p = v}
         END {print r, p}'
}
echo "| connections | --model req/s | deployment req/s | ratio | --model p50 | deployment p50 | ratio |"
echo "|---|---|---|---|---|---|---|"
for c in 1 64; do
  measure /v2/models/digits/infer "$c" >/dev/null # warm-up
  set -- $(measure /v2/models/digits/infer "$c") $(measure /v2/models/digits-dep/infer "$c")
  $py -c "print(f'| $c | {$1:,.0f} | {$3:,.0f} | {$3 / $1:.2f} | {$2:.3f} ms | {$4:.3f} ms | {$4 / $2:.2f} |')"
done
