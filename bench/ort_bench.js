// ort_bench.js - the same measurement as engine_bench.c on ONNX Runtime (onnxruntime-node).
// usage: node bench/ort_bench.js MODEL.onnx [batch] [threads] [runs] [warmup]
// Prints one JSON line: p50/p90/mean milliseconds and runs per second.
'use strict';
const ort = require('onnxruntime-node');

async function main() {
  const [model, batch = 1, threads = 2, runs = 50, warmup = 5] = process.argv.slice(2);
  const b = +batch;
  const sess = await ort.InferenceSession.create(model, {
    intraOpNumThreads: +threads, interOpNumThreads: 1, graphOptimizationLevel: 'all',
  });
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
  for (let r = -(+warmup); r < +runs; r++) {
    const t0 = process.hrtime.bigint();
    await sess.run(feeds);
    if (r >= 0) ms.push(Number(process.hrtime.bigint() - t0) / 1e6);
  }
  const total = ms.reduce((a, c) => a + c, 0);
  ms.sort((x, y) => x - y);
  console.log(JSON.stringify({ engine: 'onnxruntime', batch: b, p50_ms: +ms[ms.length >> 1].toFixed(3),
    p90_ms: +ms[Math.floor(ms.length * 0.9)].toFixed(3), mean_ms: +(total / ms.length).toFixed(3),
    runs_per_s: +(1000 * ms.length / total).toFixed(1) }));
}
main().catch((e) => { console.error(e.message); process.exit(1); });
