#!/usr/bin/python3
"""Train capstan's tiny shipped example model: a digit classifier on scikit-learn's digits set.

The model takes `image` [batch, 1, 8, 8] float32 holding the data set's raw 0..16 pixel
values (it normalises internally) and returns `probabilities` [batch, 10] float32 (Softmax).
It is a small MLP (64-128-64-10, ReLU), trained deterministically (fixed seeds, a fixed
train/test split), and exported with opset 17 and a dynamic batch axis named `batch`.

Writes:
  OUTDIR/digits.onnx         the model (a few tens of KB)
  OUTDIR/digits.sample.json  one test image as a KServe v2 JSON infer request body, plus
                             its label: {"request": {"inputs": [...]}, "label": N}

Prints the test accuracy (and the accuracy over the whole data set) in PyTorch.

Usage: /usr/bin/python3 tools/train_digits.py [--out models] [--epochs 60] [--seed 0]

Also importable (tests/models/test_digits.sh uses both): load_digits_images() returns
(images [N,1,8,8] float32, labels [N] int64) in the order the data set ships them;
load_onnx_weights(PATH) returns a DigitsNet holding the weights of an exported model.
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
from torch import nn

SAMPLE_INDEX = 0  # which test-split image goes into digits.sample.json


def load_digits_images():
    """The whole digits set: images [N, 1, 8, 8] float32 (values 0..16) and labels [N] int64."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = d.images.astype(np.float32).reshape(-1, 1, 8, 8)
    y = d.target.astype(np.int64)
    return x, y


class DigitsNet(nn.Module):
    """Scale 0..16 pixels to 0..1, flatten, a small MLP, softmax."""

    def __init__(self):
        super().__init__()
        self.body = nn.Sequential(
            nn.Flatten(),
            nn.Linear(64, 128),
            nn.ReLU(),
            nn.Linear(128, 64),
            nn.ReLU(),
            nn.Linear(64, 10),
        )

    def logits(self, image):
        return self.body(image * (1.0 / 16.0))

    def forward(self, image):
        return torch.softmax(self.logits(image), dim=1)


def load_onnx_weights(path):
    """A DigitsNet in eval mode holding the weights of an exported digits.onnx (its
    initializers carry the state-dict names), so PyTorch can score the shipped model."""
    import onnx
    from onnx import numpy_helper

    model = DigitsNet()
    inits = {t.name: torch.from_numpy(numpy_helper.to_array(t).copy())
             for t in onnx.load(path).graph.initializer}
    model.load_state_dict(inits, strict=True)
    return model.eval()


def split(n, seed):
    """A fixed 80/20 train/test split of indices 0..n-1."""
    perm = np.random.default_rng(seed).permutation(n)
    cut = int(n * 0.8)
    return np.sort(perm[:cut]), np.sort(perm[cut:])


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", default="models", help="output directory (default: models)")
    ap.add_argument("--epochs", type=int, default=60)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    torch.manual_seed(args.seed)
    torch.set_num_threads(1)
    x, y = load_digits_images()
    tr, te = split(len(y), args.seed)
    xtr, ytr = torch.from_numpy(x[tr]), torch.from_numpy(y[tr])
    xte, yte = torch.from_numpy(x[te]), torch.from_numpy(y[te])

    model = DigitsNet()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, weight_decay=1e-4)
    loss_fn = nn.CrossEntropyLoss()
    gen = torch.Generator().manual_seed(args.seed)
    for _ in range(args.epochs):
        model.train()
        order = torch.randperm(len(ytr), generator=gen)
        for i in range(0, len(order), 64):
            idx = order[i:i + 64]
            opt.zero_grad()
            loss = loss_fn(model.logits(xtr[idx]), ytr[idx])
            loss.backward()
            opt.step()

    model.eval()
    with torch.no_grad():
        test_acc = (model(xte).argmax(1) == yte).float().mean().item()
        all_acc = (model(torch.from_numpy(x)).argmax(1) == torch.from_numpy(y)).float().mean().item()
    print(f"digits: test accuracy {test_acc:.4f} ({len(te)} images), "
          f"whole set {all_acc:.4f} ({len(y)} images)")
    if test_acc <= 0.9:
        print("digits: test accuracy too low", file=sys.stderr)
        return 1

    os.makedirs(args.out, exist_ok=True)
    onnx_path = os.path.join(args.out, "digits.onnx")
    torch.onnx.export(
        model, torch.from_numpy(x[:1]), onnx_path,
        input_names=["image"], output_names=["probabilities"],
        dynamic_axes={"image": {0: "batch"}, "probabilities": {0: "batch"}},
        opset_version=17, do_constant_folding=True,
    )
    print(f"digits: wrote {onnx_path} ({os.path.getsize(onnx_path)} bytes)")

    k = int(te[SAMPLE_INDEX])
    sample = {
        "request": {"inputs": [{
            "name": "image", "shape": [1, 1, 8, 8], "datatype": "FP32",
            "data": [float(v) for v in x[k].reshape(-1)],
        }]},
        "label": int(y[k]),
        "dataset_index": k,
    }
    sample_path = os.path.join(args.out, "digits.sample.json")
    with open(sample_path, "w") as f:
        json.dump(sample, f)
        f.write("\n")
    print(f"digits: wrote {sample_path} (data set image {k}, label {y[k]})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
