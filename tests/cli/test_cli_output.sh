#!/usr/bin/env bash
# test_cli_output.sh - kubectl's idiom in the capstan CLI, against a real `capstan serve`:
# -o json|yaml|wide|name on every listing and show command (any case; anything else a usage
# error naming the allowed values), tables whose columns fit their content, sizes in binary
# units and times as ages in tables, RFC 3339 with Z in JSON and YAML (YAML that PyYAML reads
# back as the same document, so times and numbers-as-strings are quoted), `model show`
# described rather than dumped, audit rows without a version shown as '-', and serve's size
# and time flags taken as Kubernetes quantities and durations (and applied: a body past
# --max-body-size 2Ki is refused with 413).
#
# Usage: bash tests/cli/test_cli_output.sh path/to/capstan
# The last line is `cli_output: N passed, M failed`.
set -u
CAPSTAN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
SUITE=cli_output
# shellcheck source=../lib/server.sh
. "$ROOT/tests/lib/server.sh"
cd "$TMP" || exit 1

# run NAME WANT_RC CMD...: CMD's stdout in $TMP/out, stderr in $TMP/err, its status checked.
run() {
    local name=$1 want=$2
    shift 2
    "$@" >"$TMP/out" 2>"$TMP/err"
    local rc=$?
    if [ "$rc" -eq "$want" ]; then pass "$name"; else
        fail "$name: exit $rc, want $want: $(head -c 300 "$TMP/err")"
    fi
}
# py NAME CODE: python CODE passes, with `out` (stdout text) and `err` at hand.
py() {
    if "$PY" - "$TMP/out" "$TMP/err" "$2" 2>"$TMP/py.err" <<'PYEOF'; then pass "$1"; else
import sys, json, re
import yaml
out, err = open(sys.argv[1]).read(), open(sys.argv[2]).read()
lines = out.splitlines()
def columns(header):
    """Start offsets of each header word: a table sized to its content has them aligned."""
    return [m.start() for m in re.finditer(r"\S+", header)]
def cells(line, starts):
    return [line[a:b].strip() for a, b in zip(starts, starts[1:] + [None])]
exec(sys.argv[3])
PYEOF
        fail "$1: $(tail -n 3 "$TMP/py.err") | out: $(head -c 400 "$TMP/out")"
    fi
}

# --- serve's flags: quantities and durations, with errors naming the flag ------------------
for bad in "--max-body-size 1x" "--max-body-size 10" "--exit-timeout soon" "--exit-timeout 2h" \
    "--header-timeout -1s" "--request-timeout 5y" "--max-artifact-size 2Ti" "--min-body-rate 0"; do
    # shellcheck disable=SC2086 # bad is a flag and its value
    run "serve $bad is a usage error" 2 "$CAPSTAN" serve --port 0 --data-dir "$TMP/bad" $bad
    flag=${bad%% *}
    py "serve $bad: the message names $flag and the forms" "
assert '$flag expects a' in err, err
assert ('64Mi' in err) or ('30s' in err and 'a bare number is seconds' in err), err
assert len(err.splitlines()) == 1, err"
done
run "token create --ttl forever is refused before any request" 2 \
    "$CAPSTAN" token create x --role viewer --ttl forever --server http://127.0.0.1:1
py "token --ttl: the message names the flag and the forms" "assert '--ttl expects a positive duration' in err and '30d' in err, err"

if ! start main --auth none --max-body-size 2Ki --exit-timeout 30s --header-timeout 5s \
    --request-timeout 1m --max-artifact-size 1Mi --min-body-rate 1Ki; then
    summary
    exit 1
fi
export CAPSTAN_SERVER=$URL
code=$(head -c 3000 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- \
    -H 'Content-Type: application/json' "$URL/v2/models/none/infer")
if [ "$code" = 413 ]; then pass "--max-body-size 2Ki applies: 3000 bytes get 413"; else
    fail "--max-body-size 2Ki: 3000 bytes got $code"
fi
code=$(head -c 1500 /dev/zero | curl -s -o /dev/null -w '%{http_code}' -X POST --data-binary @- \
    -H 'Content-Type: application/json' "$URL/v2/models/none/infer")
if [ "$code" = 404 ]; then pass "--max-body-size 2Ki: 1500 bytes pass the limit"; else
    fail "--max-body-size 2Ki: 1500 bytes got $code"
fi

DIGITS=$ROOT/models/digits.onnx
LONG=a-model-with-a-rather-long-name
run "push digits" 0 "$CAPSTAN" model push digits "$DIGITS" --label team=vision --alias prod
py "push shows the size in binary units" "assert re.search(r'version 1 \(sha256:[0-9a-f]{64}, 6[0-9.]+KiB\)', out), out"
run "push digits -o name" 0 "$CAPSTAN" model push digits "$DIGITS" -o name
py "push -o name is model/NAME:VERSION" "assert out == 'model/digits:2\n', out"
run "push the long name" 0 "$CAPSTAN" model push "$LONG" "$DIGITS"
# What push can know before it sends anything is checked first: nothing reaches the server.
mkdir -p "$TMP/adir"
run "push of a directory fails" 1 "$CAPSTAN" model push refused "$TMP/adir"
py "push of a directory says so" "assert err == 'capstan: model: $TMP/adir is a directory: push takes one .onnx file\n', err"
run "push of a device fails" 1 "$CAPSTAN" model push refused /dev/null
py "push of a device says so" "assert 'is not a regular file' in err, err"
for a in Prod latest 7; do
    run "push --alias $a is a usage error" 2 "$CAPSTAN" model push refused "$DIGITS" --alias "$a"
    py "push --alias $a names the flag and the rule" "assert err.startswith(\"capstan: model: --alias: alias name '$a' is\"), err"
done
run "model ls after the refused pushes" 0 "$CAPSTAN" model ls -o name
py "a refused push created no model" "assert 'model/refused' not in lines, lines"

# --- model ls ----------------------------------------------------------------------------
run "model ls" 0 "$CAPSTAN" model ls
py "model ls: a table sized to its content, ages" "
h = columns(lines[0])
assert lines[0].split() == ['NAME', 'LABELS', 'UPDATED', 'AGE'], lines[0]
assert h[1] == len('$LONG') + 3, (h, lines)  # NAME is as wide as the longest name, plus 3
rows = {cells(l, h)[0]: cells(l, h) for l in lines[1:]}
assert set(rows) == {'digits', '$LONG'}, rows
assert all(re.fullmatch(r'\d+[smhd]', r[3]) for r in rows.values()), rows
assert rows['digits'][1] == '-', rows"
run "model ls -o wide" 0 "$CAPSTAN" model ls -o wide
py "model ls -o wide adds columns" "assert lines[0].split() == ['NAME', 'LABELS', 'UPDATED', 'AGE', 'CREATED-BY', 'DESCRIPTION'], lines[0]"
run "model ls -o NAME (any case)" 0 "$CAPSTAN" model ls -o NAME
py "model ls -o name" "assert sorted(lines) == ['model/$LONG', 'model/digits'], lines"
run "model ls -o xml" 2 "$CAPSTAN" model ls -o xml
py "an unknown format names the allowed ones" "assert \"json, yaml, wide or name, got 'xml'\" in err and len(err.splitlines()) == 1, err"
run "model ls digits" 0 "$CAPSTAN" model ls digits
py "versions: SIZE in KiB, digest cut, labels, ages" "
h = columns(lines[0])
assert lines[0].split() == ['VERSION', 'STATE', 'SIZE', 'DIGEST', 'LABELS', 'AGE'], lines[0]
r = [cells(l, h) for l in lines[1:]]
assert [x[0] for x in r] == ['1', '2'], r
assert all(re.fullmatch(r'6\d(\.\d)?KiB', x[2]) for x in r), r
assert all(re.fullmatch(r'sha256:[0-9a-f]{12}', x[3]) for x in r), r
assert r[0][4] == 'team=vision' and r[1][4] == '-', r
assert all(re.fullmatch(r'\d+[smhd]', x[5]) for x in r), r"
run "model ls digits -o wide" 0 "$CAPSTAN" model ls digits -o Wide
py "versions -o wide" "assert lines[0].split()[6:] == ['FORMAT', 'CREATED-BY', 'SOURCE', 'PARENT', 'SIGNER', 'DESCRIPTION'], lines[0]"
run "model ls digits -o name" 0 "$CAPSTAN" model ls digits -o name
py "versions -o name" "assert lines == ['model/digits:1', 'model/digits:2'], lines"
run "model ls digits -o json" 0 "$CAPSTAN" model ls digits -o json
cp "$TMP/out" "$TMP/ls.json"
py "-o json: pretty, 2-space indent, sizes in bytes, RFC 3339 with Z" "
j = json.loads(out)
assert lines[1].startswith('  \"') and not lines[1].startswith('   '), lines[:3]
v = j['items'][0]
assert isinstance(v['size'], int) and v['size'] > 60000, v
assert re.fullmatch(r'\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z', v['created_at']), v"
run "model ls digits -o yaml" 0 "$CAPSTAN" model ls digits -o yaml
py "-o yaml reads back (PyYAML) as the JSON: times and digests quoted" "
assert yaml.safe_load(out) == json.load(open('$TMP/ls.json')), out
assert re.search(r'created_at: \"\d{4}-', out), out"

# --- model show ----------------------------------------------------------------------------
run "model show digits" 0 "$CAPSTAN" model show digits
py "show is described, not JSON: Name first, aliases, ages" "
assert lines[0].split() == ['Name:', 'digits'], lines
assert not out.lstrip().startswith('{'), out
assert 'Aliases:' in lines and '  prod=1' in lines, lines
assert re.search(r'^Created At: +\d{4}-\d\d-\d\dT[0-9:.]+Z \(\d+[smhd] ago\)$', out, re.M), out"
run "model show digits@prod" 0 "$CAPSTAN" model show digits@prod
py "a version described: size, labels, nested sections indented" "
assert re.search(r'^Size: +6[0-9.]+KiB \(\d+ bytes\)$', out, re.M), out
assert 'Labels:' in lines and '  team=vision' in lines, lines
assert 'IO Schema:' in lines and '  Inputs:' in lines, lines
assert re.search(r'^      Name: +image$', out, re.M), out
assert re.search(r'^Lineage:\n(  .*\n)*  Source URI: +-$', out, re.M), out"
run "model show digits:1 -o json" 0 "$CAPSTAN" model show digits:1 -o json
cp "$TMP/out" "$TMP/show.json"
py "show -o json" "j = json.loads(out); assert j['version'] == 1 and j['labels'] == {'team': 'vision'}, j"
run "model show digits:1 -o yaml" 0 "$CAPSTAN" model show digits:1 -o yaml
py "show -o yaml reads back as the JSON" "assert yaml.safe_load(out) == json.load(open('$TMP/show.json')), out"
run "model show digits:1 -o name" 0 "$CAPSTAN" model show digits:1 -o name
py "show -o name" "assert out == 'model/digits:1\n', out"
run "model show digits --json (the old flag)" 0 "$CAPSTAN" model show digits --json
py "--json is -o json" "assert json.loads(out)['aliases'] == {'prod': 1}, out"

# --- model audit -----------------------------------------------------------------------------
run "model audit" 0 "$CAPSTAN" model audit
py "audit: rows without a version show '-', ages" "
h = columns(lines[0])
assert lines[0].split() == ['ID', 'AGE', 'ACTOR', 'ACTION', 'MODEL', 'VERSION', 'ALIAS'], lines[0]
rows = [cells(l, h) for l in lines[1:]]
created = [r for r in rows if r[3] == 'model.created']
assert created and all(r[5] == '-' for r in created), rows
assert [r[5] for r in rows if r[3] == 'alias.moved'] == ['1'], rows
assert all(re.fullmatch(r'\d+[smhd]', r[1]) for r in rows), rows"
run "model audit -o yaml" 0 "$CAPSTAN" model audit -o yaml
py "audit -o yaml: times quoted RFC 3339" "
j = yaml.safe_load(out)
assert all(isinstance(i['at'], str) and i['at'].endswith('Z') for i in j['items']), j"
run "model audit -o name" 0 "$CAPSTAN" model audit digits -o name
py "audit -o name" "assert lines and all(re.fullmatch(r'audit/\d+', l) for l in lines), lines"

# --- deployments and rollouts ----------------------------------------------------------------
cat >"$TMP/web.yaml" <<'EOF'
apiVersion: capstan.dev/v1
kind: Deployment
metadata: {name: web}
spec:
  model: digits
  instances: {min: 1, max: 2}
EOF
run "apply" 0 "$CAPSTAN" apply -f "$TMP/web.yaml"
run "get deployments" 0 "$CAPSTAN" get deployments
py "get deployments: a table sized to its content" "
assert lines[0].split() == ['NAME', 'MODEL', 'READY', 'TRAFFIC'], lines
assert columns(lines[0])[1] == len('NAME') + 3, lines"
run "get deployments -o wide" 0 "$CAPSTAN" get deployments -o WIDE
py "get -o wide" "assert lines[0].split()[4:] == ['MIN', 'MAX', 'PANIC', 'ROLLOUT', 'REASON', 'IMPLICIT'], lines"
run "get deployment web -o name" 0 "$CAPSTAN" get deployment web -o name
py "get -o name" "assert out == 'deployment.capstan.dev/web\n', out"
run "get deployments -o yaml" 0 "$CAPSTAN" get deployments -o yaml
py "get -o yaml reads back" "assert yaml.safe_load(out)['items'][0]['metadata']['name'] == 'web', out"
run "rollout status -o name" 0 "$CAPSTAN" rollout status web -o name
py "rollout status -o name" "assert out == 'deployment.capstan.dev/web\n', out"
run "get -o bogus" 2 "$CAPSTAN" get deployments -o bogus
py "get -o bogus names the formats" "assert 'json, yaml, wide or name' in err, err"
run "delete" 0 "$CAPSTAN" delete deployment web
stop main

# --- local commands: devices, dra allocate, inspect --------------------------------------------
run "devices" 0 "$CAPSTAN" devices
py "devices: one row per device, capacities in binary units" "
assert lines[0].split() == ['DRIVER', 'POOL', 'DEVICE', 'CAPACITY'], lines
assert re.search(r'memory=[0-9.]+[KMGT]iB', out), out"
run "devices -o wide" 0 "$CAPSTAN" devices -o wide
py "devices -o wide" "assert lines[0].split() == ['DRIVER', 'POOL', 'DEVICE', 'CAPACITY', 'NODE', 'ATTRIBUTES'], lines"
run "devices -o name" 0 "$CAPSTAN" devices -o name
py "devices -o name" "assert lines and all(re.fullmatch(r'device/cpu\.capstan\.dev/[^/]+/numa-\d+', l) for l in lines if not l.startswith('gpu')), lines"
run "devices -o JSON" 0 "$CAPSTAN" devices -o JSON
py "devices -o json" "assert json.loads(out)['kind'] == 'List', out"
CLAIMS=$ROOT/docs/examples/dra-claims.yaml
run "dra allocate" 0 "$CAPSTAN" dra allocate -f "$CLAIMS"
py "dra allocate: a claims table by default" "
assert lines[0].split() == ['CLAIM', 'STATE', 'DEVICES', 'REASON'], lines
assert any(l.split()[:2] == ['one-h100', 'allocated'] for l in lines[1:]), lines"
run "dra allocate -o name" 0 "$CAPSTAN" dra allocate -f "$CLAIMS" -o name
py "dra -o name" "assert 'resourceclaim/one-h100' in lines, lines"
run "dra allocate -o wide" 0 "$CAPSTAN" dra allocate -f "$CLAIMS" -o wide
py "dra -o wide" "assert 'REQUESTS' in lines[0] and 'NODE' in lines[0], lines"
run "dra allocate -o json" 0 "$CAPSTAN" dra allocate -f "$CLAIMS" -o json
py "dra -o json: a v1 List, pretty with a 2-space indent as every -o json" "
j = json.loads(out)
assert j['kind'] == 'List' and [c['kind'] for c in j['items']] == ['ResourceClaim'] * 3, j
assert lines[1] == '  \"apiVersion\": \"v1\",' and lines[4] == '    {', lines[:5]"
run "dra allocate -o yaml" 0 "$CAPSTAN" dra allocate -f "$CLAIMS" -o Yaml
py "dra -o yaml: the claims" "assert [d['kind'] for d in yaml.safe_load_all(out)] == ['ResourceClaim'] * 3, out"
run "inspect -o json" 0 "$CAPSTAN" inspect "$DIGITS" -o json
cp "$TMP/out" "$TMP/inspect.json"
run "inspect -o yaml" 0 "$CAPSTAN" inspect "$DIGITS" -o yaml
py "inspect -o yaml reads back as its JSON" "assert yaml.safe_load(out) == json.load(open('$TMP/inspect.json')), out"
run "inspect -o name" 0 "$CAPSTAN" inspect "$DIGITS" -o name
py "inspect -o name" "assert out == 'model/$DIGITS\n', out"
run "inspect" 0 "$CAPSTAN" inspect "$DIGITS"
py "inspect: weights in binary units" "assert re.search(r'^weights: +6[0-9.]+KiB \(\d+ bytes\)$', out, re.M), out"
run "inspect -o table" 2 "$CAPSTAN" inspect "$DIGITS" -o table
py "inspect -o table names the formats" "assert 'json, yaml, wide or name' in err, err"

summary
