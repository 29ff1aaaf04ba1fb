#!/usr/bin/env bash
# test_hardening.sh - attacks on `capstan serve` over raw sockets, each the reproduction of
# an item of issue 10: request smuggling and framing, hostile model names, connection floods.
#
# Usage: tests/hardening/test_hardening.sh path/to/capstan
#
# One server with digits; the checks live in hardening_test.py. The last line is
# `hardening: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=hardening
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

# The flood opens over 1,024 sockets from this shell's children and the server's.
ulimit -n 8192 2>/dev/null || ulimit -n "$(ulimit -Hn)"

if start main --model "digits=$ROOT/models/digits.onnx" --header-timeout 2 \
    --max-connections-per-ip 100000; then
    "$PY" "$HERE/hardening_test.py" "$PORT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop main
fi
summary
