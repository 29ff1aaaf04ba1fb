#!/usr/bin/env bash
# test_signing.sh - signed models: `capstan model push --sign KEY.pem` and
# `capstan serve --require-signed --trusted-keys DIR`, with keys made here by
# `openssl genpkey -algorithm ed25519`.
#
# Usage: tests/signing/test_signing.sh path/to/capstan
#
# A first server takes four pushes of digits: unsigned (v1), signed by the trusted key (v2),
# signed by another key (v3), and one whose signature is forged (refused at the push). A
# second server on the same data directory requires signatures: v2 serves, v1 and v3 are
# refused naming why, and so is v2 once its stored signature is damaged. The last line is
# `signing: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=signing
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

MODEL=$ROOT/models/digits.onnx
SAMPLE=$TMP/request.json
"$PY" -c 'import json, sys; print(json.dumps(json.load(open(sys.argv[1]))["request"]))' \
    "$ROOT/models/digits.sample.json" >"$SAMPLE"
mkdir -p "$TMP/trusted"
openssl genpkey -algorithm ed25519 -out "$TMP/good.pem" 2>/dev/null
openssl genpkey -algorithm ed25519 -out "$TMP/other.pem" 2>/dev/null
openssl pkey -in "$TMP/good.pem" -pubout -out "$TMP/trusted/good.pem"
fingerprint() { # the raw key is the DER public key's last 32 bytes
    echo "SHA256:$(openssl pkey -in "$1" -pubout -outform DER | tail -c 32 | sha256sum | cut -c1-64)"
}
GOOD_FP=$(fingerprint "$TMP/good.pem")
OTHER_FP=$(fingerprint "$TMP/other.pem")

# check NAME CONDITION-COMMAND...: PASS when the command succeeds.
check() {
    local name=$1
    shift
    if "$@"; then pass "$name"; else fail "$name"; fi
}
contains() { grep -qF -- "$2" <<<"$1"; }

if start plain --auth none; then
    model() { "$CAPSTAN" model --server "$URL" "$@"; }
    out=$(model push digits "$MODEL" 2>&1)
    check "an unsigned push is stored as version 1 ($out)" contains "$out" "version 1"
    out=$(model push digits "$MODEL" --sign "$TMP/good.pem" 2>&1)
    check "a push signed with --sign is stored as version 2 ($out)" contains "$out" "version 2"
    out=$(model push digits "$MODEL" --sign "$TMP/other.pem" 2>&1)
    check "a push signed by another key is stored as version 3" contains "$out" "version 3"
    out=$(model show digits:2 -o json 2>&1)
    check "model show names the signer's fingerprint" contains "$out" "\"signer\": \"$GOOD_FP\""
    out=$(model show digits:2 2>&1)
    # Values line up after the longest key (now Description), so the gap is not fixed.
    check "model show describes the signer" grep -qE -- "^Signer: +$GOOD_FP\$" <<<"$out"
    out=$(model show digits:1 -o json 2>&1)
    check "model show: an unsigned version's signer is null" contains "$out" '"signer": null'
    out=$(model push digits "$MODEL" --sign "$TMP/trusted/good.pem" 2>&1)
    check "--sign with a public key is refused, naming what it wants" \
        contains "$out" "not an ed25519 private key"
    # A forged signature: version 2's, sent with the other key.
    sig=$(curl -s "$URL/api/v1/models/digits/versions/2" >/dev/null; "$PY" - "$TMP/data/registry.db" <<'PY'
import sqlite3, sys
print(sqlite3.connect(sys.argv[1]).execute(
    "SELECT signature FROM versions WHERE version = 2").fetchone()[0])
PY
)
    other_key=$(openssl pkey -in "$TMP/other.pem" -pubout -outform DER | tail -c 32 | od -An -tx1 | tr -d ' \n')
    resp=$(curl -s -w ' %{http_code}' -X POST "$URL/api/v1/models/digits/versions" \
        -H 'Content-Type: application/octet-stream' -H "X-Capstan-Signature: $sig" \
        -H "X-Capstan-Signer-Key: $other_key" --data-binary @"$MODEL")
    check "a push whose signature does not verify is 400 naming why ($resp)" \
        contains "$resp" "does not verify"
    check "  ... with status 400" contains "$resp" '"} 400'
    stop plain
fi

# A server that requires signatures, on the same data directory.
out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --require-signed 2>&1)
check "--require-signed without --trusted-keys is a usage error" contains "$out" "go together"
mkdir -p "$TMP/empty"
out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --require-signed --trusted-keys "$TMP/empty" 2>&1)
check "--trusted-keys without a key does not start ($out)" contains "$out" "no *.pem public key"

infer() { # version -> "body status"
    curl -s -w ' %{http_code}' -X POST "$URL/v2/models/digits/versions/$1/infer" \
        -H 'Content-Type: application/json' --data-binary @"$SAMPLE"
}
if start signed --auth none --require-signed --trusted-keys "$TMP/trusted"; then
    out=$(infer 2)
    check "a version signed by a trusted key serves ($out)" contains "$out" " 200"
    out=$(infer 1)
    check "an unsigned version is refused ($out)" contains "$out" "is not signed, and this server serves only signed versions"
    check "  ... with a JSON error and a 4xx status" grep -qE '^\{"error":.*\} 4[0-9][0-9]$' <<<"$out"
    out=$(infer 3)
    check "a version signed by an untrusted key is refused, naming the key" \
        contains "$out" "signed by key $OTHER_FP, which is not among the server's --trusted-keys"
    stop signed
fi
# Version 2's stored signature damaged (another valid-looking signature): refused at load.
"$PY" - "$TMP/data/registry.db" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
sig = db.execute("SELECT signature FROM versions WHERE version = 2").fetchone()[0]
db.execute("UPDATE versions SET signature = ? WHERE version = 2",
           (("0" if sig[0] != "0" else "1") + sig[1:],))
db.commit()
PY
if start damaged --auth none --require-signed --trusted-keys "$TMP/trusted"; then
    out=$(infer 2)
    check "a version whose signature does not verify is refused ($out)" \
        contains "$out" "the signature does not verify"
    stop damaged
fi
summary
