#!/usr/bin/env bash
# Real-model tests: capstan's outputs against PyTorch's on exported models.
#
# Usage: tests/models/test_models.sh BUILD_DIR CAPSTAN_BINARY [MODEL...]
#
# Exports the models of tools/export_models.py (all of them, or the MODELs named) into
# BUILD_DIR/models-cache, re-exporting a model only when its cache entry is missing or
# older than tools/export_models.py. Then for each model and batch size (b1, b8) it runs
#   capstan run MODEL.onnx -i NAME=input_NAME.npy ... --out-dir DIR
# and compares every DIR/OUTPUT.npy with expected_OUTPUT.npy using
# np.allclose(got, want, rtol=1e-4, atol=1e-5), printing one line per case with the
# maximum absolute and relative errors and tol_used, the largest |got-want| /
# (atol + rtol*|want|) (under 1 passes), and last `models: N passed, M failed`.
# Exits non-zero when a case fails. PYTHON overrides the interpreter (/usr/bin/python3),
# CASE_TIMEOUT the seconds one `capstan run` may take (300).
set -euo pipefail

if [[ $# -lt 2 ]]; then
    echo "usage: $0 BUILD_DIR CAPSTAN_BINARY [MODEL...]" >&2
    exit 2
fi
build_dir=$1
capstan=$2
shift 2

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
exporter=$root/tools/export_models.py
python=${PYTHON:-/usr/bin/python3}
cache=$build_dir/models-cache
case_timeout=${CASE_TIMEOUT:-300} # seconds for one `capstan run`

if [[ ! -x $capstan ]]; then
    echo "models: capstan binary not found: $capstan" >&2
    exit 2
fi

if [[ $# -gt 0 ]]; then
    models=("$@")
else
    mapfile -t models < <("$python" "$exporter" --list)
fi
if [[ ${#models[@]} -eq 0 ]]; then
    echo "FAIL list: no models (is $python able to run $exporter --list?)"
    echo "models: 0 passed, 1 failed"
    exit 1
fi

tmp=$(mktemp -d "${TMPDIR:-/tmp}/capstan-models.XXXXXX")
trap 'rm -rf "$tmp"' EXIT

# Export what is missing or stale.
mkdir -p "$cache"
stale=()
for m in "${models[@]}"; do
    stamp=$cache/$m/.done
    if [[ ! -f $stamp || $exporter -nt $stamp ]]; then
        stale+=(--only "$m")
    fi
done
if [[ ${#stale[@]} -gt 0 ]]; then
    echo "models: exporting into $cache: ${stale[*]}"
    if ! "$python" "$exporter" "$cache" "${stale[@]}" 2>"$tmp/export.err"; then
        cat "$tmp/export.err" >&2
        echo "FAIL export: tools/export_models.py failed: $(tail -n 1 "$tmp/export.err" | cut -c1-200)"
        echo "models: 0 passed, 1 failed"
        exit 1
    fi
fi

passed=0
failed=0
for m in "${models[@]}"; do
    for case_dir in "$cache/$m"/b*/; do
        case_dir=${case_dir%/}
        name=$m/$(basename "$case_dir")
        args=()
        for f in "$case_dir"/input_*.npy; do
            input=$(basename "$f" .npy)
            args+=(-i "${input#input_}=$f")
        done
        out=$tmp/$m-$(basename "$case_dir")
        mkdir -p "$out"
        start=$(date +%s.%N)
        rc=0
        timeout "$case_timeout" "$capstan" run "$cache/$m/model.onnx" "${args[@]}" --out-dir "$out" \
            >"$out.log" 2>&1 || rc=$?
        if [[ $rc -ne 0 ]]; then
            msg=$(tail -n 1 "$out.log" | cut -c1-200)
            [[ $rc -eq 124 ]] && msg="timed out after ${case_timeout}s"
            echo "FAIL $name: capstan run exited $rc: $msg"
            failed=$((failed + 1))
            continue
        fi
        secs=$(awk -v s="$start" -v e="$(date +%s.%N)" 'BEGIN { printf "%.2f", e - s }')
        # One line per case: PASS/FAIL, then per output its errors.
        if line=$("$python" - "$case_dir" "$out" <<'EOF'
import glob, os, sys
import numpy as np

case_dir, out = sys.argv[1], sys.argv[2]
ok = True
parts = []
for exp_path in sorted(glob.glob(os.path.join(case_dir, "expected_*.npy"))):
    oname = os.path.basename(exp_path)[len("expected_"):-len(".npy")]
    want = np.load(exp_path)
    got_path = os.path.join(out, oname + ".npy")
    if not os.path.exists(got_path):
        parts.append(f"{oname}: no output file")
        ok = False
        continue
    got = np.load(got_path)
    if got.shape != want.shape or got.dtype != want.dtype:
        parts.append(f"{oname}: got {got.dtype}{list(got.shape)}, want {want.dtype}{list(want.shape)}")
        ok = False
        continue
    g, w = got.astype(np.float64), want.astype(np.float64)
    diff = np.abs(g - w)
    max_abs = float(diff.max()) if diff.size else 0.0
    nz = np.abs(w) > 0
    max_rel = float((diff[nz] / np.abs(w[nz])).max()) if nz.any() else 0.0
    # How much of the allclose budget the worst element uses (< 1 passes).
    used = float((diff / (1e-5 + 1e-4 * np.abs(w))).max()) if diff.size else 0.0
    close = bool(np.allclose(got, want, rtol=1e-4, atol=1e-5))
    bad = "" if close else f" ({int((~np.isclose(got, want, rtol=1e-4, atol=1e-5)).sum())} of {want.size} off)"
    parts.append(f"{oname}: max_abs {max_abs:.3g} max_rel {max_rel:.3g} tol_used {used:.2f}{bad}")
    ok = ok and close
print(("PASS " if ok else "FAIL ") + "; ".join(parts))
sys.exit(0 if ok else 1)
EOF
        ); then
            echo "${line%% *} $name (${secs}s): ${line#* }"
            passed=$((passed + 1))
        else
            if [[ -z $line ]]; then
                line="FAIL comparison script failed"
            fi
            echo "${line%% *} $name (${secs}s): ${line#* }"
            failed=$((failed + 1))
        fi
    done
done

echo "models: $passed passed, $failed failed"
[[ $failed -eq 0 ]]
