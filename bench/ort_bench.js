// ort_bench.js - `capstan bench --json`'s measurement on ONNX Runtime (onnxruntime-node).
// usage: node bench/ort_bench.js MODEL.onnx [batch] [threads] [iters] [warmup]
// Inputs are the same pseudo-random values capstan bench draws (symbolic dimensions take
// batch). Prints one JSON line with capstan bench's keys: load_ms (session creation),
// first_run_ms, p50/p90/min/mean latency, throughput_per_s (batch x runs per second) and
// peak_rss_bytes (the node process's peak, JavaScript runtime included; node_rss_bytes is
// the process's RSS before the session was created, for reading that share).
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, batch = 1, threads = 2, iters = 50, warmup = 5] = process.argv.slice(2);
  const b = +batch;
  const nodeRss = process.memoryUsage().rss;
  const t0 = process.hrtime.bigint();
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: +threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
  const loadMs = Number(process.hrtime.bigint() - t0) / 1e6;
  let seed = 42;
  const rand = () => { seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0; return (seed >>> 8) / 16777216; };
  const feeds = {};
  for (const name of sess.inputNames) {
    const meta = sess.inputMetadata.find((m) => m.name === name);
    const dims = meta.shape.map((d) => (typeof d === 'number' && d >= 0 ? d : b));
    const n = dims.reduce((a, c) => a * c, 1);
    if (meta.type === 'int64') {
      const mask = name.includes('mask');
      feeds[name] = new ort.Tensor('int64', BigInt64Array.from({ length: n }, () => BigInt(mask ? 1 : Math.floor(rand() * 100))), dims);
    } else {
      feeds[name] = new ort.Tensor('float32', Float32Array.from({ length: n }, rand), dims);
    }
  }
  const ms = [];
  let firstMs = 0;
  for (let r = -1 - (+warmup); r < +iters; r++) {
    const t = process.hrtime.bigint();
    await sess.run(feeds);
    const d = Number(process.hrtime.bigint() - t) / 1e6;
    if (r === -1 - (+warmup)) firstMs = d;
    if (r >= 0) ms.push(d);
  }
  const total = ms.reduce((a, c) => a + c, 0);
  ms.sort((x, y) => x - y);
  const pct = (p) => ms[Math.max(0, Math.ceil(ms.length * p / 100) - 1)];
  console.log(JSON.stringify({ engine: 'onnxruntime', model, batch: b, threads: +threads,
    load_ms: loadMs, first_run_ms: firstMs, p50_ms: pct(50), p90_ms: pct(90), min_ms: ms[0],
    mean_ms: total / ms.length, throughput_per_s: 1000 * b * ms.length / total,
    peak_rss_bytes: process.resourceUsage().maxRSS * 1024, node_rss_bytes: nodeRss }));
}
main().catch((e) => { console.error(e.message); process.exit(1); });
