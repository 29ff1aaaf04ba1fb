#!/usr/bin/env bash
# test_deploy_external.sh - external runtimes end to end; the checks live in
# deploy_external_test.py, run against one server whose deployment runs the same capstan
# binary as its runtime.
#
# Usage: tests/deploy_external/test_deploy_external.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=deploy_external
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

if start main --threads 4; then
    CAPSTAN_SERVER=$URL "$PY" "$HERE/deploy_external_test.py" "$URL" "$CAPSTAN" "$ROOT" "$TMP" \
        "$SERVER_PID" "$(free_port)" >"$TMP/main.out" 2>&1
    rc=$?
    tee -a "$RESULTS" <"$TMP/main.out" | grep -v "^PASS"
    [ "$rc" -eq 0 ] || fail "the checks stopped early (exit $rc)"
    stop main
fi
summary
