#!/usr/bin/env bash
# CLI tests: exit codes and messages of the capstan binary (placeholder).
set -euo pipefail
"$1" >/dev/null
echo "cli: 1 passed, 0 failed"
