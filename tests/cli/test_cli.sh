#!/usr/bin/env bash
# test_cli.sh - the capstan binary's exit codes, messages and results, end to end.
#
# Usage: bash tests/cli/test_cli.sh path/to/capstan
# Models come from ONNX's node tests (/usr/share/libonnx-testdata) and from small graphs
# built here with /usr/bin/python3 (numpy + onnx). A node test whose operator the engine
# does not implement yet is reported as skipped, not passed. Everything is written under
# one mktemp -d directory that is removed on exit. The last line is `cli: N passed, M failed`.
set -u

CAPSTAN=$(realpath "$1")
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
PY=/usr/bin/python3
NODE=${CS_ONNX_NODE:-/usr/share/libonnx-testdata/data/node}
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
cd "$TMP" || exit 1

passed=0
failed=0
pass() { passed=$((passed + 1)); }
fail() {
    failed=$((failed + 1))
    echo "FAIL: $*"
    sed 's/^/  stderr: /' err 2>/dev/null | head -5
}

# expect WANT_RC NAME CMD...: runs CMD with stdout in ./out and stderr in ./err.
expect() {
    local want=$1 name=$2
    shift 2
    "$@" >out 2>err
    local rc=$?
    if [ "$rc" -eq "$want" ]; then pass; else fail "$name: exit $rc, want $want"; fi
}

# has FILE TEXT NAME: FILE contains TEXT (fixed string).
has() {
    if grep -qF -- "$2" "$1"; then pass; else fail "$3: '$2' not in $1: $(head -3 "$1")"; fi
}

# one_error CMD_NAME NAME: stderr is exactly one line, `capstan: CMD_NAME: ...`.
one_error() {
    if [ "$(wc -l <err)" -eq 1 ] && grep -q "^capstan: $1: " err; then pass; else
        fail "$2: want one 'capstan: $1: ...' line, got: $(cat err)"
    fi
}

# --- help, version, dispatch ---------------------------------------------------------
expect 0 "help" "$CAPSTAN" help
has out "inspect" "help lists inspect"
has out "run" "help lists run"
expect 0 "--help" "$CAPSTAN" --help
has out "usage: capstan COMMAND" "--help shows usage"
expect 0 "-h" "$CAPSTAN" -h
for cmd in inspect run bench version help; do
    expect 0 "$cmd --help" "$CAPSTAN" "$cmd" --help
    has out "usage: capstan $cmd" "$cmd --help on stdout"
    [ -s err ] && fail "$cmd --help wrote to stderr" || pass
done
expect 0 "help run" "$CAPSTAN" help run
has out "block_conv_0.npy" "run --help explains output file names"
expect 2 "help unknown" "$CAPSTAN" help nope
one_error help "help unknown"
expect 2 "no command" "$CAPSTAN"
has err "usage: capstan" "no command shows usage"

expect 0 "version" "$CAPSTAN" version
has out "capstan 0." "version number"
has out "git rev:" "version git rev"
has out "build:" "version build"
has out "compiler:" "version compiler"
expect 0 "--version" "$CAPSTAN" --version
# A light first run: `version` starts no thread at all (OpenBLAS, which would start one per
# core as it loads, is loaded at the first session). In the ASan build LeakSanitizer would
# start one at exit, and it cannot run under ptrace: it is off for this run.
expect 0 "version under strace" env ASAN_OPTIONS=detect_leaks=0 \
    strace -f -qq -e trace=clone,clone3 -o trace "$CAPSTAN" version
if grep -q clone trace; then fail "version starts threads: $(head -2 trace)"; else pass; fi
# Nor does serving add OpenBLAS's: a bench on two threads runs with one pool thread.
expect 0 "bench under strace" env ASAN_OPTIONS=detect_leaks=0 \
    strace -f -qq -e trace=clone,clone3 -o trace "$CAPSTAN" bench "$ROOT/models/digits.onnx" --threads 2 --iters 2
if [ "$(grep -c clone trace)" -le 1 ]; then pass; else fail "bench starts $(grep -c clone trace) threads"; fi
expect 2 "version extra arg" "$CAPSTAN" version extra

expect 2 "unknown command" "$CAPSTAN" bogus
has err "unknown command 'bogus'" "unknown command message"
has err "capstan help" "unknown command hint"
expect 2 "misspelt command" "$CAPSTAN" inpsect m.onnx
has err "did you mean 'inspect'?" "misspelt command suggests the nearest"
expect 2 "misspelt option" "$CAPSTAN" serve --prot 1
has err "did you mean '--port'?" "misspelt option suggests the nearest"
expect 2 "misspelt option with a value" "$CAPSTAN" serve --hots=::1
has err "did you mean '--host'?" "misspelt --opt=value suggests the nearest"
expect 2 "misspelt subcommand" "$CAPSTAN" model pusj x m.onnx
has err "did you mean 'push'?" "misspelt subcommand suggests the nearest"
expect 2 "misspelt dra subcommand" "$CAPSTAN" dra alocate -f x.yaml
has err "did you mean 'allocate'?" "misspelt dra subcommand suggests allocate"
expect 2 "misspelt kind" "$CAPSTAN" get deploymnets --server http://127.0.0.1:1
has err "did you mean 'deployments'?" "misspelt kind suggests the nearest"
expect 2 "misspelt kind of delete" "$CAPSTAN" delete deploymnet web --server http://127.0.0.1:1
has err "did you mean 'deployment'?" "misspelt kind of delete suggests the singular"
expect 2 "unlike any command" "$CAPSTAN" bogus
if grep -q "did you mean" err; then fail "no suggestion when nothing is near"; else pass; fi

# --- usage errors ----------------------------------------------------------------------
expect 2 "bad flag" "$CAPSTAN" inspect --nope m.onnx
one_error inspect "bad flag"
has err "'--nope'" "bad flag named"
expect 2 "bad short flag" "$CAPSTAN" run -z m.onnx
has err "'-z'" "bad short flag named"
expect 2 "flag without value" "$CAPSTAN" run m.onnx --out-dir
one_error run "flag without value"
expect 2 "run -o is no longer the output directory" "$CAPSTAN" run m.onnx -o res
has err "--out-dir DIR" "run -o points at --out-dir"
expect 2 "inspect without model" "$CAPSTAN" inspect
one_error inspect "inspect without model"
expect 2 "inspect two models" "$CAPSTAN" inspect a.onnx b.onnx
for cmd in run bench; do
    expect 2 "$cmd without model" "$CAPSTAN" "$cmd"
    has err "capstan: $cmd: missing MODEL.onnx" "$cmd without model message"
    expect 2 "$cmd two models" "$CAPSTAN" "$cmd" a.onnx b.onnx
    has err "capstan: $cmd: unexpected argument 'b.onnx'" "$cmd two models message"
done
expect 2 "run without --out-dir" "$CAPSTAN" run m.onnx -i x=x.npy
has err "missing --out-dir DIR" "run without --out-dir message"
expect 2 "run -i without =" "$CAPSTAN" run m.onnx -i x.npy --out-dir o
has err "NAME=FILE" "run -i without = message"
expect 2 "run bad threads" "$CAPSTAN" run m.onnx --out-dir o --threads lots
has err "--threads" "run bad threads message"
expect 2 "run too many threads" "$CAPSTAN" run m.onnx --out-dir o --threads 100000

# --- runtime errors --------------------------------------------------------------------
expect 1 "inspect missing model" "$CAPSTAN" inspect missing.onnx
one_error inspect "inspect missing model"
has err "missing.onnx" "missing model named"
expect 1 "run missing model" "$CAPSTAN" run missing.onnx --out-dir o
one_error run "run missing model"
echo "not a model" >junk.onnx
expect 1 "inspect junk" "$CAPSTAN" inspect junk.onnx
one_error inspect "inspect junk"

# --- a graph built here: symbolic dims, names with '/' and ':', weights, metadata -------
"$PY" - <<'PYEOF' || fail "python: building models"
import numpy as np, onnx
from onnx import helper, numpy_helper, TensorProto as T
x = helper.make_tensor_value_info("in/x:0", T.FLOAT, ["batch", 3])
w = numpy_helper.from_array(np.arange(6, dtype=np.float32).reshape(2, 3), "w")
g = helper.make_graph([], "passthrough", [x],
                      [x, helper.make_tensor_value_info("w", T.FLOAT, [2, 3])], [w])
m = helper.make_model(g, producer_name="capstan-test", opset_imports=[helper.make_opsetid("", 13)])
m.metadata_props.add(key="author", value="cli test")
onnx.save(m, "pass.onnx")
x = np.random.default_rng(1).random((4, 3), dtype=np.float32)
np.save("x.npy", x)
np.save("x_i64.npy", x.astype(np.int64))
np.save("x_rank3.npy", x.reshape(4, 3, 1))
np.save("x_shape.npy", np.zeros((4, 5), np.float32))
np.save("x_fortran.npy", np.asfortranarray(np.zeros((4, 3), np.float32)))
np.save("x_be.npy", x.astype(">f4"))
np.save("x_c64.npy", x.astype(np.complex64))
with open("x_v2.npy", "wb") as f:
    np.lib.format.write_array(f, x, version=(2, 0))
open("x_trunc.npy", "wb").write(open("x.npy", "rb").read()[:-5])
PYEOF

expect 0 "inspect text" "$CAPSTAN" inspect pass.onnx
has out "in/x:0" "inspect input name"
has out "[batch,3]" "inspect symbolic shape"
has out "capstan-test" "inspect producer"
has out "ai.onnx 13" "inspect opset"
has out "ir version:" "inspect ir version"
has out "24 bytes" "inspect weight size"
has out "author = cli test" "inspect metadata"

expect 0 "inspect --json" "$CAPSTAN" inspect --json pass.onnx
if "$PY" - <<'PYEOF'; then pass; else fail "inspect --json content"; fi
import json
j = json.load(open("out"))
assert j["inputs"] == [{"name": "in/x:0", "dtype": "float32", "shape": ["batch", 3]}], j["inputs"]
assert j["outputs"][1] == {"name": "w", "dtype": "float32", "shape": [2, 3]}, j["outputs"]
assert j["opsets"] == {"ai.onnx": 13} and j["producer"] == "capstan-test"
assert j["weight_bytes"] == 24 and j["nodes"] == 0 and j["operators"] == {}
assert j["metadata"] == {"author": "cli test"} and isinstance(j["ir_version"], int)
PYEOF

# --device: a bad name is a usage error; a device this machine cannot run on is a one-line
# reason naming it (no driver, or no backend in this build), and nothing is written.
expect 2 "run bad device" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir res --device gpu0
has err "cpu, cuda, cuda:N" "run bad device names the forms"
expect 2 "run bad precision" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir res --precision fp8
has err "fp32, tf32, fp16, bf16" "run bad precision names the choices"
if ! ls /dev/nvidia0 >/dev/null 2>&1; then
    expect 1 "run on a missing GPU" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir nogpu --device cuda:0
    one_error run "run on a missing GPU"
    has err "cuda:0" "run on a missing GPU names the device"
    [ ! -e nogpu ] && pass || fail "run on a missing GPU wrote its output folder"
fi
expect 0 "run passthrough" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir res --threads 1
has out "res/in_x_0.npy" "run names sanitised output"
if "$PY" -c '
import numpy as np
x, y, w = np.load("x.npy"), np.load("res/in_x_0.npy"), np.load("res/w.npy")
assert y.dtype == np.float32 and (x == y).all()
assert (w == np.arange(6, dtype=np.float32).reshape(2, 3)).all()
'; then pass; else fail "run passthrough results"; fi
expect 0 "run --out-dir makes parents" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir deep/a/b
if [ -f deep/a/b/in_x_0.npy ] && [ -f deep/a/b/w.npy ]; then pass; else fail "run --out-dir parents"; fi
expect 0 "run .npy version 2.0" "$CAPSTAN" run pass.onnx -i in/x:0=x_v2.npy --out-dir res

expect 1 "run wrong input name" "$CAPSTAN" run pass.onnx -i nope=x.npy --out-dir res
one_error run "run wrong input name"
has err "'nope'" "wrong input name is named"
expect 1 "run missing input" "$CAPSTAN" run pass.onnx --out-dir res
has err "in/x:0" "missing input is named"
expect 1 "run input twice" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy -i in/x:0=x.npy --out-dir res
has err "in/x:0" "repeated input is named"
expect 1 "run wrong type" "$CAPSTAN" run pass.onnx -i in/x:0=x_i64.npy --out-dir res
has err "in/x:0" "wrong type names the input"
has err "int64" "wrong type says what it got"
expect 1 "run wrong shape" "$CAPSTAN" run pass.onnx -i in/x:0=x_shape.npy --out-dir res
has err "in/x:0" "wrong shape names the input"
expect 1 "run wrong rank" "$CAPSTAN" run pass.onnx -i in/x:0=x_rank3.npy --out-dir res
has err "in/x:0" "wrong rank names the input"
for bad in fortran:Fortran be:big-endian c64:"'<c8'" trunc:truncated; do
    f=${bad%%:*} msg=${bad#*:}
    expect 1 "run .npy $f" "$CAPSTAN" run pass.onnx -i in/x:0=x_$f.npy --out-dir res
    one_error run "run .npy $f"
    has err "$msg" "run .npy $f message"
    has err "x_$f.npy" "run .npy $f names the file"
done
expect 1 "run missing .npy" "$CAPSTAN" run pass.onnx -i in/x:0=none.npy --out-dir res
has err "none.npy" "missing .npy named"
touch blocker
expect 1 "run unwritable output dir" "$CAPSTAN" run pass.onnx -i in/x:0=x.npy --out-dir blocker/sub
one_error run "run unwritable output dir"

# --- ONNX node tests: inspect, run, compare with the expected outputs ------------------
# Converts a node test's inputs to .npy and prints the matching -i arguments.
prepare() {
    "$PY" - "$1" <<'PYEOF'
import sys, onnx, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
m = onnx.load(d + "/model.onnx")
inits = {i.name for i in m.graph.initializer}
ins = [i.name for i in m.graph.input if i.name not in inits]
for k, name in enumerate(ins):
    t = onnx.TensorProto()
    t.ParseFromString(open(f"{d}/test_data_set_0/input_{k}.pb", "rb").read())
    np.save(f"in_{k}.npy", numpy_helper.to_array(t))
    print(f"-i {name}=in_{k}.npy", end=" ")
PYEOF
}

# Compares every expected output with the written .npy (same sanitising as capstan).
compare() {
    "$PY" - "$1" <<'PYEOF'
import sys, re, onnx, numpy as np
from onnx import numpy_helper
d = sys.argv[1]
m = onnx.load(d + "/model.onnx")
for k, o in enumerate(m.graph.output):
    t = onnx.TensorProto()
    t.ParseFromString(open(f"{d}/test_data_set_0/output_{k}.pb", "rb").read())
    want = numpy_helper.to_array(t)
    name = re.sub(r"[^A-Za-z0-9._-]", "_", o.name)
    name = "_" + name[1:] if name.startswith(".") else name
    got = np.load(f"res/{name}.npy")
    assert got.shape == want.shape, (o.name, got.shape, want.shape)
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-7, err_msg=o.name)
PYEOF
}

for t in test_abs test_add test_gemm_default_matrix_bias test_relu test_matmul_2d; do
    d=$NODE/$t
    [ -d "$d" ] || { fail "$t: no test data at $d"; continue; }
    "$CAPSTAN" inspect --json "$d/model.onnx" >out 2>err
    if grep -q "unsupported operator" err; then
        echo "skip: $t: $(cat err)"
        continue
    fi
    if "$PY" -c 'import json; j = json.load(open("out")); assert j["inputs"] and j["outputs"]'; then
        pass
    else fail "$t: inspect --json"; fi
    args=$(prepare "$d") || { fail "$t: preparing inputs"; continue; }
    rm -rf res
    # shellcheck disable=SC2086 # args is a list of -i options
    expect 0 "$t: run" "$CAPSTAN" run "$d/model.onnx" $args --out-dir res
    if compare "$d" 2>err; then pass; else fail "$t: outputs differ from output_*.pb"; fi
done

# --- bench -------------------------------------------------------------------------------
# bench_json FILE PYTHON_CHECK NAME: FILE holds bench --json's object, as `j`, passing the check.
bench_json() {
    if "$PY" - "$1" "$2" 2>err <<'PYEOF'; then pass; else fail "$3"; fi
import json, sys
j = json.load(open(sys.argv[1]))
for k in ("load_ms", "first_run_ms", "p50_ms", "p90_ms", "min_ms", "mean_ms", "throughput_per_s",
          "peak_rss_bytes", "model", "batch", "threads"):
    assert k in j, f"missing {k}: {j}"
assert j["load_ms"] > 0 and j["first_run_ms"] > 0, j
assert 0 < j["min_ms"] <= j["p50_ms"] <= j["p90_ms"], j
assert j["min_ms"] <= j["mean_ms"], j
assert j["throughput_per_s"] > 0 and j["peak_rss_bytes"] > 1 << 20, j
exec(sys.argv[2])
PYEOF
}

DIGITS=$ROOT/models/digits.onnx
expect 0 "bench digits" "$CAPSTAN" bench "$DIGITS" --iters 5 --warmup 1
has out "input image: float32 [1,1,8,8]" "bench: --batch defaults to 1"
has out "p50" "bench text shows p50"
expect 0 "bench digits --json" "$CAPSTAN" bench "$DIGITS" --json --batch 8 --threads 1 --iters 20
bench_json out 'assert j["batch"] == 8 and j["threads"] == 1
# batch 8 of 20 runs: throughput is 8 samples per mean run
assert abs(j["throughput_per_s"] * j["mean_ms"] / 1000 - 8) < 0.01, j' "bench digits --json"
expect 0 "bench --dim" "$CAPSTAN" bench "$DIGITS" --dim batch=3 --iters 2
has out "input image: float32 [3,1,8,8]" "bench: --dim sets a symbolic dimension"
expect 0 "bench --shape" "$CAPSTAN" bench "$DIGITS" --shape image=2,1,8,8 --iters 2
has out "input image: float32 [2,1,8,8]" "bench: --shape sets the whole shape"
# The profile's steps add up to the run: never more than the mean latency (each step is
# timed inside its run), at least half of the fastest run (the rest is binding inputs and
# the timer; the mean would also hold any preemption between steps on a busy machine).
# The digits' two Relus fuse into the Gemms before them and have no step of their own.
expect 0 "bench --profile" "$CAPSTAN" bench "$DIGITS" --json --profile --threads 1 --iters 30
bench_json out 'p = j["profile"]
ops = {r["op"]: r for r in p["by_op"]}
assert set(ops) == {"Mul", "Flatten", "Gemm", "Softmax"}, ops
assert ops["Gemm"]["nodes"] == 3 and len(p["by_node"]) == 6, p
assert all(r["device"] == "cpu" for r in p["by_node"]), p
assert abs(sum(r["ms"] for r in p["by_op"]) - p["steps_ms"]) < 1e-6 * len(ops), p
assert abs(sum(r["ms"] for r in p["by_node"]) - p["steps_ms"]) < 1e-6 * 6, p
assert abs(sum(r["pct"] for r in p["by_op"]) - 100) < 0.01, p
assert 0.5 * j["min_ms"] <= p["steps_ms"] <= j["mean_ms"], (p["steps_ms"], j["min_ms"], j["mean_ms"])' \
    "bench --profile rows sum to the run"
expect 0 "bench --profile text" "$CAPSTAN" bench "$DIGITS" --profile --iters 3
has out "/body/body.1/Gemm" "bench --profile lists nodes"
# Columns sized to their content: each node row's device starts where the header's does.
if "$PY" - out <<'PYEOF'; then pass; else fail "bench --profile: node table columns misaligned"; fi
import sys
lines = open(sys.argv[1]).read().split("\n")
h = next(i for i, l in enumerate(lines) if l.startswith("node (slowest first)"))
col = lines[h].index("device")
rows = [l for l in lines[h + 1:] if l.strip()]
assert len(rows) == 6 and all(r[col:col + 4] == "cpu " and r[col - 1] == " " for r in rows), rows
PYEOF
CONV=$NODE/../pytorch-converted/test_Conv2d/model.onnx
expect 0 "bench conv --profile" "$CAPSTAN" bench "$CONV" --json --profile --iters 10
bench_json out 'assert [r["op"] for r in j["profile"]["by_op"]] == ["Conv"], j' "bench conv"
# Gather's indices must be in range: the default integers [0, 100) are not, --fill fixes it.
GATHER=$NODE/test_gather_0/model.onnx
expect 1 "bench gather default fill" "$CAPSTAN" bench "$GATHER" --iters 2
has err "out of range" "bench: a runtime error is the engine's"
expect 0 "bench gather --fill" "$CAPSTAN" bench "$GATHER" --iters 2 --fill indices=int:0:4 --json
bench_json out 'pass' "bench gather --fill"
for bad in "--batch 0" "--batch x" "--threads 999" "--iters 0" "--warmup -1" "--shape image" \
    "--shape image=1,x" "--dim batch" "--dim batch=-2" "--fill image=int:5:1" \
    "--fill image=str:0:1" "--fill image=int:0" "--nope" "--shape nope=1,1,8,8" \
    "--fill nope=int:0:1" "--dim nope=2"; do
    # shellcheck disable=SC2086 # bad is a list of arguments
    expect 2 "bench $bad" "$CAPSTAN" bench "$DIGITS" $bad
    one_error bench "bench $bad"
done
expect 2 "bench bad fill" "$CAPSTAN" bench "$DIGITS" --fill image=int:5:1
has err "got 'image=int:5:1'" "bench: the message shows the whole argument"
expect 2 "bench no model" "$CAPSTAN" bench
one_error bench "bench no model"
expect 2 "bench two models" "$CAPSTAN" bench "$DIGITS" "$DIGITS"
expect 1 "bench missing file" "$CAPSTAN" bench nope.onnx
one_error bench "bench missing file"
# Devices and precisions: a bad name is a usage error naming the forms allowed; one this
# build has no backend for fails at run time naming what it runs on.
expect 2 "bench --device gpu" "$CAPSTAN" bench "$DIGITS" --device gpu
has err "not one of cpu, cuda, cuda:N" "bench: --device names the forms allowed"
expect 2 "bench --precision int4" "$CAPSTAN" bench "$DIGITS" --precision int4
has err "not one of fp32, tf32, fp16, bf16" "bench: --precision names the values allowed"
CS_LIBCUDA=$TMP/none/libcuda.so.1 expect 1 "bench --device cuda:0" "$CAPSTAN" bench "$DIGITS" \
    --device cuda:0 --iters 2
has err "device cuda:0 is unavailable: $TMP/none/libcuda.so.1 could not be loaded" \
    "bench: a device without a driver is refused, naming the library"
one_error bench "bench --device cuda:0"
if ! /sbin/ldconfig -p 2>/dev/null | grep -q 'libcuda\.so\.1 '; then
    expect 1 "bench --device cuda:0, no driver" "$CAPSTAN" bench "$DIGITS" --device cuda:0 --iters 2
    has err "libcuda.so.1 could not be loaded (no NVIDIA driver on this machine)" \
        "bench: no driver installed is said in words"
    one_error bench "bench --device cuda:0, no driver"
fi
expect 1 "bench --device cuda:16" "$CAPSTAN" bench "$DIGITS" --device cuda:16 --iters 2
has err "this build has no backend for it" "bench: an ordinal beyond the backend's is refused"
expect 1 "bench --precision fp16" "$CAPSTAN" bench "$DIGITS" --precision fp16 --iters 2
has err "precision fp16 is not supported on cpu" "bench: the cpu computes in fp32 only"
expect 0 "bench --device cpu" "$CAPSTAN" bench "$DIGITS" --device cpu --precision fp32 --iters 2

echo "cli: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
