#!/usr/bin/env bash
# test_lineage_api.sh - a version's description and lineage and its download (`capstan model
# push --description/--run-id/--parent/--source-uri`, `model pull`, GET .../artifact) end to
# end against a real `capstan serve`.
#
# Usage: tests/registry_api/test_lineage_api.sh path/to/capstan
#
# Runs on PostgreSQL when CS_TEST_PG_URL is set (tests/registry/with_postgres.sh sets it),
# else on SQLite in the data directory. The checks live in lineage_api_test.py; the
# temporary directory is removed however it ends. The last line is
# `lineage_api: N passed, M failed`.
set -u
CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capstan-lineage.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" "$HERE/lineage_api_test.py" "$CAPSTAN" "$ROOT" "$TMP" "${CS_TEST_PG_URL:-}"
