#!/usr/bin/python3
"""The PyTorch peer of `capstan bench --device cuda:0`: the four benchmark models, built by
tools/export_models.py's own builders (same architectures, same seeded weights and inputs),
timed in PyTorch eagerly and as a replayed CUDA graph, on the GPU or (for tests) the CPU.

Usage:
  bench/torch_gpu.py [--device cuda|cuda:N|cpu] [--models mlp,bert,...] [--batches 1,8]
                     [--precision fp16,fp32] [--modes eager,graphs] [--iters N] [--warmup W]

Prints one JSON line per (model, batch, precision, mode):
  {"engine": "torch", "name": ..., "batch": B, "precision": "fp16", "mode": "eager"|"graphs",
   "device": ..., "iters": N, "p50_ms": ..., "min_ms": ..., "mean_ms": ..., ...}
and, for a case that cannot run, the same keys with "error" instead of the times (the run
goes on to the next case; the exit status is 1 when any case failed).

How it times: W untimed runs, then N runs each between two CUDA events (on the CPU, between
two perf_counter reads), and the median. `graphs` captures one forward pass into a
torch.cuda.CUDAGraph on static input buffers (after warm-up runs on a side stream, as
PyTorch's documentation asks) and times its replays the same way; it is skipped on the CPU.
fp16 is `model.half()` with half inputs under torch.autocast (the encoder's additive mask is
built in float32, which autocast casts where a matrix product needs it). PyTorch's defaults
are left alone (TF32 for cuDNN convolutions on, for matrix products off) but for
cudnn.benchmark, which is on for a GPU (the shapes are fixed); each line says so.
Defaults: cuda, all four models, batches 1 and 8, fp16 on a GPU and fp32 on the CPU (its
kernels lack half precision for convolutions), both modes, 50 iterations after 10 warm-ups.
Cost: one model in memory at a time; weights are built once per model and precision.
"""
import argparse
import json
import os
import statistics
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import export_models  # noqa: E402  (tools/export_models.py: MODELS, SEED, BATCHES)


def make_inputs(name, batch, device, dtype):
    """The same seeded inputs export_models.py writes for this model and batch size."""
    _, make, in_names, _ = export_models.MODELS[name]
    seed = export_models.SEED + 1000 * list(export_models.MODELS).index(name) + batch
    arrays = make(batch, np.random.default_rng(seed))
    out = []
    for n in in_names:
        t = torch.from_numpy(arrays[n]).to(device)
        out.append(t.to(dtype) if t.is_floating_point() else t)
    return out


def build(name, device, dtype):
    builder = export_models.MODELS[name][0]
    torch.manual_seed(export_models.SEED)
    model = builder().eval()
    return model.to(device=device, dtype=dtype)


def forward_fn(model, device, precision):
    use_autocast = precision == "fp16" and device.type == "cuda"

    def fwd(*inputs):
        with torch.no_grad():
            if use_autocast:
                # No cast cache: PyTorch's CUDA-graph notes ask for it off under capture.
                with torch.autocast(device_type="cuda", dtype=torch.float16,
                                    cache_enabled=False):
                    return model(*inputs)
            return model(*inputs)

    return fwd


def time_calls(call, device, iters, warmup):
    """Per-call milliseconds of `call`, after warmup untimed calls."""
    for _ in range(warmup):
        call()
    times = []
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        events = [(torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True))
                  for _ in range(iters)]
        for start, end in events:
            start.record()
            call()
            end.record()
        torch.cuda.synchronize(device)
        times = [start.elapsed_time(end) for start, end in events]
    else:
        for _ in range(iters):
            t0 = time.perf_counter()
            call()
            times.append((time.perf_counter() - t0) * 1e3)
    return times


def time_graph(fwd, inputs, device, iters, warmup):
    """Captures one forward pass on static inputs and times its replays."""
    static = [t.clone() for t in inputs]
    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side):
        for _ in range(3):
            fwd(*static)
    torch.cuda.current_stream(device).wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        fwd(*static)
    return time_calls(graph.replay, device, iters, warmup)


def main():
    ap = argparse.ArgumentParser(description="Time the benchmark models in PyTorch.")
    ap.add_argument("--device", default="cuda", help="cuda, cuda:N or cpu (default cuda)")
    ap.add_argument("--models", default=",".join(export_models.MODELS),
                    help="comma-separated, of " + ", ".join(export_models.MODELS))
    ap.add_argument("--batches", default="1,8", help="comma-separated batch sizes (1,8)")
    ap.add_argument("--precision", default=None,
                    help="fp16 and/or fp32, comma-separated (fp16 on a GPU, fp32 on the CPU)")
    ap.add_argument("--modes", default="eager,graphs", help="eager and/or graphs")
    ap.add_argument("--iters", type=int, default=50, help="timed runs (50)")
    ap.add_argument("--warmup", type=int, default=10, help="untimed runs before them (10)")
    args = ap.parse_args()

    device = torch.device(args.device)
    if device.type not in ("cuda", "cpu"):
        ap.error(f"--device: expected cuda, cuda:N or cpu, got '{args.device}'")
    if device.type == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: torch.cuda.is_available() is false on this machine")
    models = [m for m in args.models.split(",") if m]
    for m in models:
        if m not in export_models.MODELS:
            ap.error(f"--models: unknown model '{m}'; expected one of "
                     + ", ".join(export_models.MODELS))
    batches = [int(b) for b in args.batches.split(",") if b]
    precisions = (args.precision or ("fp16" if device.type == "cuda" else "fp32")).split(",")
    for p in precisions:
        if p not in ("fp16", "fp32"):
            ap.error(f"--precision: expected fp16 or fp32, got '{p}'")
    modes = [m for m in args.modes.split(",") if m]
    for m in modes:
        if m not in ("eager", "graphs"):
            ap.error(f"--modes: expected eager or graphs, got '{m}'")
    if args.iters < 1 or args.warmup < 0:
        ap.error("--iters must be at least 1 and --warmup at least 0")

    if device.type == "cuda":
        torch.cuda.set_device(device)
        gpu = torch.cuda.get_device_name(device)
        # Fixed shapes: let cuDNN pick each convolution's fastest algorithm, as a tuned
        # PyTorch deployment would (capstan chooses its algorithms at plan time too).
        torch.backends.cudnn.benchmark = True
    else:
        gpu = None
    common = {"engine": "torch", "torch": torch.__version__, "device": str(device), "gpu": gpu,
              "tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
              "tf32_cudnn": torch.backends.cudnn.allow_tf32,
              "cudnn_benchmark": torch.backends.cudnn.benchmark, "iters": args.iters,
              "warmup": args.warmup}
    failed = False
    for name in models:
        for precision in precisions:
            dtype = torch.float16 if precision == "fp16" else torch.float32
            try:
                model = build(name, device, dtype)
                fwd = forward_fn(model, device, precision)
            except Exception as e:  # a model that cannot be built fails its cases only
                model, fwd, build_error = None, None, f"{type(e).__name__}: {e}"
            for batch in batches:
                for mode in modes:
                    row = dict(common, name=name, batch=batch, precision=precision, mode=mode)
                    if mode == "graphs" and device.type != "cuda":
                        continue  # CUDA graphs need a GPU
                    try:
                        if fwd is None:
                            raise RuntimeError(build_error)
                        inputs = make_inputs(name, batch, device, dtype)
                        if mode == "eager":
                            times = time_calls(lambda: fwd(*inputs), device, args.iters,
                                               args.warmup)
                        else:
                            times = time_graph(fwd, inputs, device, args.iters, args.warmup)
                        row.update(p50_ms=round(statistics.median(times), 5),
                                   min_ms=round(min(times), 5),
                                   mean_ms=round(statistics.fmean(times), 5))
                    except Exception as e:
                        row["error"] = f"{type(e).__name__}: {e}"[:300]
                        failed = True
                    print(json.dumps(row), flush=True)
            del model, fwd
            if device.type == "cuda":
                torch.cuda.empty_cache()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
