#!/usr/bin/env bash
# test_dra_api.sh - the device allocation endpoints of `capstan serve` end to end.
#
# Usage: tests/dra_api/test_dra_api.sh path/to/capstan FAKE_NVML_DIR
#
# Two servers, one after another, each on a free 127.0.0.1 port: one with --devices
# pointing at fleet.yaml (every endpoint and error, allocation until full, release,
# shared capacity, concurrent claims), and one discovering GPUs through the stand-in
# libnvidia-ml.so.1 of tests/devices. Then startup errors of --devices. Checks live in
# dra_api_test.py; the last line is `dra_api: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
NVML=$(realpath "$2")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capstan-dra-api.XXXXXX")
SERVER_PID=

cleanup() {
    if grep -q '^FAIL' "$TMP/results" 2>/dev/null && [ -f "$TMP/server.log" ]; then
        echo "last server log lines:"
        tail -n 20 "$TMP/server.log"
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

RESULTS=$TMP/results
: >"$RESULTS"
pass() { echo "PASS $1" >>"$RESULTS"; }
fail() { echo "FAIL $1" | tee -a "$RESULTS"; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# start NAME ARGS...: a server with ARGS on a free port (environment from the caller),
# waited for until it is live.
start() {
    local name=$1
    shift
    PORT=$(free_port)
    URL=http://127.0.0.1:$PORT
    "$CAPSTAN" serve --port "$PORT" --data-dir "$TMP/data" "$@" 2>"$TMP/server.log" &
    SERVER_PID=$!
    for _ in $(seq 200); do
        curl -sf "$URL/v2/health/live" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "$name server did not start: $(tail -3 "$TMP/server.log")"
    return 1
}

# stop NAME: SIGTERM, then the exit status must be 0 within 10 s (the trap kills a server
# that is still up).
stop() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=
    if [ "$rc" -eq 0 ]; then pass "$1 server exits 0 on SIGTERM"; else fail "$1 server exited $rc"; fi
    no_sanitizer_report "$1 server" "$(cat "$TMP/server.log")"
}

# Sanitizer builds (ASan+UBSan, TSan) report on stderr; any report is a failure.
no_sanitizer_report() { # name, output
    if grep -q "Sanitizer\|runtime error:" <<<"$2"; then
        fail "$1: sanitizer report: $(grep -m3 "Sanitizer\|runtime error:" <<<"$2")"
    fi
}

run_phase() {
    "$PY" "$HERE/dra_api_test.py" "$1" "$URL" | tee -a "$RESULTS" | grep -v "^PASS"
}

if start fleet --devices "$HERE/fleet.yaml" --http-threads 4; then
    run_phase fleet
    stop fleet
fi

export LD_LIBRARY_PATH=$NVML # the server discovers the stand-in's two H100s
if start nvml; then
    run_phase nvml
    stop nvml
fi
unset LD_LIBRARY_PATH

# Startup errors: the server refuses to start and says why.
expect_start_error() { # name, want (substring of stderr), args...
    local name=$1 want=$2
    shift 2
    local out
    out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" "$@" 2>&1 >/dev/null)
    local rc=$?
    if [ "$rc" -ne 0 ] && grep -qF -- "$want" <<<"$out"; then pass "$name"; else
        fail "$name: exit $rc, output: $out"
    fi
    no_sanitizer_report "$name" "$out"
}
printf 'apiVersion: resource.k8s.io/v1\nkind: ResourceSlice\nmetadata: {name: s}\nspec:\n  driver: x\n  pool: {name: p, generation: 1, resourceSliceCount: 1}\n  nodeName: n\n  devices:\n  - name: d\n    capacityy: {}\n' >"$TMP/bad.yaml"
expect_start_error "--devices: an invalid slice names field and line" "capacityy: unknown field (line 10)" \
    --devices "$TMP/bad.yaml"
expect_start_error "--devices: a missing file" "cannot open $TMP/none.yaml" --devices "$TMP/none.yaml"
cat "$HERE/fleet.yaml" - >"$TMP/full.yaml" <<'YAML'
---
apiVersion: resource.k8s.io/v1
kind: ResourceClaim
metadata: {name: too-many}
spec:
  devices:
    requests:
    - name: gpus
      exactly: {deviceClassName: gpu, count: 5}
YAML
expect_start_error "--devices: a file claim that cannot be allocated" \
    "ResourceClaim too-many: cannot be allocated" --devices "$TMP/full.yaml"
expect_start_error "--device-policy: unknown policy is a usage error" \
    "--device-policy expects first or best-fit" --device-policy worst

passed=$(grep -c '^PASS' "$RESULTS")
failed=$(grep -c '^FAIL' "$RESULTS")
echo "dra_api: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
