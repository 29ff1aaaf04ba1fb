#!/usr/bin/env bash
# test_hardening.sh - attacks on `capstan serve` over raw sockets, each the reproduction of
# an item of issue 10: request smuggling and framing, hostile model names, connection floods,
# shedding on the headers.
#
# Usage: tests/hardening/test_hardening.sh path/to/capstan
#
# Three servers: one with digits for framing, names and floods; one allowing 4 connections
# per address; one whose slow model (256 1024x1024 MatMuls, its load sized per build) has one
# instance and a queue of one, for shedding on the headers. The checks live in
# hardening_test.py. The last line is `hardening: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=hardening
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

# The flood opens over 1,024 sockets from this shell's children and the server's.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if start main --model "digits=$ROOT/models/digits.onnx" --header-timeout 2 \
    --max-connections-per-ip 100000; then
    "$PY" "$HERE/hardening_test.py" main "$PORT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop main
fi
if start per-ip --max-connections-per-ip 4; then
    "$PY" "$HERE/hardening_test.py" per-ip "$PORT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop per-ip
fi

"$PY" - "$TMP/slow.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

w = numpy_helper.from_array(np.eye(1024, dtype=np.float32), "w")
nodes = [helper.make_node("MatMul", ["x" if i == 0 else "h%d" % i, "w"],
                          ["y" if i == 255 else "h%d" % (i + 1)]) for i in range(256)]
g = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                    ["n", 1024])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1024])], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY
printf 'instances: 1\nmax_batch_size: 0\nmax_queue_size: 1\n' >"$TMP/slow.yaml"
if start shed --model "slow=$TMP/slow.onnx" --model-config "slow=$TMP/slow.yaml" --threads 1 \
    --http-threads 4; then
    "$PY" "$HERE/hardening_test.py" shed "$PORT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop shed
fi
summary
