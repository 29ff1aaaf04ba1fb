#!/usr/bin/env bash
# The shipped digits model through `capstan run`: its accuracy over the whole scikit-learn
# digits set must be at least PyTorch's accuracy for the same weights minus 0.5 points.
#
# Usage: tests/models/test_digits.sh CAPSTAN_BINARY [MODEL.onnx]
#
# MODEL defaults to models/digits.onnx. PyTorch's accuracy is computed here, by loading the
# ONNX file's weights into tools/train_digits.py's DigitsNet, not taken from a constant.
# Prints one line with both accuracies and `models-digits: N passed, M failed`.
# PYTHON overrides the interpreter (/usr/bin/python3).
set -euo pipefail

if [[ $# -lt 1 ]]; then
    echo "usage: $0 CAPSTAN_BINARY [MODEL.onnx]" >&2
    exit 2
fi
capstan=$1
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
model=${2:-$root/models/digits.onnx}
python=${PYTHON:-/usr/bin/python3}

tmp=$(mktemp -d "${TMPDIR:-/tmp}/capstan-digits.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
mkdir "$tmp/out"

# The data set as one batch, and PyTorch's accuracy on it.
"$python" - "$root/tools" "$model" "$tmp" <<'PY'
import os, sys
import numpy as np
import torch
sys.path.insert(0, sys.argv[1])
from train_digits import load_digits_images, load_onnx_weights

model_path, tmp = sys.argv[2], sys.argv[3]
x, y = load_digits_images()
np.save(os.path.join(tmp, "image.npy"), x)
np.save(os.path.join(tmp, "labels.npy"), y)
with torch.no_grad():
    probs = load_onnx_weights(model_path)(torch.from_numpy(x)).numpy()
np.save(os.path.join(tmp, "torch_probabilities.npy"), probs)
PY

rc=0
"$capstan" run "$model" -i "image=$tmp/image.npy" --out-dir "$tmp/out" >"$tmp/run.log" 2>&1 || rc=$?
if [[ $rc -ne 0 ]]; then
    echo "FAIL digits: capstan run exited $rc: $(tail -n 1 "$tmp/run.log" | cut -c1-200)"
    echo "models-digits: 0 passed, 1 failed"
    exit 1
fi

"$python" - "$tmp" <<'PY'
import os, sys
import numpy as np

tmp = sys.argv[1]
y = np.load(os.path.join(tmp, "labels.npy"))
want = np.load(os.path.join(tmp, "torch_probabilities.npy"))
torch_acc = float((want.argmax(1) == y).mean())
path = os.path.join(tmp, "out", "probabilities.npy")
if not os.path.exists(path):
    print("FAIL digits: capstan wrote no probabilities.npy")
    ok = False
else:
    got = np.load(path)
    if got.shape != want.shape:
        print(f"FAIL digits: probabilities shape {list(got.shape)}, want {list(want.shape)}")
        ok = False
    else:
        acc = float((got.argmax(1) == y).mean())
        ok = acc >= torch_acc - 0.005 - 1e-12
        max_abs = float(np.abs(got.astype(np.float64) - want).max())
        print(f"{'PASS' if ok else 'FAIL'} digits: capstan accuracy {acc:.4f}, PyTorch {torch_acc:.4f} "
              f"({len(y)} images; need >= {torch_acc - 0.005:.4f}); "
              f"probabilities max_abs diff {max_abs:.3g}")
print(f"models-digits: {int(ok)} passed, {int(not ok)} failed")
sys.exit(0 if ok else 1)
PY
