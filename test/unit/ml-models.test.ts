/**
 * The ONNX models in models/ run with onnxruntime-node, MLInference's runtime: loadable, the inputs
 * and outputs the component is written against, and the golden file's outputs reproduced from its
 * features (1e-5). The pipeline's own metrics and gates are in models/metrics.json.
 *
 * onnxruntime-node is resolved from the project, then from $ORT_NODE_MODULES; where it is not
 * installed these tests are skipped.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const MODELS = path.join(__dirname, '../../models');
const golden = JSON.parse(fs.readFileSync(path.join(MODELS, 'golden.json'), 'utf8')) as {
  faultFeatureNames: string[];
  anomalyFeatureNames: string[];
  classes: string[];
  windows: Array<{ label: string; features: Record<string, number>; fault: { label: number; probabilities: number[] }; anomaly: { score: number } }>;
  forecasts: Array<{ features: number[]; forecast: number[] }>;
};
const metrics = JSON.parse(fs.readFileSync(path.join(MODELS, 'metrics.json'), 'utf8')) as {
  gates: Record<string, { value: number; threshold: number; pass: boolean }>;
  onnx: { bytes: Record<string, number> };
};

function ortAvailable(): boolean {
  const paths = [process.cwd(), ...(process.env.ORT_NODE_MODULES ? [process.env.ORT_NODE_MODULES] : [])];
  try {
    require.resolve('onnxruntime-node', { paths });
    return true;
  } catch {
    return false;
  }
}

/**
 * Runs a model in a plain Node process (scripts/training/run-onnx.js), as the component will: inside
 * Jest's sandbox onnxruntime-node's output tensors fail its own Float32Array check (another realm).
 */
function run(model: string, rows: number[][]): Record<string, { dims: number[]; data: number[] }> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ml-models-'));
  try {
    const input = path.join(dir, 'x.f32');
    fs.writeFileSync(input, Buffer.from(Float32Array.from(rows.flat()).buffer));
    const out = execFileSync(process.execPath, [path.join(__dirname, '../../scripts/training/run-onnx.js'), path.join(MODELS, `${model}.onnx`), input, String(rows.length), String(rows[0].length)], {
      encoding: 'utf8',
    });
    return (JSON.parse(out) as { outputs: Record<string, { dims: number[]; data: number[] }> }).outputs;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

describe('ML models: files', () => {
  test('every quality gate passed and the three models are small (a few MB in all)', () => {
    for (const [name, g] of Object.entries(metrics.gates)) {
      if (!(g.pass && g.value >= g.threshold)) throw new Error(`gate ${name}: ${g.value} < ${g.threshold}`);
    }
    const total = Object.values(metrics.onnx.bytes).reduce((a, b) => a + b, 0);
    expect(total).toBeLessThan(3 * 1024 * 1024);
    for (const [name, bytes] of Object.entries(metrics.onnx.bytes)) expect(fs.statSync(path.join(MODELS, `${name}.onnx`)).size).toBe(bytes);
  });
});

(ortAvailable() ? describe : describe.skip)('ML models with onnxruntime-node', () => {
  const TOL = 1e-5;
  const close = (got: number[], want: number[], what: string) => {
    expect(got).toHaveLength(want.length);
    got.forEach((v, k) => {
      if (!(Math.abs(v - want[k]) <= TOL)) throw new Error(`${what}[${k}]: ${v} != ${want[k]}`);
    });
  };

  test('fault classifier: label and class probabilities of every golden window', () => {
    const out = run('fault', golden.windows.map((w) => golden.faultFeatureNames.map((n) => w.features[n])));
    expect(out.probabilities.dims).toEqual([golden.windows.length, golden.classes.length]);
    golden.windows.forEach((w, i) => {
      const p = out.probabilities.data.slice(i * golden.classes.length, (i + 1) * golden.classes.length);
      close(p, w.fault.probabilities, `probabilities of window ${i}`);
      expect(p.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 5);
      expect(out.label.data[i]).toBe(w.fault.label);
    });
    // The unmistakable ones (the classifier's test-set F1 is 1.0 for these classes, metrics.json).
    for (const kind of ['normal', 'string_fault', 'over_temperature', 'ground_fault', 'comm_dropout']) {
      const i = golden.windows.findIndex((w) => w.label === kind);
      expect(golden.classes[out.label.data[i]]).toBe(kind);
    }
  });

  test('anomaly detector: score in -1..1 for every golden window, lower for the faults than for normal operation', () => {
    const out = run('anomaly', golden.windows.map((w) => golden.anomalyFeatureNames.map((n) => w.features[n])));
    close(out.score.data, golden.windows.map((w) => w.anomaly.score), 'score');
    out.score.data.forEach((s) => expect(s > -1 && s < 1).toBe(true));
    const normal = golden.windows.map((w, i) => [w.label, out.score.data[i]] as const).filter(([l]) => l === 'normal');
    const groundFault = out.score.data[golden.windows.findIndex((w) => w.label === 'ground_fault')];
    for (const [, s] of normal) expect(groundFault).toBeLessThan(s);
  });

  test('forecast: 16 steps of 15 minutes for every golden origin', () => {
    const out = run('forecast', golden.forecasts.map((f) => f.features));
    expect(out.forecast.dims).toEqual([golden.forecasts.length, 16]);
    golden.forecasts.forEach((f, i) => close(out.forecast.data.slice(i * 16, (i + 1) * 16), f.forecast, `forecast ${i}`));
  });
});
