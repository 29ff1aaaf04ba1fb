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
SUITE=dra_api
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

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

summary
