#!/usr/bin/env bash
# with_postgres.sh TEST_BINARY [ARGS...] - runs a registry test against a throwaway
# PostgreSQL server: initdb into a fresh temporary folder, a server listening only on a
# unix socket in that folder, one database; the test gets its URL in CS_TEST_PG_URL. The
# server is stopped and the folder removed however the test ends. Exits 77 (skipped)
# where Debian's postgresql package is not installed.
#
# PostgreSQL refuses to run as root: as root, the server runs as the `postgres` user (or
# `nobody` where that does not exist) in a folder handed to that user.
set -euo pipefail

PG_BIN=${PG_BIN:-$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)}
if [[ -z "$PG_BIN" || ! -x "$PG_BIN/initdb" ]]; then
  echo "with_postgres.sh: no PostgreSQL server binaries (apt-get install postgresql); skipping" >&2
  exit 77
fi

tmp=$(mktemp -d /tmp/cs-pg-XXXXXX)
as_pg=()
if [[ $(id -u) -eq 0 ]]; then
  user=postgres
  getent passwd "$user" >/dev/null || user=nobody
  chown "$user" "$tmp"
  as_pg=(runuser -u "$user" --)
fi

cleanup() {
  "${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$tmp/data" -m immediate -w stop >/dev/null 2>&1 || true
  rm -rf "$tmp"
}
trap cleanup EXIT

mkdir -p "$tmp/sock"
if [[ ${#as_pg[@]} -gt 0 ]]; then chown "$user" "$tmp/sock"; fi
"${as_pg[@]}" "$PG_BIN/initdb" -D "$tmp/data" -U capstan --auth=trust --encoding=UTF8 \
  --locale=C.UTF-8 --no-sync >"$tmp/initdb.log" 2>&1 || { cat "$tmp/initdb.log" >&2; exit 1; }
# No TCP at all; fsync off because the test data is thrown away (the registry's own
# durability is the database's business, and SIGKILL tests kill the client, not the server).
"${as_pg[@]}" "$PG_BIN/pg_ctl" -D "$tmp/data" -l "$tmp/server.log" -w -t 60 \
  -o "-c listen_addresses='' -k $tmp/sock -c fsync=off -c max_connections=50" start >/dev/null \
  || { cat "$tmp/server.log" >&2; exit 1; }
"$PG_BIN/createdb" -h "$tmp/sock" -U capstan capstan_test

export CS_TEST_PG_URL="postgresql:///capstan_test?host=$tmp/sock&user=capstan"
"$@"
