#!/usr/bin/python3
"""Helpers of tools/gpu-check (the prepared GPU run): the parts that want numpy, onnx or
JSON rather than bash. Each subcommand prints what it did and exits non-zero on failure.

  export CACHE NAME      export one benchmark model with tools/export_models.py into
                         CACHE/NAME (skipped when CACHE/NAME/.done exists), with PyTorch's
                         TorchScript exporter where the installed torch would pick its dynamo
                         one (torch >= 2.9), so the graph is the one CPU tests ran
  layout CACHE DIR       write DIR/models/NAME/{model.onnx, test_data_set_0 (batch 1),
                         test_data_set_1 (batch 8)} in ONNX's backend-test layout, so that
                         cs-conformance --suite models --data DIR checks them
  devices YAML CSV       compare `capstan devices -o yaml` with `nvidia-smi --query-gpu=
                         name,memory.total,uuid --format=csv,noheader,nounits`: count, name,
                         memory total (MiB) and UUID per GPU; exit 1 on a mismatch
  summary OUT STAGES     write OUT/summary.md from STAGES (tab-separated: stage, status,
                         seconds, note) and OUT/bench.jsonl and OUT/torch.jsonl
"""
import glob
import inspect
import json
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def cmd_export(cache, name):
    if os.path.exists(os.path.join(cache, name, ".done")):
        print(f"{name}: already exported in {cache}")
        return 0
    sys.path.insert(0, HERE)
    import torch
    import export_models
    orig = torch.onnx.export
    if "dynamo" not in inspect.signature(orig).parameters:
        export_models.export_one(name, cache)
        return 0

    def torchscript_export(*a, **kw):
        kw.setdefault("dynamo", False)
        return orig(*a, **kw)

    torch.onnx.export = torchscript_export
    try:
        export_models.export_one(name, cache)
    except Exception as e:
        # A torch whose TorchScript exporter is gone: its default (dynamo) one, noted.
        print(f"{name}: TorchScript export failed ({type(e).__name__}: {e}); retrying with "
              "torch's default (dynamo) exporter", flush=True)
        torch.onnx.export = orig
        export_models.export_one(name, cache)
    return 0


def cmd_layout(cache, outdir):
    import numpy as np
    from onnx import numpy_helper
    root = os.path.join(outdir, "models")
    os.makedirs(root, exist_ok=True)
    n = 0
    for done in sorted(glob.glob(os.path.join(cache, "*", ".done"))):
        mdir = os.path.dirname(done)
        name = os.path.basename(mdir)
        dst = os.path.join(root, name)
        os.makedirs(dst, exist_ok=True)
        link = os.path.join(dst, "model.onnx")
        if not os.path.lexists(link):
            os.symlink(os.path.abspath(os.path.join(mdir, "model.onnx")), link)
        for k, b in enumerate((1, 8)):
            sdir = os.path.join(dst, f"test_data_set_{k}")
            os.makedirs(sdir, exist_ok=True)
            for prefix, pb in (("input_", "input"), ("expected_", "output")):
                files = sorted(glob.glob(os.path.join(mdir, f"b{b}", prefix + "*.npy")))
                for i, f in enumerate(files):
                    tname = os.path.basename(f)[len(prefix):-len(".npy")]
                    t = numpy_helper.from_array(np.load(f), tname)
                    with open(os.path.join(sdir, f"{pb}_{i}.pb"), "wb") as fh:
                        fh.write(t.SerializeToString())
        n += 1
        print(f"{name}: {dst} (batch 1 and 8)")
    if n == 0:
        print(f"layout: no exported models in {cache}", file=sys.stderr)
        return 1
    return 0


def parse_bytes(q):
    """A Kubernetes quantity (`150754820096`, `143771Mi`, `140Gi`) in bytes."""
    m = re.fullmatch(r"([0-9.]+)([KMGTPE]i|[kMGTPE])?", str(q).strip())
    if not m:
        raise ValueError(f"not a quantity: {q!r}")
    mult = {None: 1, "Ki": 1 << 10, "Mi": 1 << 20, "Gi": 1 << 30, "Ti": 1 << 40, "Pi": 1 << 50,
            "Ei": 1 << 60, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15,
            "E": 10**18}[m.group(2)]
    return int(float(m.group(1)) * mult)


def capstan_gpus(yaml_path):
    import yaml
    gpus = []
    with open(yaml_path) as f:
        for doc in yaml.safe_load_all(f):
            if not doc or doc.get("kind") != "ResourceSlice":
                continue
            spec = doc.get("spec", {})
            if spec.get("driver") != "gpu.nvidia.com":
                continue
            for d in spec.get("devices") or []:
                attrs = {k: next(iter(v.values())) for k, v in (d.get("attributes") or {}).items()}
                uuid = str(attrs.get("uuid", ""))
                if not uuid.startswith("GPU-"):
                    continue  # MIG devices and counter-only entries
                mem = (d.get("capacity") or {}).get("memory", {}).get("value")
                gpus.append({"name": str(attrs.get("productName", "")), "uuid": uuid,
                             "memory_mib": parse_bytes(mem) >> 20 if mem is not None else None})
    return gpus


def cmd_devices(yaml_path, csv_path):
    smi = []
    with open(csv_path) as f:
        for line in f:
            parts = [p.strip() for p in line.split(",")]
            if len(parts) >= 3:
                smi.append({"name": parts[0], "memory_mib": int(float(parts[1])),
                            "uuid": parts[2]})
    try:
        ours = capstan_gpus(yaml_path)
    except Exception as e:
        print(f"MISMATCH cannot read {yaml_path}: {type(e).__name__}: {e}")
        return 1
    ok = len(ours) == len(smi)
    print(f"{'match' if ok else 'MISMATCH'} count: capstan {len(ours)}, nvidia-smi {len(smi)}")
    by_uuid = {g["uuid"]: g for g in ours}
    for s in smi:
        g = by_uuid.get(s["uuid"])
        if g is None:
            print(f"MISMATCH uuid {s['uuid']}: nvidia-smi lists it, capstan does not")
            ok = False
            continue
        print(f"match uuid {s['uuid']}")
        for key in ("name", "memory_mib"):
            same = g[key] == s[key]
            ok = ok and same
            print(f"{'match' if same else 'MISMATCH'} {key} of {s['uuid']}: capstan {g[key]!r}, "
                  f"nvidia-smi {s[key]!r}")
    if not smi:
        print("MISMATCH nvidia-smi listed no GPU")
        ok = False
    return 0 if ok else 1


def read_jsonl(path):
    rows = []
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                line = line.strip()
                if line.startswith("{"):
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        pass
    return rows


def fmt(x):
    return "-" if x is None else f"{x:.4g}"


def cmd_summary(out, stages_path):
    stages = []
    with open(stages_path) as f:
        for line in f:
            parts = line.rstrip("\n").split("\t")
            if len(parts) >= 3:
                stages.append(parts + [""] * (4 - len(parts)))
    ours = {}
    for r in read_jsonl(os.path.join(out, "bench.jsonl")):
        ours[(r.get("name"), r.get("batch"), r.get("precision"))] = r
    theirs = {}
    for r in read_jsonl(os.path.join(out, "torch.jsonl")):
        theirs[(r.get("name"), r.get("batch"), r.get("precision"), r.get("mode"))] = r
    keys = sorted({k for k in ours} | {k[:3] for k in theirs},
                  key=lambda k: (str(k[0]), k[1] or 0, str(k[2])))
    lines = ["# tools/gpu-check", ""]
    meta = os.path.join(out, "system.txt")
    if os.path.exists(meta):
        with open(meta) as f:
            head = [ln.rstrip() for ln in f if ln.startswith("# ")][:6]
        lines += [ln[2:] + "  " for ln in head] + [""]
    lines += ["## Checks", "", "| stage | status | seconds | note |", "|---|---|---|---|"]
    for name, status, secs, note in stages:
        lines.append(f"| {name} | {status} | {secs} | {note} |")
    lines += ["", "## Latency (p50 ms)", "",
              "| model | batch | precision | capstan ms | torch eager ms | torch graphs ms | "
              "capstan/graphs |", "|---|---|---|---|---|---|---|"]
    for k in keys:
        c = ours.get(k, {})
        cm = c.get("p50_ms") if "error" not in c else None
        e = theirs.get(k + ("eager",), {}).get("p50_ms")
        g = theirs.get(k + ("graphs",), {}).get("p50_ms")
        ratio = f"{cm / g:.2f}" if cm and g else "-"
        lines.append(f"| {k[0]} | {k[1]} | {k[2]} | {fmt(cm)} | {fmt(e)} | {fmt(g)} | {ratio} |")
    errors = [r for r in list(ours.values()) + list(theirs.values()) if "error" in r]
    if errors:
        lines += ["", "Cases that did not run:", ""]
        for r in errors:
            lines.append(f"- {r.get('engine', 'capstan')} {r.get('name')} b{r.get('batch')} "
                         f"{r.get('precision')} {r.get('mode', '')}: {r['error']}")
    with open(os.path.join(out, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


def main(argv):
    cmds = {"export": (cmd_export, 2), "layout": (cmd_layout, 2), "devices": (cmd_devices, 2),
            "summary": (cmd_summary, 2)}
    if len(argv) < 2 or argv[1] not in cmds or len(argv) - 2 != cmds[argv[1]][1]:
        print(__doc__, file=sys.stderr)
        return 2
    fn, _ = cmds[argv[1]]
    return fn(*argv[2:])


if __name__ == "__main__":
    sys.exit(main(sys.argv))
