/**
 * `node dist/bench.js --only ml`: MLInference's cost (docs/ml-inference.md "Measured").
 *
 *  - inference latency of each shipped model, one asset window (one row) at a time, after a
 *    warm-up: p50, p99, max (goal p99 < 1 ms fault and anomaly, < 5 ms forecast);
 *  - the component (in its own process, ml-worker.ts) with 100 inverters, a weather station and a tracker: four hours of one-minute
 *    telemetry through its subscription, then fault + anomaly evaluations (windows, features, one
 *    batched inference of 100 rows, 100 results and alarm judgements) and forecasts, timed;
 *  - its memory: the RSS of that process (ml-worker.ts, a process of its own) with the three models
 *    in service and 100 inverters' samples: the component's working set without its IPC client
 *    (goal < 150 MB);
 *  - model load (read, metadata, onnxruntime session, shape checks, trial inference) and swap (a
 *    changed file noticed by the folder check, validated, switched in, the old session released).
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import type { MlModel } from '../../components/lib/contract';
import { EXPECTED_FEATURES, ModelSet, loadModel, runModel } from '../../components/ml-inference/models';
import { BUILTIN_SAMPLES } from '../../components/ml-inference/samples';
import { bundleWorker } from './nucleus-process';

const KINDS: readonly MlModel[] = ['fault', 'anomaly', 'forecast'];
/** The heap cap the recipe runs MLInference with (recipes/com.dcmms.edge.MLInference.yaml). */
const ML_OLD_SPACE_MB = 48;

function modelsDir(): string {
  for (const d of [path.resolve(__dirname, '..', 'models'), path.resolve(__dirname, '..', '..', 'models'), path.resolve(process.cwd(), 'models')]) {
    if (fs.existsSync(path.join(d, 'fault.onnx'))) return d;
  }
  throw new Error('models/fault.onnx not found (run from the project root)');
}

function pct(xs: number[], p: number): number {
  const v = [...xs].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.floor((p / 100) * v.length))]!;
}
const r3 = (x: number): number => Math.round(x * 1000) / 1000;
const mb = (b: number): number => Math.round((b / 1048576) * 10) / 10;

async function latency(dir: string, runs: number): Promise<Record<string, unknown>> {
  const out: Record<string, unknown> = {};
  for (const kind of KINDS) {
    const m = await loadModel(kind, path.join(dir, `${kind}.onnx`), BUILTIN_SAMPLES[kind]);
    const row = Float32Array.from(BUILTIN_SAMPLES[kind]);
    for (let i = 0; i < 200; i++) await runModel(m, row, 1);
    const ms: number[] = [];
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now();
      await runModel(m, row, 1);
      ms.push(performance.now() - t0);
    }
    out[kind] = { features: EXPECTED_FEATURES[kind].length, runs, p50Ms: r3(pct(ms, 50)), p99Ms: r3(pct(ms, 99)), maxMs: r3(Math.max(...ms)) };
    await m.session.release();
  }
  return out;
}

async function loadAndSwap(dir: string): Promise<Record<string, unknown>> {
  const load: Record<string, number> = {};
  for (const kind of KINDS) {
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const m = await loadModel(kind, path.join(dir, `${kind}.onnx`), BUILTIN_SAMPLES[kind]);
      times.push(m.loadMs);
      await m.session.release();
    }
    load[kind] = r3(pct(times, 50));
  }
  // Swap: a changed fault.onnx (its metadata version rewritten in place, same length) in a watched folder.
  const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-ml-swap-'));
  try {
    for (const kind of KINDS) fs.copyFileSync(path.join(dir, `${kind}.onnx`), path.join(tmp, `${kind}.onnx`));
    const set = new ModelSet({ dir: () => tmp, keepDir: path.join(tmp, 'kept'), sample: (k) => BUILTIN_SAMPLES[k], now: () => Date.now(), onLoaded: () => undefined, onRejected: () => undefined });
    await set.check();
    const bytes = fs.readFileSync(path.join(tmp, 'fault.onnx'));
    const from = set.get('fault')!.version;
    const key = Buffer.from(`version\u0012${String.fromCharCode(from.length)}${from}`, 'latin1');
    const at = bytes.indexOf(key);
    const swaps: number[] = [];
    for (let i = 1; i <= 5 && at >= 0; i++) {
      const next = `${from.slice(0, -1)}${i % 10}`;
      bytes.write(next, at + key.length - from.length, 'latin1');
      fs.writeFileSync(path.join(tmp, 'fault.onnx'), bytes);
      const t0 = performance.now();
      await set.check();
      swaps.push(performance.now() - t0);
      if (set.get('fault')!.version !== next) throw new Error(`swap to ${next} did not happen`);
    }
    await set.close();
    return { loadMsMedianOf5: load, swapFaultMsMedian: r3(pct(swaps, 50)), swapFaultMsMax: r3(Math.max(...swaps)) };
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

export async function runMlBench(opts: { seconds: number }): Promise<Record<string, unknown>> {
  const dir = modelsDir();
  const rssStart = process.memoryUsage().rss;
  const perModel = await latency(dir, Math.max(2000, opts.seconds * 1000));
  const loading = await loadAndSwap(dir);
  const worker = bundleWorker(path.resolve(dir, '..'), 'ml-worker.ts', 'bench-ml-worker.js');
  const site = JSON.parse(execFileSync(process.execPath, [`--max-old-space-size=${ML_OLD_SPACE_MB}`, worker, dir, String(opts.seconds)], { encoding: 'utf8', maxBuffer: 1 << 20 })) as Record<string, unknown>;
  return { rssAtStartMB: mb(rssStart), inferenceOneWindow: perModel, ...loading, component: site };
}
