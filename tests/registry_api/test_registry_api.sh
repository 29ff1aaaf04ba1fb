#!/usr/bin/env bash
# test_registry_api.sh - the registry over HTTP end to end: management API, streamed
# pushes, serving and hot swap under load, the `capstan model` CLI, kill -9 mid-push.
#
# Usage: tests/registry_api/test_registry_api.sh path/to/capstan
#
# Runs on PostgreSQL when CS_TEST_PG_URL is set (with_postgres.sh sets it), else on SQLite
# in the data directory. The checks and the servers they start live in
# registry_api_test.py; the temporary directory is removed however it ends. The last line
# is `registry_api: N passed, M failed`.
set -u
CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capstan-regapi.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" "$HERE/registry_api_test.py" "$CAPSTAN" "$ROOT" "$TMP" "${CS_TEST_PG_URL:-}"
