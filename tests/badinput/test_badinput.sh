#!/usr/bin/env bash
# test_badinput.sh - the bad-input catalogue against a real `capstan serve`.
#
# Usage: tests/badinput/test_badinput.sh path/to/capstan
#
# One server with the digits model, a registry in its data directory and the dra_api fleet
# as its devices. badinput_test.py sends every case of its table on a fresh connection and
# checks the status, that the body is {"error": "..."} naming no path of the data directory,
# and that a good inference is answered right after. The last line is `badinput: N passed,
# M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=badinput
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

if start main --model "digits=$ROOT/models/digits.onnx" --devices "$ROOT/tests/dra_api/fleet.yaml" \
    --max-body-size 1048576; then
    "$PY" "$HERE/badinput_test.py" "$URL" "$TMP" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop main
fi
summary
