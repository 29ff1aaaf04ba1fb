#!/usr/bin/env bash
# test_modelrepo.sh - `capstan serve --model-repository DIR` end to end.
#
# Usage: tests/modelrepo/test_modelrepo.sh path/to/capstan
#
# Builds a Triton-layout folder (digits with a config.pbtxt holding a field capstan skips, an
# identity model with two versions and version_policy all, one with config.yaml), then runs
# three servers on it: none (everything loads, the API's load is 400), explicit (--load-model
# digits; the rest through the API, with `config` and `file:` parameters) and poll (versions
# and folders added and removed while it runs; a broken version leaves the old one serving).
# Start-up errors of the flags are checked too, and that nothing is ever written into the
# folder. Checks live in modelrepo_test.py; the last line is `modelrepo: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
ROOT=$(cd "$HERE/../.." && pwd)
PY=${PYTHON:-/usr/bin/python3}
SUITE=modelrepo
# shellcheck source=../lib/server.sh
source "$HERE/../lib/server.sh"

REPO=$TMP/repo
"$PY" "$HERE/modelrepo_test.py" setup "" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
listing() { (cd "$REPO" && find . -printf '%p %s %T@\n' | sort); }
before=$(listing)

for mode in none explicit poll; do
    args=(--model-repository "$REPO" --model-control-mode "$mode")
    [ "$mode" = explicit ] && args+=(--load-model digits)
    [ "$mode" = poll ] && args+=(--repository-poll-secs 1)
    rm -rf "$TMP/data"
    if start "$mode" "${args[@]}" --threads 16; then
        "$PY" "$HERE/modelrepo_test.py" "$mode" "$URL" "$TMP" "$CAPSTAN" "$ROOT" | tee -a "$RESULTS" | grep -v "^PASS"
        stop "$mode"
        if [ "$mode" = none ]; then
            if grep -q '"msg":"config.pbtxt fields not supported, skipped".*optimization' "$TMP/server.log"; then
                pass "unknown config.pbtxt field warned in the log"
            else
                fail "unknown config.pbtxt field not warned: $(grep -m2 pbtxt "$TMP/server.log")"
            fi
        fi
    fi
    [ "$mode" = poll ] || if [ "$before" = "$(listing)" ]; then pass "$mode: nothing written into the model repository"; else
        fail "$mode: the model repository changed: $(diff <(echo "$before") <(listing) | head -5)"
    fi
done

# Flags that do not fit together are usage errors (exit 2) naming the flag.
usage() { # name, expected text, args...
    local name=$1 want=$2
    shift 2
    out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" "$@" 2>&1)
    rc=$?
    if [ "$rc" -eq 2 ] && grep -q -- "$want" <<<"$out"; then pass "$name"; else
        fail "$name: exit $rc: $out"
    fi
}
usage "--load-model needs explicit" "--load-model needs --model-control-mode explicit" \
    --model-repository "$REPO" --load-model digits
usage "--load-model '*' alone" "give it alone" --model-repository "$REPO" \
    --model-control-mode explicit --load-model '*' --load-model digits
usage "--repository-poll-secs needs poll" "needs --model-control-mode poll" \
    --model-repository "$REPO" --repository-poll-secs 3
usage "a control mode needs a repository" "need --model-repository" --model-control-mode poll
usage "an unknown control mode" "none, explicit or poll" --model-repository "$REPO" \
    --model-control-mode sometimes
usage "a missing repository" "--model-repository" --model-repository "$TMP/nope"
usage "--data-dir inside the repository" "never go into the model repository" \
    --model-repository "$REPO" --data-dir "$REPO"
out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --model-repository "$REPO" \
    --model-control-mode explicit --load-model nope 2>&1)
if [ $? -ne 0 ] && grep -q "no folder nope/" <<<"$out"; then pass "--load-model of an unknown model"; else
    fail "--load-model of an unknown model: $out"
fi
out=$("$CAPSTAN" serve --port 0 --data-dir "$TMP/data" --model-repository "$REPO" \
    --model "digits=$ROOT/models/digits.onnx" 2>&1)
if [ $? -ne 0 ] && grep -q "name two models" <<<"$out"; then pass "--model and a repository folder of one name"; else
    fail "--model and a repository folder of one name: $out"
fi

# `serve MODEL.onnx`: a bare path is served under its file name (as llama-server -m), made
# a DNS label; a name that cannot be made one, or one taken, is a usage error.
cp "$ROOT/models/digits.onnx" "$TMP/My_Digits.v2.onnx"
rm -rf "$TMP/data"
if start bare "$TMP/My_Digits.v2.onnx"; then
    code=$(curl -s -o /dev/null -w '%{http_code}' "$URL/v2/models/my-digits-v2/ready")
    if [ "$code" = 200 ]; then pass "serve FILE.onnx: served as my-digits-v2"; else
        fail "serve FILE.onnx: /v2/models/my-digits-v2/ready answered $code"
    fi
    stop bare
fi
cp "$ROOT/models/digits.onnx" "$TMP/___.onnx"
usage "a bare path without a usable name" "use --model NAME=" "$TMP/___.onnx"
usage "a bare path whose name is taken" "which is taken" --model "digits=$ROOT/models/digits.onnx" \
    "$ROOT/models/digits.onnx"

summary
