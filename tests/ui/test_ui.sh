#!/usr/bin/env bash
# test_ui.sh - the dashboard in a real browser (label `ui`, ~60 s): Debian's chromium, headless,
# driven by playwright-core, which npm installs at test time into BUILD/ui-test (from
# tests/ui/package-lock.json; nothing is committed). A server with authentication on and an
# inventory with a simulated 16 Gi GPU shared by memory and a NUMA node (tests/deploy's style);
# ui_setup.py pushes digits, deploys onto the GPU and picks a digit to draw; ui_browser.mjs runs
# the checks. Screenshots of every page go to BUILD/ui-screenshots.
#
# A missing chromium, node or npm, or a failed npm install, is a failure, never a skip:
# scripts/install-deps installs them.
#
# Usage: tests/ui/test_ui.sh path/to/capstan BUILD_DIR
set -u

CAPSTAN=$(realpath "$1")
BUILD=$(realpath "$2")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=ui
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

for tool in chromium node npm; do
    command -v "$tool" >/dev/null || {
        fail "$tool is not installed (scripts/install-deps installs it)"
        summary
        exit
    }
done
NODE_DIR=$BUILD/ui-test
mkdir -p "$NODE_DIR"
cp "$HERE/package.json" "$HERE/package-lock.json" "$HERE/ui_browser.mjs" "$NODE_DIR/"
if ! (cd "$NODE_DIR" && npm ci --silent --no-audit --no-fund >"$TMP/npm.log" 2>&1); then
    fail "npm ci (playwright-core): $(grep -v EBADENGINE "$TMP/npm.log" | tail -3)"
    summary
    exit
fi

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

SHOTS=$BUILD/ui-screenshots
rm -rf "$SHOTS"
if start main --auth tokens --threads 8 --devices "$TMP/devices.yaml"; then
    ADMIN=$(cat "$TMP/data/admin.token")
    export CAPSTAN_SERVER=$URL CAPSTAN_TOKEN=$ADMIN
    for m in digits digits spare spare; do
        lineage=() # digits v2 comes with a description and lineage for the Model page
        [ "$m" = digits ] && "$CAPSTAN" model ls digits -o name 2>/dev/null | grep -q . &&
            lineage=(--description "retrained on more digits" --run-id r7 --parent 1)
        "$CAPSTAN" model push $m "$ROOT/models/digits.onnx" "${lineage[@]}" >/dev/null \
            2>"$TMP/push.err" || fail "push $m: $(cat "$TMP/push.err")"
    done
    if "$PY" "$HERE/ui_setup.py" "$URL" "$ADMIN" "$ROOT" "$TMP/setup.json" | tee -a "$RESULTS" |
        grep FAIL; then
        :
    else
        URL=$URL ADMIN=$ADMIN SETUP=$TMP/setup.json SHOTS=$SHOTS CAPSTAN=$CAPSTAN ROOT=$ROOT PY=$PY \
            node "$NODE_DIR/ui_browser.mjs" >"$TMP/browser.out" 2>&1
        rc=$?
        tee -a "$RESULTS" <"$TMP/browser.out" | grep -v "^PASS"
        [ "$rc" -eq 0 ] || grep -q '^FAIL' "$TMP/browser.out" || fail "ui_browser.mjs stopped (exit $rc)"
        echo "screenshots: $SHOTS"
    fi
    stop main
fi
summary
