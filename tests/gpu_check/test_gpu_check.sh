#!/usr/bin/env bash
# The GPU run's plumbing, on a machine without a GPU (label cli, a few seconds):
# tools/gpu-check parses and its --dry-run lists every stage and exits 0 without touching
# OUTDIR; tools/gpu_check.py compares a `capstan devices -o yaml` document with nvidia-smi's
# CSV (a match, then a memory and a count mismatch) and writes the summary table from JSON
# lines; bench/torch_gpu.py --device cpu times the MLP at batch 1 and prints one well-formed
# JSON line (skipped, in one line, when /usr/bin/python3 cannot import torch).
# usage: tests/gpu_check/test_gpu_check.sh
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
python=${PYTHON:-/usr/bin/python3}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/capstan-gpu-check.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
fail() { echo "FAIL: $*"; exit 1; }

bash -n "$root/tools/gpu-check" || fail "bash -n tools/gpu-check"
"$root/tools/gpu-check" --dry-run "$tmp/out" >"$tmp/dry.txt" || fail "--dry-run exited $?"
for s in system build export conform_fp32 conform_fp16 models_fp32 models_fp16 bench torch devices summary; do
    grep -q "^stage $s " "$tmp/dry.txt" || fail "--dry-run does not list stage $s: $(cat "$tmp/dry.txt")"
done
grep -q -- "--device cuda:0\|conform " "$tmp/dry.txt" || fail "--dry-run names no conformance run"
[[ -z $(ls -A "$tmp/out") ]] || fail "--dry-run wrote into OUTDIR: $(ls "$tmp/out")"
"$root/tools/gpu-check" >/dev/null 2>&1 && fail "no OUTDIR should be a usage error"
echo "ok gpu-check: bash -n, --dry-run lists $(grep -c '^stage' "$tmp/dry.txt") stages"

# The devices comparison: a ResourceSlice as capstan writes it against nvidia-smi's CSV.
cat >"$tmp/devices.yaml" <<'EOF'
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
spec:
  driver: cpu.capstan.dev
  devices:
  - name: "numa-0"
    capacity:
      memory:
        value: "7038696Ki"
---
apiVersion: resource.k8s.io/v1
kind: ResourceSlice
spec:
  driver: gpu.nvidia.com
  devices:
  - name: "gpu-0"
    attributes:
      "uuid":
        string: "GPU-6f1b2c3d-0000-1111-2222-333344445555"
      "productName":
        string: "NVIDIA H200"
    capacity:
      memory:
        value: "143771Mi"
EOF
echo "NVIDIA H200, 143771, GPU-6f1b2c3d-0000-1111-2222-333344445555" >"$tmp/smi.csv"
if "$python" -c 'import yaml' 2>/dev/null; then
    "$python" "$root/tools/gpu_check.py" devices "$tmp/devices.yaml" "$tmp/smi.csv" >"$tmp/cmp.txt" ||
        fail "devices: a matching GPU reported as a mismatch: $(cat "$tmp/cmp.txt")"
    echo "NVIDIA H200, 143000, GPU-6f1b2c3d-0000-1111-2222-333344445555" >"$tmp/smi2.csv"
    if "$python" "$root/tools/gpu_check.py" devices "$tmp/devices.yaml" "$tmp/smi2.csv" >"$tmp/cmp2.txt"; then
        fail "devices: a memory mismatch passed"
    fi
    grep -q "MISMATCH memory_mib" "$tmp/cmp2.txt" || fail "devices: no memory mismatch line: $(cat "$tmp/cmp2.txt")"
    cat "$tmp/smi.csv" "$tmp/smi.csv" >"$tmp/smi3.csv"
    if "$python" "$root/tools/gpu_check.py" devices "$tmp/devices.yaml" "$tmp/smi3.csv" >/dev/null; then
        fail "devices: capstan's 1 GPU against nvidia-smi's 2 passed"
    fi
    echo "ok devices comparison: match, memory mismatch, count mismatch"
else
    echo "skip devices comparison: $python cannot import yaml"
fi

# The summary: capstan's and torch's JSON lines joined into one row with the ratio.
mkdir -p "$tmp/sum"
echo '{"engine":"capstan","name":"mlp","precision":"fp16","batch":1,"p50_ms":0.05}' >"$tmp/sum/bench.jsonl"
{
    echo '=== torch: a stage line the summary must skip'
    echo '{"engine":"torch","name":"mlp","batch":1,"precision":"fp16","mode":"eager","p50_ms":0.2}'
    echo '{"engine":"torch","name":"mlp","batch":1,"precision":"fp16","mode":"graphs","p50_ms":0.1}'
} >"$tmp/sum/torch.jsonl"
printf 'bench\tPASS\t3\tcapstan bench\ntorch\tFAIL\t9\texit 1\n' >"$tmp/stages.tsv"
"$python" "$root/tools/gpu_check.py" summary "$tmp/sum" "$tmp/stages.tsv" >/dev/null || fail "summary exited $?"
grep -q '^| mlp | 1 | fp16 | 0.05 | 0.2 | 0.1 | 0.50 |$' "$tmp/sum/summary.md" ||
    fail "summary row: $(cat "$tmp/sum/summary.md")"
grep -q '^| torch | FAIL | 9 | exit 1 |$' "$tmp/sum/summary.md" || fail "summary stage row missing"
echo "ok summary table"

# The PyTorch peer on the CPU.
if ! "$python" -c 'import torch, numpy' 2>/dev/null; then
    echo "skip torch_gpu.py: $python cannot import torch"
    exit 0
fi
"$python" "$root/bench/torch_gpu.py" --device cpu --models mlp --batches 1 --iters 2 --warmup 1 \
    >"$tmp/torch.jsonl" || fail "torch_gpu.py exited $?: $(cat "$tmp/torch.jsonl")"
"$python" - "$tmp/torch.jsonl" <<'EOF' || fail "torch_gpu.py output: $(cat "$tmp/torch.jsonl")"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
assert len(lines) == 1, f"{len(lines)} lines; want 1 (eager only: no CUDA graphs on the CPU)"
r = lines[0]
want = {"engine": "torch", "name": "mlp", "batch": 1, "mode": "eager", "precision": "fp32",
        "device": "cpu", "iters": 2}
for k, v in want.items():
    assert r.get(k) == v, f"{k}: {r.get(k)!r}, want {v!r}"
assert "error" not in r, r["error"]
for k in ("p50_ms", "min_ms", "mean_ms"):
    assert isinstance(r[k], float) and r[k] > 0, f"{k}: {r[k]!r}"
assert r["min_ms"] <= r["p50_ms"]
EOF
if "$python" "$root/bench/torch_gpu.py" --device cpu --models nosuch --iters 1 2>"$tmp/err.txt"; then
    fail "torch_gpu.py accepted an unknown model"
fi
grep -q "unknown model 'nosuch'" "$tmp/err.txt" || fail "torch_gpu.py's error: $(cat "$tmp/err.txt")"
echo "ok torch_gpu.py --device cpu: mlp batch 1, one JSON line"
