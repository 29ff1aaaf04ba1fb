#!/usr/bin/env bash
# test_badinput.sh - the bad-input catalogue against a real `capstan serve`.
#
# Usage: tests/badinput/test_badinput.sh path/to/capstan
#
# One server with the digits model, a registry in its data directory and the dra_api fleet
# as its devices. badinput_test.py sends every case of its table on a fresh connection and
# checks the status, that the body is {"error": "..."} naming no path of the data directory,
# and that a good inference is answered right after. The last line is `badinput: N passed,
# M failed`. The cases libmicrohttpd answers itself are listed in mhd_known.txt (see there).
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
    "$PY" "$HERE/badinput_test.py" "$URL" "$TMP" "$ROOT" >"$TMP/cases"
    stop main
    # Known failures (mhd_known.txt) are shown and kept out of the count; one that passes now,
    # or any other failure, fails the suite.
    known=0
    while IFS= read -r line; do
        name=${line#FAIL }
        name=${name%%: *}
        if [[ $line == FAIL* ]] && grep -qxF "$name" <(grep -v '^#' "$HERE/mhd_known.txt"); then
            echo "KNOWN $line"
            known=$((known + 1))
        else
            echo "$line" >>"$RESULTS"
            [[ $line == PASS* ]] || echo "$line"
        fi
    done <"$TMP/cases"
    while IFS= read -r name; do
        if grep -qxF "PASS $name -> "* "$TMP/cases" 2>/dev/null ||
            grep -q "^PASS $(printf '%s' "$name" | sed 's/[][\.*^$]/\\&/g') -> " "$TMP/cases"; then
            fail "$name now passes: delete it from mhd_known.txt"
        fi
    done < <(grep -v '^#' "$HERE/mhd_known.txt")
    echo "badinput: $known known failures left to libmicrohttpd (mhd_known.txt)"
fi
summary
