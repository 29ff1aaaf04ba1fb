#!/usr/bin/env bash
# test_tls.sh - `capstan serve` over HTTPS: verification, protocol and cipher floor, SIGHUP
# reload (a good pair is taken, a bad one leaves the old serving), the CLI's --cacert, and
# start-up errors. Certificates come from a throw-away CA made here with openssl.
#
# Usage: tests/tls/test_tls.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=tls
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }

# A CA and two server certificates it signs (127.0.0.1 and localhost), plus a stranger's key.
cd "$TMP" || exit 1
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=capstan-test-ca -keyout ca.key -out ca.pem 2>/dev/null
for n in one two; do
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj "/CN=server-$n" \
        -keyout "$n.key" -out "$n.csr" 2>/dev/null
    printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
    openssl x509 -req -in "$n.csr" -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
        -extfile ext.cnf -out "$n.pem" 2>/dev/null
done
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:prime256v1 -out stranger.key 2>/dev/null
cp one.pem server.pem
cp one.key server.key

# The subject of the certificate the server presents now.
presented() {
    echo | openssl s_client -connect "127.0.0.1:$PORT" -servername localhost 2>/dev/null |
        openssl x509 -noout -subject 2>/dev/null
}

SCHEME=https CACERT=$TMP/ca.pem
if start tls --model "digits=$ROOT/models/digits.onnx" --tls-cert server.pem --tls-key server.key; then

    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem "$URL/v2/health/ready")
    check "https readiness with the CA is 200" '[ "$code" = 200 ]'
    "$PY" -c 'import json; print(json.dumps(json.load(open("'"$ROOT"'/models/digits.sample.json"))["request"]))' >req.json
    out=$(curl -s --cacert ca.pem "$URL/v2/models/digits/infer" -H 'Content-Type: application/json' --data-binary @req.json)
    check "https inference answers" 'grep -q "\"probabilities\"" <<<"$out"'
    curl -s -o /dev/null "$URL/v2/health/ready"
    check "curl without the CA refuses the certificate (exit 60)" '[ $? -eq 60 ]'
    code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 5 "http://127.0.0.1:$PORT/v2/health/ready")
    check "plain HTTP on the TLS port gets no answer" '[ "$code" != 200 ]'
    s_client() { echo | openssl s_client -connect "127.0.0.1:$PORT" "$@" 2>&1; }
    check "TLS 1.3 is accepted" 's_client -tls1_3 | grep -q "TLSv1.3, Cipher is TLS_"'
    check "TLS 1.2 with an AEAD cipher is accepted" 's_client -tls1_2 | grep -q "TLSv1.2, Cipher is ECDHE-ECDSA-AES.*GCM"'
    check "TLS 1.1 is refused" '! s_client -tls1_1 | grep -q "Cipher is [A-Z]"'
    check "TLS 1.0 is refused" '! s_client -tls1 | grep -q "Cipher is [A-Z]"'
    check "TLS 1.2 with a CBC cipher is refused" '! s_client -tls1_2 -cipher ECDHE-ECDSA-AES128-SHA | grep -q "Cipher is [A-Z]"'
    check "the first certificate is presented" 'presented | grep -q server-one'

    # SIGHUP: a new pair is taken by new handshakes; a bad pair leaves the old one serving.
    cp two.pem server.pem
    cp two.key server.key
    kill -HUP "$SERVER_PID"
    sleep 0.5
    check "after SIGHUP the new certificate is presented" 'presented | grep -q server-two'
    check "the server still runs after SIGHUP" 'kill -0 $SERVER_PID'
    cp stranger.key server.key
    kill -HUP "$SERVER_PID"
    sleep 0.5
    check "a key that does not match is not taken" 'presented | grep -q server-two'
    check "the log says why the reload failed" 'grep -q "not reloaded.*does not match" "$TMP/server.log"'
    echo garbage >server.pem
    kill -HUP "$SERVER_PID"
    sleep 0.5
    code=$(curl -s -o /dev/null -w '%{http_code}' --cacert ca.pem "$URL/v2/health/ready")
    check "a broken certificate file leaves the old pair serving" '[ "$code" = 200 ]'
    check "no secret key material in the log" '! grep -q "PRIVATE KEY" "$TMP/server.log"'

    # The CLI verifies the server: with --cacert or CAPSTAN_CACERT it works, without it fails.
    "$CAPSTAN" model ls --server "$URL" --cacert ca.pem >cli.out 2>cli.err
    rc=$?
    check "capstan model ls --cacert over https (no registry: a clean error, not TLS)" \
        '! grep -qi "certificate" cli.err'
    CAPSTAN_CACERT=$TMP/ca.pem "$CAPSTAN" model ls --server "$URL" >cli.out 2>cli.err
    check "CAPSTAN_CACERT works like --cacert" '! grep -qi "certificate" cli.err'
    "$CAPSTAN" model ls --server "$URL" >cli.out 2>cli.err
    rc=$?
    check "the CLI refuses an unverified server (exit 1, says --cacert)" '[ $rc -eq 1 ] && grep -q -- "--cacert" cli.err'
    stop tls
fi

# Start-up errors: one line, non-zero exit, no half-started server.
expect_start_error() { # name, want (substring of stderr), want rc, args...
    local name=$1 want=$2 want_rc=$3
    shift 3
    timeout 20 "$CAPSTAN" serve --port 0 --data-dir "$TMP/data2" "$@" >/dev/null 2>start.err
    local rc=$?
    if [ "$rc" -eq "$want_rc" ] && grep -q -- "$want" start.err; then pass "$name"; else
        fail "$name: rc $rc, stderr: $(tail -2 start.err)"
    fi
}
expect_start_error "--tls-cert without --tls-key" "go together" 2 --tls-cert one.pem
expect_start_error "a key that does not match the certificate" "does not match" 1 \
    --tls-cert one.pem --tls-key stranger.key
expect_start_error "a missing certificate file" "cannot read" 1 --tls-cert nosuch.pem --tls-key one.key
summary
