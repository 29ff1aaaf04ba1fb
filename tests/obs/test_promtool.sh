#!/usr/bin/env bash
# test_promtool.sh SAMPLE [PROMTOOL] - lints cs-metrics-sample's rendering with
# `promtool check metrics`. promtool prints a line per lint problem (and exits non-zero
# for some of them), so the test fails on any output as well as on any exit status.
set -euo pipefail
sample=$1
promtool=${2:-promtool}
if ! command -v "$promtool" >/dev/null 2>&1; then
    echo "test_promtool: promtool not found (apt-get install -y prometheus)" >&2
    exit 1
fi
text=$("$sample")
echo "$text" | grep -q '^capstan_batch_size_bucket{.*le="+Inf"}' ||
    { echo "test_promtool: the sample rendering lacks the batch size histogram" >&2; exit 1; }
set +e
problems=$(printf '%s\n' "$text" | "$promtool" check metrics 2>&1)
status=$?
set -e
if [ "$status" -ne 0 ] || [ -n "$problems" ]; then
    echo "test_promtool: promtool check metrics (exit $status):" >&2
    echo "$problems" >&2
    exit 1
fi
echo "test_promtool: promtool check metrics found no problems in $(printf '%s\n' "$text" | wc -l) lines"
