#!/usr/bin/env bash
# Cold starts: digits and resnet18 as deployments scaled to zero (min 0, a 1 s stable window
# and no grace period), each time one request timed with curl from the moment it is sent at
# zero instances until its answer; K times each, p50 and the range, and the server's own count
# of cold starts (capstan_cold_start_duration_seconds) to show each was one. The peer in the
# same run: the engine in process (`capstan bench`): loading the model, which a deployment at
# zero keeps done (its weights stay mapped), and the first run, which plans, as a new
# instance's session does; cold start minus that first run is what the deployment path adds
# (the activator, starting the instance and its session).
# usage: bench/coldstart_bench.sh [BUILD_DIR] [K]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
k=${2:-5}
# shellcheck source=lib.sh
source bench/lib.sh
export_resnet18
serve_platform --threads 2
"$build/capstan" model push digits models/digits.onnx >/dev/null
"$build/capstan" model push resnet18 "$resnet18" >/dev/null
$py - "$tmp" <<'PY'
import json, struct, sys, numpy as np
tmp = sys.argv[1]
r = json.load(open("models/digits.sample.json"))["request"]
open(tmp + "/digits.json", "w").write(json.dumps(r))
np.random.default_rng(0).random((1, 3, 224, 224), dtype=np.float32).tofile(tmp + "/resnet18.bin")
PY
ready() { # deployment -> its readyInstances
  curl -s "$CAPSTAN_SERVER/api/v1/deployments/$1" | $py -c 'import json,sys; print(json.load(sys.stdin)["status"]["readyInstances"])'
}
for m in digits resnet18; do
  cat >"$tmp/$m.yaml" <<YAML
apiVersion: capstan.dev/v1
kind: Deployment
metadata: {name: $m-cold}
spec:
  model: $m
  instances: {min: 0, max: 1}
  autoscaling: {stableWindow: 1s, scaleToZeroGracePeriod: 0s}
YAML
  "$build/capstan" apply -f "$tmp/$m.yaml" >/dev/null
done
cold() { # model -> seconds for one request sent at zero
  local m=$1
  for _ in $(seq 300); do [ "$(ready "$m-cold")" = 0 ] && break; sleep 0.1; done
  if [ "$m" = digits ]; then
    curl -s -o /dev/null -w '%{time_total}' -H 'Content-Type: application/json' \
      --data-binary @"$tmp/digits.json" "$CAPSTAN_SERVER/v2/models/digits-cold/infer"
  else
    curl -s -o /dev/null -w '%{time_total}' -H 'Inference-Header-Content-Length: 0' \
      -H 'Content-Type: application/octet-stream' --data-binary @"$tmp/resnet18.bin" \
      "$CAPSTAN_SERVER/v2/models/resnet18-cold/infer"
  fi
}
echo "| model | cold start p50 | range over $k | cold starts counted | engine: load | engine: first run | path adds over the first run |"
echo "|---|---|---|---|---|---|---|"
for m in digits resnet18; do
  times=()
  for _ in $(seq "$k"); do times+=("$(cold "$m")"); done
  f=models/digits.onnx
  [ "$m" = resnet18 ] && f=$resnet18
  eng=$("$build/capstan" bench "$f" --json --threads 1 --iters 1 --warmup 0)
  counted=$(curl -s "$CAPSTAN_SERVER/metrics" |
    awk -v d="$m-cold" '$1 ~ /^capstan_cold_start_duration_seconds_count/ && index($1, "\"" d "\"") {n += $2} END {print n + 0}')
  $py - "$m" "$eng" "$counted" "${times[@]}" <<'PY'
import json, statistics, sys
m, eng, counted = sys.argv[1], json.loads(sys.argv[2]), sys.argv[3]
ts = sorted(float(t) * 1000 for t in sys.argv[4:])
p50 = statistics.median(ts)
print(f"| {m} | {p50:.1f} ms | {ts[0]:.1f}-{ts[-1]:.1f} ms | {counted} | {eng['load_ms']:.1f} ms "
      f"| {eng['first_run_ms']:.1f} ms | {p50 - eng['first_run_ms']:.1f} ms |")
PY
done
