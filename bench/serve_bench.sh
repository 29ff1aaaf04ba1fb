#!/usr/bin/env bash
# Serving benchmarks for `capstan serve`, each against a peer measured in the same run:
#  1. JSON inference on the digits model with wrk (64 connections) vs nginx serving a static
#     file of the same size as the JSON response (ratio capstan/nginx requests per second);
#  2. server overhead: p50 latency of one client (wrk, 1 connection) minus the engine's
#     in-process p50 for the same input (capstan bench, batch 1, 1 thread), unpinned and
#     with client and server on one core, beside nginx and a bare TCP ping-pong (cs-tcp-rtt);
#  3. resnet18 with dynamic batching under 16 concurrent clients (binary requests) vs the
#     engine's in-process throughput at batch 8 (images per second).
# usage: bench/serve_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-10}
# shellcheck source=lib.sh
source bench/lib.sh
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

export_resnet18

# --- the servers under test ---
# digits with its shipped serving options (models/digits.yaml: unbatched, two instances);
# resnet18 as one instance using both cores (as the in-process batch-8 run does), batches
# of up to 8.
cat >"$tmp/resnet18.yaml" <<YAML
instances: 1
threads_per_instance: 2
max_batch_size: 8
max_queue_delay_us: 5000
YAML
start_capstan() { # PORT LOG ARGS...: starts capstan serve in the background
  local p=$1 log=$2
  shift 2
  "$@" --port "$p" --log-level error >"$tmp/$log" 2>&1 &
  pids+=($!)
  wait_ready "$p"
}
port=$(free_port)
start_capstan "$port" serve.log "$build/capstan" serve --threads 2 \
  --model digits=models/digits.onnx --model-config digits=models/digits.yaml
rport=$(free_port)
start_capstan "$rport" serve-resnet.log "$build/capstan" serve --threads 2 \
  --model resnet18="$resnet18" --model-config resnet18="$tmp/resnet18.yaml"
# Overhead servers: no batching (a lone request must not wait for company), one engine
# thread; once unpinned, once with server and client sharing core 0.
oport=$(free_port)
start_capstan "$oport" serve-overhead.log "$build/capstan" serve --threads 1 --max-batch-size 0 \
  --model digits=models/digits.onnx
pport=$(free_port)
start_capstan "$pport" serve-pinned.log taskset -c 0 "$build/capstan" serve --threads 1 \
  --max-batch-size 0 --model digits=models/digits.onnx

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
# The same nginx on core 0 only, for the pinned latency row.
pnport=$(free_port)
mkdir -p "$tmp/nginx-pinned"
sed -e "s|$tmp/nginx/|$tmp/nginx-pinned/|g" -e "s|:$nport;|:$pnport;|" -e 's|worker_processes auto|worker_processes 1|' \
  "$tmp/nginx/nginx.conf" >"$tmp/nginx-pinned/nginx.conf"
taskset -c 0 nginx -c "$tmp/nginx-pinned/nginx.conf" -g 'daemon off;' &
pids+=($!)
sleep 0.5
cs_json=$(wrk -t2 -c64 -d"${secs}s" -s "$tmp/json.lua" "http://127.0.0.1:$port/v2/models/digits/infer" | rps)
ngx=$(wrk -t2 -c64 -d"${secs}s" "http://127.0.0.1:$nport/response.json" | rps)

# --- 2. server overhead at concurrency 1, unpinned and on one core ---
# On a virtual machine, waking a thread on an idle core costs tens of microseconds each way
# (the hypervisor must wake the vCPU); cs-tcp-rtt measures that floor with a bare TCP
# ping-pong of the same sizes, and the pinned runs (client and server on core 0) leave it
# out, so that what remains is the work of the server itself.
req_bytes=$(stat -c %s "$tmp/digits.json")
one() { wrk -t1 -c1 -d"${secs}s" --latency "$@" | p50_ms; }
cs_p50=$(one -s "$tmp/json.lua" "http://127.0.0.1:$oport/v2/models/digits/infer")
ngx_p50=$(one "http://127.0.0.1:$nport/response.json")
tcp_p50=$("$build/cs-tcp-rtt" "$req_bytes" "$resp_bytes" | $py -c 'import json,sys; print(json.load(sys.stdin)["p50_us"] / 1000)')
cs_pin=$(taskset -c 0 wrk -t1 -c1 -d"${secs}s" --latency -s "$tmp/json.lua" "http://127.0.0.1:$pport/v2/models/digits/infer" | p50_ms)
ngx_pin=$(taskset -c 0 wrk -t1 -c1 -d"${secs}s" --latency "http://127.0.0.1:$pnport/response.json" | p50_ms)
tcp_pin=$(taskset -c 0 "$build/cs-tcp-rtt" "$req_bytes" "$resp_bytes" | $py -c 'import json,sys; print(json.load(sys.stdin)["p50_us"] / 1000)')
eng=$("$build/capstan" bench models/digits.onnx --json --batch 1 --threads 1 --iters 20000)
eng_p50=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["p50_ms"])' "$eng")

# --- 3. resnet18: 16 clients with dynamic batching vs in-process batch 8 ---
$py -c 'import numpy as np; np.random.default_rng(0).random((1,3,224,224), dtype=np.float32).tofile("'"$tmp"'/img.bin")'
cat >"$tmp/bin.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "0"
local f = io.open("$tmp/img.bin", "rb"); wrk.body = f:read("*a"); f:close()
LUA
cs_img=$(wrk -t2 -c16 -d"${secs}s" -s "$tmp/bin.lua" "http://127.0.0.1:$rport/v2/models/resnet18/infer" | rps)
eng8=$("$build/capstan" bench "$resnet18" --json --batch 8 --threads 2 --iters 10)
eng_img=$($py -c 'import json,sys; print(json.loads(sys.argv[1])["throughput_per_s"])' "$eng8")

$py - "$cs_json" "$ngx" "$resp_bytes" "$eng_p50" "$cs_p50" "$ngx_p50" "$tcp_p50" "$cs_pin" "$ngx_pin" \
  "$tcp_pin" "$cs_img" "$eng_img" <<'PY'
import sys
(cs_json, ngx, size, eng, cs, ngx_rt, tcp, cs_pin, ngx_pin, tcp_pin, cs_img,
 eng_img) = map(float, sys.argv[1:])
us = lambda ms: ms * 1000
print("| benchmark | capstan | peers | result |")
print("|---|---|---|---|")
print(f"| digits JSON, wrk 64 connections | {cs_json:.0f} req/s | nginx static {int(size)} B: "
      f"{ngx:.0f} req/s | {cs_json/ngx:.2f}x |")
for name, c, n, t in (("unpinned", cs, ngx_rt, tcp), ("client and server on core 0", cs_pin, ngx_pin, tcp_pin)):
    print(f"| server overhead, 1 connection, no batching, {name} | p50 {us(c):.1f} us end to end "
          f"| engine in process p50 {us(eng):.1f} us; nginx static p50 {us(n):.1f} us; bare TCP "
          f"ping-pong p50 {us(t):.1f} us | {us(c - eng):.1f} us |")
print(f"| resnet18, 16 clients, dynamic batching | {cs_img:.1f} img/s | engine in process "
      f"batch 8: {eng_img:.1f} img/s | {cs_img/eng_img:.2f}x |")
PY
