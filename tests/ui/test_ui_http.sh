#!/usr/bin/env bash
# test_ui_http.sh - the dashboard's embedded files (content types, ETag and 304, immutable
# hashed URLs, gzip) and GET /api/v1/stream (an event a second, the 16-stream bound, inference
# not starved, a server with a stream open still stops at once), against a real server with
# authentication on. No browser: tests/ui/test_ui.sh drives one.
#
# Usage: tests/ui/test_ui_http.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=ui_http
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

if start main --auth tokens --model digits="$ROOT/models/digits.onnx"; then
    # The test keeps a stream open and waits on its stdin; the server is stopped meanwhile.
    coproc T { "$PY" "$HERE/ui_http_test.py" "$URL" "$(cat "$TMP/data/admin.token")" "$ROOT" 2>&1; }
    while IFS= read -r -u "${T[0]}" line; do
        [ "$line" = READY ] && break
        echo "$line" >>"$RESULTS"
        case $line in FAIL*) echo "$line" ;; esac
    done
    stop main
    eval "exec ${T[1]}>&-"
    wait "$T_PID" 2>/dev/null
fi
summary
