#!/usr/bin/env bash
# trace_bench.sh BUILD [SECONDS] [CONNECTIONS...] - what tracing costs the request path: digits
# JSON inference (its shipped models/digits.yaml) under wrk, at each number of connections
# (1 and 64 by default; wrk's threads: 1 for one connection, else 2), one run each of: no
# exporter; every request sampled and exported to a receiver that answers 200
# (tests/otlp/receiver.py, discarding); and the same with the receiver down (nothing
# listens). Prints a Markdown table; ratios are against the run without an exporter at the
# same concurrency.
set -euo pipefail
cd "$(dirname "$0")/.."
build=${1:?usage: bench/trace_bench.sh BUILD [SECONDS] [CONNECTIONS...]}
secs=${2:-5}
conns=("${@:3}")
[ ${#conns[@]} -gt 0 ] || conns=(1 64)
# shellcheck source=lib.sh
source bench/lib.sh
$py -c 'import json,sys; json.dump(json.load(open("models/digits.sample.json"))["request"], sys.stdout)' >"$tmp/digits.json"
cat >"$tmp/json.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$tmp/digits.json", "rb"); wrk.body = f:read("*a"); f:close()
LUA
rport=$(free_port)
$py tests/otlp/receiver.py "$rport" /dev/null discard &
pids+=($!)
down=$(free_port)
# run NAME ENDPOINT|"" CONNECTIONS: one server, one wrk run; prints "NAME C rps p50 p99"
run() {
  local port
  port=$(free_port)
  "$build/capstan" serve --threads 2 --port "$port" --log-level error \
    --model digits=models/digits.onnx --model-config digits=models/digits.yaml \
    ${2:+--otlp-endpoint "$2"} >"$tmp/$1.log" 2>&1 &
  local pid=$!
  for _ in $(seq 100); do curl -sf "http://127.0.0.1:$port/v2/health/ready" >/dev/null && break; sleep 0.1; done
  local out
  out=$(wrk -t"$(($3 > 1 ? 2 : 1))" -c"$3" -d"${secs}s" --latency -s "$tmp/json.lua" "http://127.0.0.1:$port/v2/models/digits/infer")
  echo "$1 $3 $(awk '/Requests\/sec/ {print $2}' <<<"$out") $(awk '$1 == "50%" {print $2}' <<<"$out") $(awk '$1 == "99%" {print $2}' <<<"$out")"
  kill -TERM "$pid"
  wait "$pid" || true
}
for c in "${conns[@]}"; do
  run off "" "$c"
  run exporting "http://127.0.0.1:$rport" "$c"
  run receiver-down "http://127.0.0.1:$down" "$c"
done >"$tmp/results"
$py - "$tmp/results" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1])]
base = {c: float(rps) for name, c, rps, _, _ in rows if name == "off"}
print("| connections | tracing | req/s | p50 | p99 | vs off |")
print("|---|---|---|---|---|---|")
for name, c, rps, p50, p99 in rows:
    print(f"| {c} | {name} | {float(rps):,.0f} | {p50} | {p99} | {float(rps) / base[c]:.3f}x |")
PY
