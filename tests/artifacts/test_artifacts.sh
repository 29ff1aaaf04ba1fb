#!/usr/bin/env bash
# test_artifacts.sh - external data and paths against a real `capstan serve` (issue 10,
# items 2, 4 and 9).
#
# Usage: tests/artifacts/test_artifacts.sh path/to/capstan
#
# artifacts_test.py writes DATA_DIR/models/ (a model whose external data sits beside it, and
# ones whose location is absolute, climbs with `..` or is a symlink out of the folder) and a
# file outside it, then starts nothing itself: this script starts the server on that data
# directory and runs the checks (repository loads, registry pushes, the cross-blob read of
# the issue). The last line is `artifacts: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=artifacts
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

"$PY" "$HERE/artifacts_test.py" prepare "$TMP" | tee -a "$RESULTS" | grep -v "^PASS"
if start main --threads 2; then
    "$PY" "$HERE/artifacts_test.py" check "$TMP" "$URL" | tee -a "$RESULTS" | grep -v "^PASS"
    stop main
    if grep -q "outside.bin" "$TMP/server.log"; then pass "the server log keeps the path"; else
        fail "the server log keeps the path: no mention of outside.bin"; fi
fi
summary
