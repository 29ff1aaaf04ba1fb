#!/usr/bin/env bash
# test_implicit.sh - implicit deployments end to end; the checks live in implicit_test.py,
# run against a server with --model digits (phase "main", which ends with an explicit
# deployment of that name applied) and against a restart of it on the same data directory
# (phase "restart": the stored explicit deployment wins over the --model until deleted).
#
# Usage: tests/implicit/test_implicit.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=implicit
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

run_phase() {
    CAPSTAN_SERVER=$URL "$PY" "$HERE/implicit_test.py" "$1" "$URL" "$CAPSTAN" "$ROOT" \
        >"$TMP/$1.out" 2>&1
    local rc=$?
    tee -a "$RESULTS" <"$TMP/$1.out" | grep -v "^PASS"
    [ "$rc" -eq 0 ] || fail "phase $1 stopped early (exit $rc)"
}

for phase in main restart; do
    if start "$phase" --threads 8 --model "digits=$ROOT/models/digits.onnx"; then
        run_phase "$phase"
        stop "$phase"
    fi
done
summary
