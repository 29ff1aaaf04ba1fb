#!/usr/bin/env bash
# test_limits.sh - the resource bounds of `capstan serve`, each the reproduction of an item of
# issue 10: a ~200-byte model whose ConstantOfShape folds to 268 MB (item 6), answers larger
# than --max-response-size, and a push body trickled below the minimum rate (item 3).
#
# Usage: tests/limits/test_limits.sh path/to/capstan
#
# The models are made here with python3-onnx: bomb (ConstantOfShape [64,1024,1024] plus the
# input, all shapes static: planned at load), tile (x [N] tiled 65536 times: the plan and the
# answer grow with N) and garbage (not ONNX, for the error's scrubbed path). The checks live in limits_test.py. The last line is
# `limits: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=limits
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

mkdir -p "$TMP/data/models"
"$PY" - "$TMP/data/models" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

d = sys.argv[1]
shape = numpy_helper.from_array(np.array([64, 1024, 1024], dtype=np.int64), "s")
g = helper.make_graph(
    [helper.make_node("ConstantOfShape", ["s"], ["c"]), helper.make_node("Add", ["c", "x"], ["y"])],
    "bomb", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])],
    [helper.make_tensor_value_info("y", TensorProto.FLOAT, [64, 1024, 1024])], [shape])
m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
onnx.save(m, d + "/bomb.onnx")
reps = numpy_helper.from_array(np.array([65536], dtype=np.int64), "r")
g = helper.make_graph([helper.make_node("Tile", ["x", "r"], ["y"])], "tile",
                      [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n"])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["m"])], [reps])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), d + "/tile.onnx")
PY
printf 'max_batch_size: 0\n' >"$TMP/data/models/tile.yaml"
echo garbage >"$TMP/data/models/garbage.onnx"
size=$(stat -c %s "$TMP/data/models/bomb.onnx")
if [ "$size" -lt 300 ]; then pass "bomb.onnx is a tiny model ($size bytes)"; else fail "bomb.onnx is $size bytes"; fi

# A model over the bound named at start: the server refuses to start and says why.
out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --max-session-memory 64Mi \
    --model "bomb=$TMP/data/models/bomb.onnx" 2>&1 >/dev/null)
rc=$?
if [ "$rc" -ne 0 ] && grep -q "needs at least [0-9]* bytes, over the session memory limit of 67108864 bytes" <<<"$out"; then
    pass "--model over --max-session-memory: the server does not start and names both sizes"
else
    fail "--model over --max-session-memory: exit $rc, $out"
fi
for bad in abc -1Mi 1.5.3; do
    out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --max-session-memory "$bad" 2>&1)
    if [ $? -eq 2 ] && grep -q "max-session-memory expects a size" <<<"$out"; then
        pass "--max-session-memory $bad is a usage error"
    else
        fail "--max-session-memory $bad: $out"
    fi
done

if start bounded --max-session-memory 64Mi --max-response-size 1Mi --auth none; then
    "$PY" "$HERE/limits_test.py" bounded "$PORT" "$SERVER_PID" | tee -a "$RESULTS" | grep -v "^PASS"
    stop bounded
fi
if start defaults --auth none --request-timeout 3; then
    "$PY" "$HERE/limits_test.py" defaults "$PORT" "$SERVER_PID" | tee -a "$RESULTS" | grep -v "^PASS"
    stop defaults
fi
summary
