#!/usr/bin/env bash
# Overload: resnet18 served with a queue of 4, driven by wrk with binary requests (a 600 KB
# raw body each) at the capacity concurrency (4 connections: the queue never overflows) and
# at 10x and 16x that (40 and 64 connections), two ways: clients that wait the answer's
# Retry-After (1 s) after a 429 before their next request, as SDK retry policies do, and
# clients that send the next request at once. Reports the successful (200) requests per
# second and their share of capacity (issue 10's target: >= 90%); over capacity the rest are
# 429s, decided from the headers before the body is read. The server runs on CPU 0 and wrk
# on CPU 1, so that what the clients spend sending bodies is not taken from the server.
# usage: bench/overload_bench.sh [BUILD_DIR] [SECONDS]
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:-build}
secs=${2:-10}
# shellcheck source=lib.sh
source bench/lib.sh
export_resnet18
cat >"$tmp/resnet18.yaml" <<YAML
instances: 1
threads_per_instance: 1
max_batch_size: 4
max_queue_delay_us: 2000
max_queue_size: 4
YAML
port=$(free_port)
SERVE_PREFIX="taskset -c 0" serve "$port" --threads 1 \
  --model resnet18="$resnet18" \
  --model-config resnet18="$tmp/resnet18.yaml"
$py -c 'import numpy as np; np.random.default_rng(0).random((1,3,224,224), dtype=np.float32).tofile("'"$tmp"'/img.bin")'
# Counts answers by status in wrk's response() hook and prints them at the end.
cat >"$tmp/bin.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/octet-stream"
wrk.headers["Inference-Header-Content-Length"] = "0"
local f = io.open("$tmp/img.bin", "rb"); wrk.body = f:read("*a"); f:close()
local threads = {}
function setup(thread) table.insert(threads, thread) end
function init(args) ok = 0; shed = 0; other = 0 end
-- A 429 makes this connection's next request wait the answer's Retry-After, in clients
-- that honour it (wrk asks delay() for the next request of the connection just answered).
honour = @HONOUR@
wait_ms = 0
function response(status, headers, body)
  if status == 200 then ok = ok + 1 elseif status == 429 then shed = shed + 1 else other = other + 1 end
  if honour and status == 429 then wait_ms = 1000 * tonumber(headers["Retry-After"] or "1") end
end
function delay() local d = wait_ms; wait_ms = 0; return d end
function done(summary, latency, requests)
  local o, s, x = 0, 0, 0
  for _, t in ipairs(threads) do o = o + t:get("ok"); s = s + t:get("shed"); x = x + t:get("other") end
  io.write(string.format("COUNTS %d %d %d %d\n", o, s, x, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout))
end
LUA
run() { # connections -> "ok_per_s shed other socket_errors"
  sleep 2 # what the run before left queued is answered first
  sed "s/@HONOUR@/$HONOUR/" "$tmp/bin.lua" >"$tmp/run.lua"
  taskset -c 1 wrk -t1 -c"$1" -d"${secs}s" --timeout 10s -s "$tmp/run.lua" "http://127.0.0.1:$port/v2/models/resnet18/infer" |
    awk -v s="$secs" '/^COUNTS/ {printf "%.2f %d %d %d\n", $2 / s, $3, $4, $5}'
}
HONOUR=false
run 4 >/dev/null # warm-up: plans, caches
cap=$(run 4)
echo "| clients | connections | 200/s | 429s | other | socket errors | share of capacity |"
echo "|---|---|---|---|---|---|---|"
for HONOUR in true false; do
  for c in 4 40 64; do
    row=$(run "$c")
    set -- $row
    share=$($py -c "print(f'{$1 / ${cap%% *}:.2f}')")
    who=$([ "$HONOUR" = true ] && echo "wait Retry-After" || echo "resend at once")
    echo "| $who | $c | $1 | $2 | $3 | $4 | ${share}x |"
  done
done
