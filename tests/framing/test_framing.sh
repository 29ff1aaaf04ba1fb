#!/usr/bin/env bash
# test_framing.sh - malformed request heads and chunked bodies against a plain-HTTP and a TLS
# `capstan serve`, at a connection's first request, a kept-alive one's later request and over
# TLS (framing_test.py; what libmicrohttpd answers itself is listed in mhd_known.txt).
#
# Usage: tests/framing/test_framing.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=framing
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 1 \
    -subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1 -keyout "$TMP/key.pem" -out "$TMP/cert.pem" 2>/dev/null
PLAIN_PORT=
if start plain; then
    PLAIN_PORT=$PORT PLAIN_PID=$SERVER_PID
    SERVER_PID=
    if SCHEME=https CACERT=$TMP/cert.pem start tls --data-dir "$TMP/tls-data" \
        --tls-cert "$TMP/cert.pem" --tls-key "$TMP/key.pem"; then
        "$PY" "$HERE/framing_test.py" "$PLAIN_PORT" "$PORT" | tee -a "$RESULTS" | grep -v "^PASS"
        stop tls
    fi
    SERVER_PID=$PLAIN_PID
    stop plain
fi
summary
