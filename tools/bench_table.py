#!/usr/bin/python3
"""Turn bench/run's JSON lines into the `make bench` table and put it into a Markdown file.

Usage: tools/bench_table.py RESULTS.jsonl OUT.md COMMAND MODELS

RESULTS.jsonl holds one object per run, from `capstan bench --json` (engine "capstan") and
bench/ort_bench.js (engine "onnxruntime"), each with the model's short name in "name". For
each model, batch and thread count the table gives both p50 latencies and the ratios
ORT/capstan of p50 latency, load time and peak RSS (above 1: capstan is better), then the
geometric mean of the latency ratios per thread count. The section between the markers
below in OUT.md is replaced (appended when the markers are missing); the table is also
printed.
"""
import json
import math
import platform
import sys
import time

BEGIN = "<!-- make bench: begin (written by bench/run; edit outside the markers) -->"
END = "<!-- make bench: end -->"


def cpu_name():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def main():
    results_path, out_path, command, models = sys.argv[1:5]
    runs = {}
    with open(results_path) as f:
        for line in f:
            r = json.loads(line)
            runs[(r["name"], r["batch"], r["threads"], r["engine"])] = r
    cells = sorted({k[:3] for k in runs}, key=lambda k: (models.split().index(k[0]), k[1], k[2]))
    rows = ["| model | batch | threads | capstan p50 ms | ORT p50 ms | latency ORT/capstan "
            "| load ORT/capstan | peak RSS ORT/capstan |",
            "|---|---|---|---|---|---|---|---|"]
    by_threads = {}
    for name, batch, threads in cells:
        cs = runs[(name, batch, threads, "capstan")]
        ort = runs[(name, batch, threads, "onnxruntime")]
        lat = ort["p50_ms"] / cs["p50_ms"]
        by_threads.setdefault(threads, []).append(lat)
        rows.append(f"| {name} | {batch} | {threads} | {cs['p50_ms']:.4g} | {ort['p50_ms']:.4g} "
                    f"| {lat:.2f} | {ort['load_ms'] / cs['load_ms']:.2f} "
                    f"| {ort['peak_rss_bytes'] / cs['peak_rss_bytes']:.2f} |")
    geo = "; ".join(f"{t} thread{'s' if t > 1 else ''}: "
                    f"{math.exp(sum(map(math.log, v)) / len(v)):.2f} over {len(v)} cells"
                    for t, v in sorted(by_threads.items()))
    table = "\n".join(rows)
    section = "\n".join([
        BEGIN,
        f"Last `make bench` run: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
        f"`{command}`, CPU `{cpu_name()}`. Geometric mean of latency ORT/capstan: {geo}. "
        "ORT's peak RSS is its node process's, JavaScript runtime included.",
        "",
        table,
        END,
    ])
    with open(out_path) as f:
        text = f.read()
    if BEGIN in text and END in text:
        head, rest = text.split(BEGIN, 1)
        text = head + section + rest.split(END, 1)[1]
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    with open(out_path, "w") as f:
        f.write(text)
    print(table)
    print(f"geometric mean of latency ORT/capstan: {geo}")


if __name__ == "__main__":
    main()
