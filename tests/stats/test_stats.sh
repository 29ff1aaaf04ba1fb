#!/usr/bin/env bash
# test_stats.sh - GET /v2/models[/NAME[/versions/V]]/stats against Triton's statistics
# extension, field by field, on a real server: digits batching up to 128 rows with no
# queue delay (so each sequential request is its own execution) and a second model.
# Checks live in stats_test.py; the last line is `api_stats: N passed, M failed`.
#
# Usage: tests/stats/test_stats.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=api_stats
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

mkdir -p "$TMP/data/models"
printf 'instances: 1\nmax_batch_size: 128\nmax_queue_delay_us: 0\n' >"$TMP/digits.yaml"
if start stats --model "digits=$ROOT/models/digits.onnx" --model-config "digits=$TMP/digits.yaml" \
    --model "other=$ROOT/models/digits.onnx"; then
    "$PY" "$HERE/stats_test.py" "$URL" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
    stop stats
fi
summary
