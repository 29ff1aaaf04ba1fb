#!/usr/bin/env bash
# test_docs.sh - the shell examples of README.md and docs/*.md run as written, in order,
# against real servers.
#
# doc_blocks.py turns each ```sh block into steps (a `capstan serve` line starts a server on
# a free port in the background, stopping the one before; 8080 becomes that port); each step
# runs in this one shell and must exit 0, and where the docs show its output (a ```json or
# ```text block after the ```sh block, or a trailing `# → TEXT`) the output must match it
# (doc_output.py: the port, times and elided parts are normalised). Each file starts from a fresh scratch folder laid
# out as a checkout is (build/capstan, models/, docs/, deploy/) with a plain server of its
# own, and `capstan` on PATH. What `make run` writes (build/digits.request.json and
# build/digits.image.f32) and what the reader brings for TLS (ca.pem, cert.pem, key.pem) are
# made first. Skipped commands and blocks are listed with their reason.
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

# checkout NAME: a scratch folder laid out as a checkout is (build/capstan, models/, docs/,
# what `make run` writes and the reader's TLS files), made the working directory.
checkout() {
    WORK=$TMP/$1
    mkdir -p "$WORK/build"
    ln -s "$CAPSTAN" "$WORK/build/capstan"
    ln -s "$ROOT/models" "$WORK/models"
    ln -s "$ROOT/docs" "$WORK/docs"
    ln -s "$ROOT/deploy" "$WORK/deploy"
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
}

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
    set +u # an unset variable in an example is that step's failure, not the suite's end
    eval "$2" >"$TMP/out" 2>&1
    local rc=$?
    set -u
    if [ $rc -eq 0 ]; then pass "$1"; else
        fail "$1: exit $rc: ${2%%$'\n'*}: $(tail -3 "$TMP/out")"
    fi
}

# shown WHERE json|text TEXT: the last step's output matches what the docs show.
shown() {
    printf '%s\n' "$3" >"$TMP/shown"
    local why
    if why=$("$PY" "$HERE/doc_output.py" "$2" "$TMP/shown" "$TMP/out" "$PORT"); then
        pass "$1: output as shown"
    else
        fail "$1: output not as the docs show: $why; the output: $(head -c 600 "$TMP/out")"
    fi
}

# The comparison's own rules first, on fixed cases.
if why=$("$PY" "$HERE/doc_output.py" --self-test); then pass "doc_output.py rules"; else
    fail "doc_output.py rules: $why"
fi

# Each file from a fresh checkout and a plain server of its own (its own serve lines replace
# it); `capstan` is on PATH, as for a reader who installed it.
export PATH=$TMP/README/build:$PATH
for doc in README.md docs/api.md docs/deployments.md docs/kubernetes.md; do
    name=$(basename "$doc" .md)
    checkout "$name"
    serve_at
    "$PY" "$HERE/doc_blocks.py" "$ROOT/$doc" >"$TMP/$name.sh" || fail "doc_blocks.py $doc"
    # shellcheck disable=SC1090 # generated from the docs
    source "$TMP/$name.sh"
done
cd "$TMP/README" || exit 1
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
