#!/usr/bin/env bash
# test_auth.sh - `capstan serve --auth tokens` end to end; checks live in auth_test.py.
#
# Usage: tests/auth/test_auth.sh path/to/capstan
# Also: the default is tokens on a non-loopback --host, none on loopback (with --auth none
# to opt out), and the first start writes DATA_DIR/admin.token with mode 0600.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=auth
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

if start main --auth tokens --model "digits=$ROOT/models/digits.onnx"; then
    tokfile=$TMP/data/admin.token
    mode=$(stat -c %a "$tokfile" 2>/dev/null)
    if [ "$mode" = 600 ]; then pass "admin.token has mode 0600"; else fail "admin.token mode '$mode'"; fi
    if grep -q "$(cat "$tokfile")" "$TMP/server.log"; then fail "the admin secret is in the log"; else
        pass "the admin secret is not logged"; fi
    if grep -q "admin.token" "$TMP/server.log"; then pass "the log says where the admin token is"; else
        fail "the log does not name admin.token"; fi
    CAPSTAN_TOKEN=$(cat "$tokfile") "$PY" "$HERE/auth_test.py" "$URL" "$TMP" "$CAPSTAN" "$ROOT" \
        | tee -a "$RESULTS" | grep -v "^PASS"
    stop main
fi
# Restarting keeps the tokens (they are in the store) and makes no second admin token.
first=$(cat "$TMP/data/admin.token" 2>/dev/null)
if start again --auth tokens; then
    if [ "$(cat "$TMP/data/admin.token")" = "$first" ]; then pass "a restart keeps the admin token"; else
        fail "a restart replaced the admin token"; fi
    code=$(curl -s -o /dev/null -w '%{http_code}' -H "Authorization: Bearer $first" "$URL/v2")
    if [ "$code" = 200 ]; then pass "the admin token works after a restart"; else fail "after restart: $code"; fi
    stop again
fi
# Secure by default: not on loopback means tokens unless --auth none.
PORT=$(free_port)
"$CAPSTAN" serve --host 0.0.0.0 --port "$PORT" --data-dir "$TMP/d2" 2>"$TMP/d2.log" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/health/live" && break; sleep 0.05; done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2")
if [ "$code" = 401 ]; then pass "--host 0.0.0.0 turns tokens on by default"; else fail "--host 0.0.0.0 answered $code anonymously"; fi
kill -TERM $pid; wait $pid
PORT=$(free_port)
"$CAPSTAN" serve --host 0.0.0.0 --port "$PORT" --auth none --data-dir "$TMP/d3" 2>"$TMP/d3.log" &
pid=$!
for _ in $(seq 100); do curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/health/live" && break; sleep 0.05; done
code=$(curl -s -o /dev/null -w '%{http_code}' "http://127.0.0.1:$PORT/v2")
if [ "$code" = 200 ]; then pass "--auth none opts out explicitly"; else fail "--auth none answered $code"; fi
kill -TERM $pid; wait $pid

# --host takes IPv6 addresses and host names: "::" listens dual-stack (IPv6 and IPv4 both
# answer) and is not loopback (tokens on); "::1" is loopback (no tokens), IPv6 only;
# "localhost" is 127.0.0.1. An address that is none of these is refused naming it.
code_at() { curl -s -g -o /dev/null -w '%{http_code}' "$1"; }
serve_on() { # host, data dir name
    PORT=$(free_port)
    "$CAPSTAN" serve --host "$1" --port "$PORT" --data-dir "$TMP/$2" 2>"$TMP/$2.log" &
    pid=$!
    for _ in $(seq 100); do
        [ "$(code_at "http://127.0.0.1:$PORT/v2/health/live")" = 200 ] && break
        [ "$(code_at "http://[::1]:$PORT/v2/health/live")" = 200 ] && break
        sleep 0.05
    done
}
serve_on :: d6
v6=$(code_at "http://[::1]:$PORT/v2") v4=$(code_at "http://127.0.0.1:$PORT/v2")
if [ "$v6" = 401 ] && [ "$v4" = 401 ]; then pass "--host :: is dual-stack and turns tokens on"; else
    fail "--host ::: IPv6 answered $v6, IPv4 $v4 (want 401 both)"; fi
kill -TERM $pid; wait $pid
if ! "$PY" -c 'import socket; socket.socket(socket.AF_INET6).bind(("::1", 0))' 2>/dev/null; then
    echo "skipped: --host ::1 and the CLI over IPv6 (this machine has no ::1)"
else
serve_on ::1 d7
v6=$(code_at "http://[::1]:$PORT/v2") v4=$(code_at "http://127.0.0.1:$PORT/v2")
if [ "$v6" = 200 ] && [ "$v4" = 000 ]; then pass "--host ::1 is IPv6 loopback, without tokens"; else
    fail "--host ::1: IPv6 answered $v6, IPv4 $v4 (want 200 and no answer)"; fi
# The CLI takes the server as a URL with a bracketed IPv6 address, by variable or option.
out=$(CAPSTAN_SERVER="http://[::1]:$PORT" "$CAPSTAN" model push v6-model "$ROOT/models/digits.onnx" 2>&1 &&
    "$CAPSTAN" model ls --server "http://[::1]:$PORT" 2>&1)
if grep -q "^v6-model " <<<"$out"; then pass "the CLI reaches a --host ::1 server at http://[::1]:PORT"
else fail "the CLI over IPv6: $out"; fi
kill -TERM $pid; wait $pid
fi
serve_on localhost d8
v4=$(code_at "http://127.0.0.1:$PORT/v2")
if [ "$v4" = 200 ]; then pass "--host localhost listens on 127.0.0.1, without tokens"; else
    fail "--host localhost: 127.0.0.1 answered $v4"; fi
kill -TERM $pid; wait $pid
out=$("$CAPSTAN" serve --host 300.1.2.3.invalid --auth none --port 0 --data-dir "$TMP/d9" 2>&1)
rc=$?
if [ $rc -ne 0 ] && grep -q "'300.1.2.3.invalid' is not an IPv4 or IPv6 address" <<<"$out"; then
    pass "a --host that is no address is refused naming it"
else fail "bad --host: exit $rc: $out"; fi
summary
