#!/usr/bin/env bash
# test_serve.sh - `capstan serve` end to end: a real server on a free 127.0.0.1 port.
#
# Usage: tests/api/test_serve.sh path/to/capstan
#
# Four servers, one after another: the main one (every endpoint, JSON and binary against
# `capstan run`, every error, batching under concurrency with Python threads and wrk,
# metrics through `promtool check metrics`, JSON logs), digits with its shipped
# models/digits.yaml (unbatched, run on the HTTP threads), one whose queue holds a single
# request (429), and one that gets SIGTERM while a request waits in its batcher (drain,
# exit 0). Checks live in serve_test.py. Servers are stopped by the trap, the temporary
# directory removed; the last line is `api: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=api
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

# Identity models of every type, and a data-dir copy of digits with a YAML file.
mkdir -p "$TMP/data/models"
cp "$ROOT/models/digits.onnx" "$TMP/data/models/digits2.onnx"
printf 'instances: 1\nmax_batch_size: 8\nmax_queue_delay_us: 100\npreferred_batch_sizes: [4, 8]\n' \
    >"$TMP/data/models/digits2.yaml"
"$PY" - "$TMP" <<'PY'
import sys
import onnx
from onnx import TensorProto, helper

for name, t in (("bool", TensorProto.BOOL), ("uint8", TensorProto.UINT8),
                ("uint16", TensorProto.UINT16), ("uint32", TensorProto.UINT32),
                ("uint64", TensorProto.UINT64), ("int8", TensorProto.INT8),
                ("int16", TensorProto.INT16), ("int32", TensorProto.INT32),
                ("int64", TensorProto.INT64), ("fp16", TensorProto.FLOAT16),
                ("fp32", TensorProto.FLOAT), ("fp64", TensorProto.DOUBLE),
                ("bf16", TensorProto.BFLOAT16)):
    g = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "id_" + name,
                          [helper.make_tensor_value_info("x", t, None)],
                          [helper.make_tensor_value_info("y", t, None)])
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    onnx.save(m, "%s/id_%s.onnx" % (sys.argv[1], name))
PY
models=(--model "digits=$ROOT/models/digits.onnx")
for t in bool uint8 uint16 uint32 uint64 int8 int16 int32 int64 fp16 fp32 fp64 bf16; do
    models+=(--model "id_$t=$TMP/id_$t.onnx")
done

# --- the main server -----------------------------------------------------------------
if start main "${models[@]}" --max-body-size 1048576 --instances 2 --threads 64; then
    "$PY" "$HERE/serve_test.py" main "$URL" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"

    # wrk: 16 connections for 2 s on the sample request; no answer may be an error.
    "$PY" -c 'import json,sys; print(json.dumps(json.load(open(sys.argv[1]))["request"]))' \
        "$ROOT/models/digits.sample.json" >"$TMP/sample.json"
    cat >"$TMP/post.lua" <<LUA
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local f = io.open("$TMP/sample.json"); wrk.body = f:read("*a"); f:close()
LUA
    wrk -t2 -c16 -d2s -s "$TMP/post.lua" "$URL/v2/models/digits/infer" >"$TMP/wrk.txt" 2>&1
    if grep -q "Requests/sec" "$TMP/wrk.txt" && ! grep -q "Non-2xx\|Socket errors" "$TMP/wrk.txt"; then
        pass "wrk load: no errors ($(grep Requests/sec "$TMP/wrk.txt" | tr -s ' '))"
    else
        fail "wrk load: $(cat "$TMP/wrk.txt")"
    fi

    if command -v promtool >/dev/null; then
        if out=$(curl -s "$URL/metrics" | promtool check metrics 2>&1); then
            pass "promtool check metrics"
        else
            fail "promtool check metrics: $out"
        fi
    else
        fail "promtool is not installed (Debian package prometheus)"
    fi
    stop main
fi

# --- digits with its shipped serving options (make run's) ------------------------------
if start unbatched --threads 2 --model "digits=$ROOT/models/digits.onnx" \
    --model-config "digits=$ROOT/models/digits.yaml"; then
    "$PY" "$HERE/serve_test.py" unbatched "$URL" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop unbatched
fi

# --- a queue of one request ----------------------------------------------------------
printf 'instances: 1\nmax_batch_size: 0\nmax_queue_size: 1\n' >"$TMP/queue.yaml"
if start queue --model "digits=$ROOT/models/digits.onnx" --model-config "digits=$TMP/queue.yaml"; then
    "$PY" "$HERE/serve_test.py" queue "$URL" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop queue
fi

# --- device and precision in a model's options: checked where they are read, and a device
# the machine cannot run fails the start with the engine's reason ----------------------
# refused NAME FILE TEXT: serve with digits and the options in FILE must fail to start, and
# its output must contain TEXT (fixed text, not a pattern).
refused() {
    local name=$1 file=$2 text=$3 out
    if out=$(timeout 20 "$CAPSTAN" serve --port 0 --model "digits=$ROOT/models/digits.onnx" \
        --model-config "digits=$file" 2>&1); then
        fail "$name: serve started"
    elif grep -qF "$text" <<<"$out"; then
        pass "$name: refused naming $text"
    else
        fail "$name: $out"
    fi
}
printf 'instances: 1\ndevice: gpu0\n' >"$TMP/baddev.yaml"
refused "device gpu0" "$TMP/baddev.yaml" "baddev.yaml:2: device 'gpu0' is not one of cpu, cuda, cuda:N"
printf 'precision: fp8\n' >"$TMP/badprec.yaml"
refused "precision fp8" "$TMP/badprec.yaml" \
    "badprec.yaml:1: precision 'fp8' is not one of fp32, tf32, fp16, bf16"
if [ ! -e /dev/nvidia0 ]; then
    printf 'device: cuda:0\n' >"$TMP/gpu.yaml"
    refused "device cuda:0 without a GPU" "$TMP/gpu.yaml" "cuda:0"
fi

# --- SIGTERM while a request waits in a 3 s batching window ----------------------------
printf 'max_batch_size: 32\nmax_queue_delay_us: 3000000\n' >"$TMP/drain.yaml"
if start drain --model "digits=$ROOT/models/digits.onnx" --model-config "digits=$TMP/drain.yaml"; then
    "$PY" "$HERE/serve_test.py" drain "$URL" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
    wait "$SERVER_PID"
    rc=$?
    SERVER_PID=
    if [ "$rc" -eq 0 ]; then pass "drain: exit 0"; else fail "drain: exit $rc"; fi
    if grep -q '"msg":"draining"' "$TMP/server.log"; then pass "drain logged"; else
        fail "drain not logged"
    fi
fi

summary
