# server.sh - what the end-to-end server suites share (sourced, not run): a temporary
# directory removed on exit, PASS/FAIL bookkeeping, and starting and stopping a real
# `capstan serve` on a free 127.0.0.1 port.
#
# The caller sets CAPSTAN (the binary), PY (python) and SUITE (its name), then sources this
# file; afterwards TMP, RESULTS, URL and SERVER_PID are set as the functions below say, and
# `summary` prints the last line, `SUITE: N passed, M failed`, and returns its status.

TMP=$(mktemp -d "${TMPDIR:-/tmp}/capstan-$SUITE.XXXXXX")
SERVER_PID=

cleanup() {
    if grep -q '^FAIL' "$TMP/results" 2>/dev/null && [ -f "$TMP/server.log" ]; then
        echo "last server log lines:"
        tail -n 20 "$TMP/server.log"
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -KILL "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
    fi
    rm -rf "$TMP"
}
trap cleanup EXIT

# Every check appends one PASS or FAIL line to $RESULTS; they are counted at the end.
RESULTS=$TMP/results
: >"$RESULTS"
pass() { echo "PASS $1" >>"$RESULTS"; }
fail() { echo "FAIL $1" | tee -a "$RESULTS"; }

free_port() {
    "$PY" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# Sanitizer builds (ASan+UBSan, TSan) report on stderr; any report is a failure.
no_sanitizer_report() { # name, output
    if grep -q "Sanitizer\|runtime error:" <<<"$2"; then
        fail "$1: sanitizer report: $(grep -m3 "Sanitizer\|runtime error:" <<<"$2")"
    fi
}

# start NAME ARGS...: a server with ARGS on a free port (environment from the caller; SCHEME
# https and CACERT FILE for a TLS server), its
# stderr in $TMP/server.log and its pid in $TMP/NAME.pid, waited for until it is live.
# Sets PORT, URL and SERVER_PID.
start() {
    local name=$1
    shift
    PORT=$(free_port)
    URL=${SCHEME:-http}://127.0.0.1:$PORT
    "$CAPSTAN" serve --port "$PORT" --data-dir "$TMP/data" "$@" 2>"$TMP/server.log" &
    SERVER_PID=$!
    echo "$SERVER_PID" >"$TMP/$name.pid"
    for _ in $(seq 200); do
        curl -sf ${CACERT:+--cacert "$CACERT"} "$URL/v2/health/live" >/dev/null 2>&1 && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    fail "$name server did not start: $(tail -3 "$TMP/server.log")"
    return 1
}

# stop NAME: SIGTERM, then the exit status must be 0 within 10 s (a server still up then is
# killed and fails the check), with no sanitizer report in its log.
stop() {
    kill -TERM "$SERVER_PID" 2>/dev/null
    for _ in $(seq 200); do
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    kill -0 "$SERVER_PID" 2>/dev/null && kill -KILL "$SERVER_PID"
    wait "$SERVER_PID"
    local rc=$?
    SERVER_PID=
    if [ "$rc" -eq 0 ]; then pass "$1 server exits 0 on SIGTERM"; else fail "$1 server exited $rc"; fi
    no_sanitizer_report "$1 server" "$(cat "$TMP/server.log")"
}

summary() {
    local passed failed
    passed=$(grep -c '^PASS' "$RESULTS")
    failed=$(grep -c '^FAIL' "$RESULTS")
    echo "$SUITE: $passed passed, $failed failed"
    [ "$failed" -eq 0 ]
}
