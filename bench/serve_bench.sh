#!/usr/bin/env bash
# Serving benchmarks for `capstan serve`, each against a peer measured in the same run:
#  1. JSON inference on the digits model with wrk (64 connections) vs nginx serving a static
#     file of the same size as the JSON response (ratio capstan/nginx requests per second);
#  2. server overhead: p50 latency of one client (wrk, 1 connection) minus the engine's
#     in-process p50 for the same input (cs-engine-bench, batch 1, 1 thread);
#  3. resnet18 with dynamic batching under 16 concurrent clients (binary requests) vs the
#     engine's in-process throughput at batch 8 (images per second).
# usage: bench/serve_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-10}
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT
py=/usr/bin/python3
free_port() { $py -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
wait_ready() { # port
  for _ in $(seq 1 100); do
    curl -sf "http://127.0.0.1:$1/v2/health/ready" >/dev/null 2>&1 && return 0
    sleep 0.1
  done
  echo "server on port $1 did not become ready" >&2
  return 1
}
rps() { awk '/Requests\/sec/ {print $2}'; }
p50_ms() { # wrk --latency output: the 50% line, in ms
  awk '$1 == "50%" { v = $2; if (v ~ /us$/) { sub(/us/, "", v); print v / 1000 }
                     else if (v ~ /ms$/) { sub(/ms/, "", v); print v }
                     else { sub(/s/, "", v); print v * 1000 } }'
}

/usr/bin/python3 tools/export_models.py "$build/models-cache" --only resnet18 >/dev/null

# --- the servers under test ---
# Batching server: digits with the default batching, resnet18 as one instance using both
# cores (as the in-process batch-8 run does) with batches of up to 8; digits takes the third
# engine thread of the budget and idles while resnet18 is measured.
cat >"$tmp/resnet18.yaml" <<YAML
instances: 1
threads_per_instance: 2
max_batch_size: 8
max_queue_delay_us: 5000
YAML
port=$(free_port)
"$build/capstan" serve --port "$port" --log-level error --threads 3 \
  --model digits=models/digits.onnx --model resnet18="$build/models-cache/resnet18/model.onnx" \
  --model-config resnet18="$tmp/resnet18.yaml" >"$tmp/serve.log" 2>&1 &
pids+=($!)
wait_ready "$port"
# Overhead server: no batching, so a lone request is not held back waiting for company.
oport=$(free_port)
"$build/capstan" serve --port "$oport" --log-level error --threads 1 --max-batch-size 0 \
  --model digits=models/digits.onnx >"$tmp/serve-overhead.log" 2>&1 &
pids+=($!)
wait_ready "$oport"

# JSON request body for digits and its response size
$py -c 'import json,sys; json.dump(json.load(open("models/digits.sample.json"))["request"], sys.stdout)' >"$tmp/digits.json"
curl -sf -X POST -H 'Content-Type: application/json' --data-binary @"$tmp/digits.json" \
  "http://127.0.0.1:$port/v2/models/digits/infer" >"$tmp/response.json"
resp_bytes=$(stat -c %s "$tmp/response.json")
cat >"$tmp/json.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/digits.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA

# --- 1. JSON throughput vs nginx serving a same-size static file ---
nport=$(free_port)
mkdir -p "$tmp/www" "$tmp/nginx"
head -c "$resp_bytes" /dev/zero | tr '\0' 'x' >"$tmp/www/response.json"
cat >"$tmp/nginx/nginx.conf" <<NGX
worker_processes auto;
pid $tmp/nginx/nginx.pid;
error_log $tmp/nginx/error.log;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path $tmp/nginx/body;
  proxy_temp_path $tmp/nginx/proxy;
  fastcgi_temp_path $tmp/nginx/fastcgi;
  uwsgi_temp_path $tmp/nginx/uwsgi;
  scgi_temp_path $tmp/nginx/scgi;
  server { listen 127.0.0.1:$nport; root $tmp/www; }
}
NGX
nginx -c "$tmp/nginx/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 0.5
cs_json=$(wrk -t2 -c64 -d"${secs}s" -s "$tmp/json.lua" "http://127.0.0.1:$port/v2/models/digits/infer" | rps)
ngx=$(wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$nport/response.json" | rps)

# --- 2. server overhead at concurrency 1 ---
cs_p50=$(wrk -t1 -c1 -d"${secs}s" --latency -s "$tmp/json.lua" "http://127.0.0.1:$oport/v2/models/digits/infer" | p50_ms)
ngx_p50=$(wrk -t1 -c1 -d"${secs}s" --latency "http://127.0.0.1:$nport/response.json" | p50_ms)
eng=$("$build/cs-engine-bench" models/digits.onnx --batch 1 --threads 1 --runs 2000)
eng_p50=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["p50_ms"])' "$eng")

# --- 3. resnet18: 16 clients with dynamic batching vs in-process batch 8 ---
$py -c 'import numpy as np; np.random.default_rng(0).random((1,3,224,224), dtype=np.float32).tofile("'"$tmp"'/img.bin")'
cat >"$tmp/bin.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "0"
local f = io.open("$tmp/img.bin", "rb"); wrk.body = f:read("*a"); f:close()
LUA
cs_img=$(wrk -t2 -c16 -d"${secs}s" -s "$tmp/bin.lua" "http://127.0.0.1:$port/v2/models/resnet18/infer" | rps)
eng8=$("$build/cs-engine-bench" "$build/models-cache/resnet18/model.onnx" --batch 8 --threads 2 --runs 10)
eng_img=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["runs_per_s"] * 8)' "$eng8")

$py - "$cs_json" "$ngx" "$cs_p50" "$eng_p50" "$cs_img" "$eng_img" "$resp_bytes" "$ngx_p50" <<'PY'
import sys
cs_json, ngx, cs_p50, eng_p50, cs_img, eng_img, size, ngx_p50 = map(float, sys.argv[1:])
print(f"| benchmark | capstan | peer | result |")
print(f"|---|---|---|---|")
print(f"| digits JSON, wrk 64 connections | {cs_json:.0f} req/s | nginx static {int(size)} B: {ngx:.0f} req/s | {cs_json/ngx:.2f}x |")
print(f"| server overhead, 1 connection, no batching | p50 {cs_p50*1000:.0f} us end to end | engine in-process p50 {eng_p50*1000:.0f} us; nginx static p50 {ngx_p50*1000:.0f} us | {(cs_p50-eng_p50)*1000:.0f} us ({(cs_p50-eng_p50-ngx_p50)*1000:.0f} us above nginx's round trip) |")
print(f"| resnet18, 16 clients, dynamic batching | {cs_img:.1f} img/s | engine in-process batch 8: {eng_img:.1f} img/s | {cs_img/eng_img:.2f}x |")
PY
