#!/usr/bin/env bash
# test_cluster.sh - cluster mode: three replicas over one PostgreSQL registry and one blob
# directory (with_postgres.sh sets CS_TEST_PG_URL). The checks and the replicas they start
# live in cluster_test.py; the temporary directory is removed however it ends. The last
# line is `cluster: N passed, M failed`.
#
# Usage: tests/cluster/test_cluster.sh path/to/capstan
set -u
CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
[ -n "${CS_TEST_PG_URL:-}" ] || { echo "cluster: needs CS_TEST_PG_URL (with_postgres.sh)"; exit 77; }
TMP=$(mktemp -d "${TMPDIR:-/tmp}/capstan-cluster.XXXXXX")
trap 'rm -rf "$TMP"' EXIT
"$PY" "$HERE/cluster_test.py" "$CAPSTAN" "$ROOT" "$TMP" "$CS_TEST_PG_URL"
