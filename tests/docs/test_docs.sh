#!/usr/bin/env bash
# test_docs.sh - the README's shell examples run as written, in order, against real servers.
#
# doc_blocks.py turns each ```sh block into steps (a `capstan serve` line starts a server on
# a free port in the background, stopping the one before; 8080 becomes that port); each step
# runs in this one shell, in a scratch folder laid out as a checkout is (build/capstan,
# models/, docs/), and must exit 0. What `make run` writes (build/digits.request.json and
# build/digits.image.f32) and what the reader brings for TLS (ca.pem, cert.pem, key.pem) are
# made first. Skipped commands are listed with their reason.
#
# Usage: tests/docs/test_docs.sh path/to/capstan
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=docs
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

WORK=$TMP/checkout
mkdir -p "$WORK/build"
ln -s "$CAPSTAN" "$WORK/build/capstan"
ln -s "$ROOT/models" "$WORK/models"
ln -s "$ROOT/docs" "$WORK/docs"
cd "$WORK" || exit 1
# What `make run` writes before it serves (the Makefile's run target does the same).
"$PY" -c 'import json, struct; r = json.load(open("models/digits.sample.json"))["request"]
open("build/digits.request.json", "w").write(json.dumps(r))
open("build/digits.image.f32", "wb").write(struct.pack("<64f", *r["inputs"][0]["data"]))'
# The reader's certificate for the TLS example: a CA and a certificate for 127.0.0.1.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 \
    -subj /CN=docs-ca -keyout ca.key -out ca.pem 2>/dev/null
openssl req -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -subj /CN=docs \
    -keyout key.pem -out cert.csr 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1,DNS:localhost\n' >ext.cnf
openssl x509 -req -in cert.csr -CA ca.pem -CAkey ca.key -CAcreateserial -days 2 \
    -extfile ext.cnf -out cert.pem 2>/dev/null

PORT=$(free_port)
export CAPSTAN_SERVER=http://127.0.0.1:$PORT

# serve_at ARGS...: the docs' `capstan serve ARGS` on $PORT in the background, once the one
# before has stopped; waited for until it is live.
serve_at() {
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null
        wait "$SERVER_PID" 2>/dev/null
        SERVER_PID=
    fi
    "$CAPSTAN" serve --port "$PORT" "$@" 2>>"$TMP/server.log" &
    SERVER_PID=$!
    for _ in $(seq 200); do
        curl -s -o /dev/null "http://127.0.0.1:$PORT/v2/health/live" && return 0
        curl -sk -o /dev/null "https://127.0.0.1:$PORT/v2/health/live" && return 0
        kill -0 "$SERVER_PID" 2>/dev/null || break
        sleep 0.05
    done
    echo "server did not start: $(tail -3 "$TMP/server.log")"
    return 1
}

# step WHERE COMMAND: runs COMMAND here; it must exit 0.
step() {
    eval "$2" >"$TMP/out" 2>&1
    local rc=$?
    if [ $rc -eq 0 ]; then pass "$1"; else
        fail "$1: exit $rc: ${2%%$'\n'*}: $(tail -3 "$TMP/out")"
    fi
}

steps=$TMP/steps.sh
"$PY" "$HERE/doc_blocks.py" "$ROOT/README.md" >"$steps" || fail "doc_blocks.py README.md"
# shellcheck disable=SC1090 # generated from the README
source "$steps"
if [ -n "$SERVER_PID" ]; then kill -TERM "$SERVER_PID" && wait "$SERVER_PID"; SERVER_PID=; fi

# What the examples say they leave behind, in substance.
check() { if eval "$2"; then pass "$1"; else fail "$1"; fi; }
check "run writes out/sum.npy, 1 + 1 everywhere" \
    "'$PY' -c 'import numpy as np, sys; sys.exit(not (np.load(\"out/sum.npy\") == 2).all())'"
check "the binary infer answer is saved" "[ -s build/digits.answer ]"
check "model pull wrote the pushed bytes" "cmp -s mnist.onnx models/digits.onnx"
check "devices -o yaml writes ResourceSlices" "grep -q 'kind: ResourceSlice' slices.yaml"
check "the servers wrote their data under ./capstan-data" "[ -f capstan-data/admin.token ]"
no_sanitizer_report "the docs' servers" "$(cat "$TMP/server.log")"
summary
