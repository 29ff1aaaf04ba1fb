#!/usr/bin/python3
"""Export capstan's real-model test fixtures: ONNX models with seeded random weights, plus
seeded random inputs and PyTorch's outputs for them.

Usage:
  /usr/bin/python3 tools/export_models.py OUTDIR [--only NAME [--only NAME ...]]
  /usr/bin/python3 tools/export_models.py --list

Models (all opset 17, eval mode, dynamic batch dimension named `batch`):
  resnet18      torchvision resnet18 (weights=None), input `input` [batch,3,224,224] -> `output` [batch,1000]
  mobilenet_v2  torchvision mobilenet_v2 (weights=None), same input and output
  bert          a BERT-style encoder built from torch.nn primitives: token + position embeddings,
                4 layers, hidden 256, 4 heads, FFN 1024, GELU (erf), LayerNorm, hand-written
                attention with an additive mask; inputs `input_ids`, `attention_mask` int64
                [batch,128] -> `last_hidden_state` [batch,128,256]
  mlp           64-512-512-10 with ReLU, input `input` [batch,64] -> `output` [batch,10]

For each model it writes
  OUTDIR/NAME/model.onnx
  OUTDIR/NAME/ops.txt                      the graph's operator histogram
  OUTDIR/NAME/bB/input_INPUTNAME.npy       seeded random inputs, for B in 1 and 8
  OUTDIR/NAME/bB/expected_OUTPUTNAME.npy   PyTorch's outputs for them
  OUTDIR/NAME/.done                        stamp written last (tests/models/test_models.sh
                                           uses it to decide whether to re-export)
and prints the operator histogram and the time taken. Each model is written to a temporary
directory first and moved into place, so an interrupted export leaves no half model.
Deterministic: the same script and library versions give the same files. No network.
"""
import argparse
import collections
import os
import shutil
import sys
import tempfile
import time

import numpy as np
import torch
from torch import nn

OPSET = 17
BATCHES = (1, 8)
SEED = 1234

# --- the BERT-style encoder ---------------------------------------------------------------

BERT_VOCAB = 8192
BERT_SEQ = 128
BERT_HIDDEN = 256
BERT_HEADS = 4
BERT_FFN = 1024
BERT_LAYERS = 4


class SelfAttention(nn.Module):
    """Multi-head self-attention written out: Q/K/V projections, scaled dot product, additive mask."""

    def __init__(self, hidden, heads):
        super().__init__()
        self.heads = heads
        self.head_dim = hidden // heads
        self.q = nn.Linear(hidden, hidden)
        self.k = nn.Linear(hidden, hidden)
        self.v = nn.Linear(hidden, hidden)
        self.out = nn.Linear(hidden, hidden)

    def split_heads(self, x):
        b, s, _ = x.shape
        return x.reshape(b, s, self.heads, self.head_dim).transpose(1, 2)  # [b, h, s, d]

    def forward(self, x, mask_bias):
        b, s, hidden = x.shape
        q = self.split_heads(self.q(x))
        k = self.split_heads(self.k(x))
        v = self.split_heads(self.v(x))
        scores = torch.matmul(q, k.transpose(-1, -2)) / (self.head_dim ** 0.5)
        probs = torch.softmax(scores + mask_bias, dim=-1)
        ctx = torch.matmul(probs, v).transpose(1, 2).reshape(b, s, hidden)
        return self.out(ctx)


class EncoderLayer(nn.Module):
    """Post-LayerNorm transformer block, as in BERT."""

    def __init__(self, hidden, heads, ffn):
        super().__init__()
        self.attn = SelfAttention(hidden, heads)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn = nn.Sequential(nn.Linear(hidden, ffn), nn.GELU(), nn.Linear(ffn, hidden))
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)

    def forward(self, x, mask_bias):
        x = self.ln1(x + self.attn(x, mask_bias))
        return self.ln2(x + self.ffn(x))


class BertEncoder(nn.Module):
    def __init__(self):
        super().__init__()
        self.tok = nn.Embedding(BERT_VOCAB, BERT_HIDDEN)
        self.pos = nn.Embedding(BERT_SEQ, BERT_HIDDEN)
        self.ln = nn.LayerNorm(BERT_HIDDEN, eps=1e-12)
        self.layers = nn.ModuleList(
            EncoderLayer(BERT_HIDDEN, BERT_HEADS, BERT_FFN) for _ in range(BERT_LAYERS))
        self.register_buffer("position_ids", torch.arange(BERT_SEQ).unsqueeze(0), persistent=False)
        # Trained LayerNorms are not the identity; random scales and shifts make sure the
        # engine applies them (and keep the exporter from sharing one initializer for all).
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0.0, 0.1)

    def forward(self, input_ids, attention_mask):
        seq = input_ids.shape[1]
        x = self.tok(input_ids) + self.pos(self.position_ids[:, :seq])
        x = self.ln(x)
        # [b, s] 1 = attend, 0 = padding -> additive bias [b, 1, 1, s]: 0 or -10000.
        keep = attention_mask[:, None, None, :] != 0
        mask_bias = torch.zeros_like(keep, dtype=torch.float32).masked_fill(~keep, -10000.0)
        for layer in self.layers:
            x = layer(x, mask_bias)
        return x


def bert_inputs(batch, rng):
    ids = rng.integers(1, BERT_VOCAB, size=(batch, BERT_SEQ), dtype=np.int64)
    mask = np.ones((batch, BERT_SEQ), dtype=np.int64)
    # Padded sequences of various lengths (the first row of each batch is full length).
    for i in range(1, batch):
        n = int(rng.integers(8, BERT_SEQ))
        ids[i, n:] = 0
        mask[i, n:] = 0
    if batch == 1:
        ids[0, 100:] = 0
        mask[0, 100:] = 0
    return {"input_ids": ids, "attention_mask": mask}


# --- the other models ---------------------------------------------------------------------


def calibrate_batchnorm(model, gen, shape):
    """Give BatchNorm layers random affine parameters and running statistics measured on
    seeded random data (one train-mode pass with a cumulative average), so that in eval mode
    activations stay near unit scale all the way through. Fresh BatchNorm layers are the
    identity in eval mode, and with random weights that lets activations blow up until
    ReLU6 saturates and the output no longer depends on the input; it would also hide a
    wrongly applied normalisation."""
    bns = [m for m in model.modules() if isinstance(m, nn.BatchNorm2d)]
    with torch.no_grad():
        for m in bns:
            n = m.num_features
            m.weight.copy_(torch.rand(n, generator=gen) + 0.5)
            m.bias.copy_(torch.randn(n, generator=gen) * 0.2)
            m.reset_running_stats()
            m.momentum = None
        model.train()
        model(torch.randn(shape, generator=gen))
        model.eval()
    for m in bns:
        m.momentum = 0.1


def build_resnet18():
    import torchvision
    m = torchvision.models.resnet18(weights=None)
    calibrate_batchnorm(m, torch.Generator().manual_seed(SEED), (16, 3, 224, 224))
    return m


def build_mobilenet_v2():
    import torchvision
    m = torchvision.models.mobilenet_v2(weights=None)
    calibrate_batchnorm(m, torch.Generator().manual_seed(SEED), (16, 3, 224, 224))
    return m


def build_mlp():
    return nn.Sequential(nn.Linear(64, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                         nn.Linear(512, 10))


def image_inputs(batch, rng):
    return {"input": rng.standard_normal((batch, 3, 224, 224), dtype=np.float32)}


def mlp_inputs(batch, rng):
    return {"input": rng.standard_normal((batch, 64), dtype=np.float32)}


# name: (builder, input maker, input names, output names)
MODELS = {
    "resnet18": (build_resnet18, image_inputs, ["input"], ["output"]),
    "mobilenet_v2": (build_mobilenet_v2, image_inputs, ["input"], ["output"]),
    "bert": (BertEncoder, bert_inputs, ["input_ids", "attention_mask"], ["last_hidden_state"]),
    "mlp": (build_mlp, mlp_inputs, ["input"], ["output"]),
}


def op_histogram(path):
    import onnx
    model = onnx.load(path)
    onnx.checker.check_model(model)
    return collections.Counter(n.op_type for n in model.graph.node)


def export_one(name, outdir):
    build, make_inputs, in_names, out_names = MODELS[name]
    t0 = time.monotonic()
    torch.manual_seed(SEED)
    model = build().eval()
    # One seed per model and batch size, so --only gives the same files as a full export.
    seeds = {b: SEED + 1000 * list(MODELS).index(name) + b for b in BATCHES}

    final = os.path.join(outdir, name)
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=f".{name}.", dir=outdir)
    os.chmod(tmp, 0o755)
    try:
        onnx_path = os.path.join(tmp, "model.onnx")
        example = make_inputs(1, np.random.default_rng(seeds[1]))
        dyn = {n: {0: "batch"} for n in in_names + out_names}
        with torch.no_grad():
            torch.onnx.export(model, tuple(torch.from_numpy(example[n]) for n in in_names),
                              onnx_path, input_names=in_names, output_names=out_names,
                              dynamic_axes=dyn, opset_version=OPSET, do_constant_folding=True)
        t_export = time.monotonic() - t0

        for b in BATCHES:
            d = os.path.join(tmp, f"b{b}")
            os.makedirs(d)
            inputs = make_inputs(b, np.random.default_rng(seeds[b]))
            with torch.no_grad():
                outs = model(*(torch.from_numpy(inputs[n]) for n in in_names))
            if isinstance(outs, torch.Tensor):
                outs = (outs,)
            for n in in_names:
                np.save(os.path.join(d, f"input_{n}.npy"), inputs[n])
            for n, o in zip(out_names, outs):
                np.save(os.path.join(d, f"expected_{n}.npy"), o.numpy())

        hist = op_histogram(onnx_path)
        with open(os.path.join(tmp, "ops.txt"), "w") as f:
            for op, count in sorted(hist.items()):
                f.write(f"{op} {count}\n")
        with open(os.path.join(tmp, ".done"), "w") as f:
            f.write("ok\n")
        if os.path.exists(final):
            shutil.rmtree(final)
        os.rename(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise

    size = os.path.getsize(os.path.join(final, "model.onnx"))
    total = time.monotonic() - t0
    ops = ", ".join(f"{op} {c}" for op, c in sorted(hist.items()))
    print(f"{name}: {size / 1e6:.1f} MB, {sum(hist.values())} nodes, export {t_export:.1f}s, "
          f"total {total:.1f}s")
    print(f"{name}: ops: {ops}")
    sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser(description="Export capstan's real-model test fixtures.")
    ap.add_argument("outdir", nargs="?", help="where to write NAME/model.onnx etc.")
    ap.add_argument("--only", action="append", choices=list(MODELS), metavar="NAME",
                    help="export only this model (repeatable); one of " + ", ".join(MODELS))
    ap.add_argument("--list", action="store_true", help="print the model names and exit")
    args = ap.parse_args()
    if args.list:
        print("\n".join(MODELS))
        return 0
    if not args.outdir:
        ap.error("OUTDIR is required")
    # Shared machines: one thread keeps the reference run polite and the results reproducible.
    torch.set_num_threads(1)
    for name in args.only or list(MODELS):
        export_one(name, args.outdir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
