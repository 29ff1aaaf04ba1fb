#!/usr/bin/env bash
# test_deploy.sh - deployments end to end; the checks live in deploy_test.py, which is run
# once against a first server (phase "main") and once against a restarted one on the same
# data directory (phase "restart": every deployment and its traffic split come back), then
# against a server with a one-thread budget (phase "pending").
#
# Usage: tests/deploy/test_deploy.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=deploy
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

# A model slow enough that concurrency builds up in the server whatever the clients' own
# speed on a busy machine: 96 256x256 MatMuls over n rows (about 20 ms for 32 rows).
"$PY" - "$TMP/slow.onnx" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

w = numpy_helper.from_array(np.eye(256, dtype=np.float32), "w")
nodes = [helper.make_node("MatMul", ["x" if i == 0 else "h%d" % i, "w"],
                          ["y" if i == 95 else "h%d" % (i + 1)]) for i in range(96)]
g = helper.make_graph(nodes, "slow", [helper.make_tensor_value_info("x", TensorProto.FLOAT,
                                                                    ["n", 256])],
                      [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 256])], [w])
onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]), sys.argv[1])
PY

# A canary's models, all x[n,1] -> y[n,1]: v1 adds 0 (fast); v2 is slow (64 MatMuls over
# 256 columns); v3 looks x up in a table of 10, so it fails (index out of range) for x >= 10.
"$PY" - "$TMP" <<'PY'
import sys
import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

def save(name, nodes, inits):
    g = helper.make_graph(nodes, name, [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 1])],
                          [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["n", 1])], inits)
    onnx.save(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]),
              "%s/%s.onnx" % (sys.argv[1], name))

save("fast", [helper.make_node("Add", ["x", "zero"], ["y"])],
     [numpy_helper.from_array(np.zeros([1], np.float32), "zero")])
wide = [helper.make_node("MatMul", ["x", "up"], ["h0"])]
wide += [helper.make_node("MatMul", ["h%d" % i, "w"], ["h%d" % (i + 1)]) for i in range(64)]
wide += [helper.make_node("MatMul", ["h64", "down"], ["y"])]
save("slowcanary", wide, [numpy_helper.from_array(np.ones([1, 256], np.float32), "up"),
                          numpy_helper.from_array(np.eye(256, dtype=np.float32), "w"),
                          numpy_helper.from_array(np.ones([256, 1], np.float32) / 256, "down")])
save("flaky", [helper.make_node("Cast", ["x"], ["i"], to=TensorProto.INT64),
               helper.make_node("Gather", ["table", "i"], ["g"], axis=0),
               helper.make_node("Reshape", ["g", "shape"], ["y"])],
     [numpy_helper.from_array(np.arange(10, dtype=np.float32), "table"),
      numpy_helper.from_array(np.array([-1, 1], np.int64), "shape")])
PY

run_phase() {
    CAPSTAN_SERVER=$URL "$PY" "$HERE/deploy_test.py" "$1" "$URL" "$CAPSTAN" "$ROOT" "$TMP" \
        >"$TMP/$1.out" 2>&1
    local rc=$?
    tee -a "$RESULTS" <"$TMP/$1.out" | grep -v "^PASS"
    [ "$rc" -eq 0 ] || fail "phase $1 stopped early (exit $rc)"
}

if start main --threads 16; then
    run_phase main
    stop main
fi
if start restart --threads 16; then
    run_phase restart
    stop restart
fi
rm -rf "$TMP/data"
if start pending --threads 1; then
    run_phase pending
    stop pending
fi
# An inventory with a simulated 16Gi GPU shared by memory and a NUMA node of CPUs 0-1.
cat >"$TMP/devices.yaml" <<'YAML'
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: sim}
spec:
  driver: gpu.nvidia.com
  pool: {name: node, generation: 1, resourceSliceCount: 1}
  nodeName: node
  devices:
  - name: gpu-0
    allowMultipleAllocations: true
    attributes: {index: {int: 0}, productName: {string: simulated}}
    capacity:
      memory: {value: 16Gi, requestPolicy: {default: 1Gi, validRange: {min: 1Gi, step: 1Gi}}}
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
metadata: {name: cpu}
spec:
  driver: cpu.capstan.dev
  pool: {name: node, generation: 1, resourceSliceCount: 1}
  nodeName: node
  devices:
  - name: numa-0
    allowMultipleAllocations: true
    attributes: {numaNode: {int: 0}, coreCPUs: {string: '0-1'}}
    capacity:
      cores: {value: '2', requestPolicy: {default: '1', validRange: {min: '1', step: '1'}}}
YAML
rm -rf "$TMP/data"
if start devices --threads 8 --devices "$TMP/devices.yaml"; then
    run_phase devices
    stop devices
fi
summary
