/**
 * The models in service and how a new one gets there (docs/ml-inference.md "Models").
 *
 * A model file is validated before it serves: its metadata (ONNX metadata_props) says which model
 * it is, its version and its feature names, which must be the ones this component computes, in the
 * same order; onnxruntime must load it; its input must be `features` float32 [N, features] and its
 * outputs the kind's names and widths; and a trial inference on a stored input must give finite
 * outputs in the kind's range. Only then does it replace the model of its kind, in one assignment
 * (an inference already running finishes on the old session, released after it). A rejected file
 * leaves the previous model in service, is reported as an issue (health degraded, a counted
 * rejection, an error line naming the file and why), and is not tried again until it changes.
 *
 * Every model that passed is copied into the component's work folder (`keepDir`): after a
 * restart (a models deployment changes the models folder's path, so Greengrass restarts us) that
 * copy is loaded first, so a bad models version cannot leave a site without the last good model.
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import * as ort from 'onnxruntime-node';
import type { MlModel } from '../lib/contract';
import { ANOMALY_FEATURES, FAULT_FEATURES, HORIZON, PAST_STEPS } from './features';
import { OnnxFormatError, readOnnxMetadata } from './onnx-meta';

export const MODEL_KINDS: readonly MlModel[] = ['fault', 'anomaly', 'forecast'];

/** Why a model file was refused (the rejection reason counted in metrics: `model_<reason>`). */
export type RejectReason = 'unreadable' | 'corrupt' | 'metadata' | 'wrong_model' | 'features' | 'input_shape' | 'output_shape' | 'trial_failed' | 'output_range';

export class ModelRejected extends Error {
  constructor(
    readonly kind: MlModel,
    readonly file: string,
    readonly reason: RejectReason,
    detail: string,
  ) {
    super(`${kind} model ${file} rejected (${reason}): ${detail}`);
  }
}

export function forecastFeatureNames(): string[] {
  const past = ['power', 'ghi', 'poa', 'ambient', 'clear_sky_poa'];
  const names: string[] = [];
  for (let k = 0; k < PAST_STEPS; k++) for (const p of past) names.push(`${p}_t-${PAST_STEPS - 1 - k}`);
  for (let h = 0; h < HORIZON; h++) names.push(`clear_sky_poa_t+${h + 1}`);
  names.push('tod_sin', 'tod_cos');
  return names;
}

/** The feature names this component computes for each model kind, in input order. */
export const EXPECTED_FEATURES: Readonly<Record<MlModel, readonly string[]>> = {
  fault: FAULT_FEATURES,
  anomaly: ANOMALY_FEATURES,
  forecast: forecastFeatureNames(),
};

/** Output name and width each kind must have (fault's width is its class count). */
const OUTPUT: Readonly<Record<MlModel, string>> = { fault: 'probabilities', anomaly: 'score', forecast: 'forecast' };

export interface LoadedModel {
  kind: MlModel;
  version: string;
  file: string;
  sha256: string;
  nFeatures: number;
  /** fault: class names, index 0 = normal. */
  classes: string[];
  /** forecast: steps ahead and minutes per step. */
  horizonSteps: number;
  stepMinutes: number;
  loadMs: number;
  session: ort.InferenceSession;
}

export interface ModelOutput {
  /** fault: 1 - P(normal); anomaly: the score; forecast: undefined. */
  score?: number;
  /** fault: the most probable class. */
  label?: string;
  /** fault: every class's probability. */
  probabilities?: number[];
  /** forecast: fraction of capacity per step. */
  forecast?: number[];
}

function jsonList(meta: Map<string, string>, key: string): unknown[] | undefined {
  const s = meta.get(key);
  if (s === undefined) return undefined;
  try {
    const v = JSON.parse(s) as unknown;
    return Array.isArray(v) ? v : undefined;
  } catch {
    return undefined;
  }
}

function dim(d: unknown): number | undefined {
  return typeof d === 'number' && d > 0 ? d : undefined;
}

/** Runs the model on `rows` inputs laid out row after row; the outputs per row. */
export async function runModel(m: LoadedModel, data: Float32Array, rows: number): Promise<ModelOutput[]> {
  const input = new ort.Tensor('float32', data, [rows, m.nFeatures]);
  const out = await m.session.run({ features: input });
  const t = out[OUTPUT[m.kind]];
  if (!t) throw new Error(`${m.kind} model gave no ${OUTPUT[m.kind]} output`);
  const v = t.data as Float32Array;
  const res: ModelOutput[] = [];
  if (m.kind === 'fault') {
    const w = m.classes.length;
    for (let r = 0; r < rows; r++) {
      const p = Array.from(v.subarray(r * w, (r + 1) * w));
      let best = 0;
      for (let k = 1; k < w; k++) if (p[k]! > p[best]!) best = k;
      res.push({ score: 1 - p[0]!, label: m.classes[best]!, probabilities: p });
    }
  } else if (m.kind === 'anomaly') {
    for (let r = 0; r < rows; r++) res.push({ score: v[r]! });
  } else {
    const w = m.horizonSteps;
    for (let r = 0; r < rows; r++) res.push({ forecast: Array.from(v.subarray(r * w, (r + 1) * w)) });
  }
  return res;
}

/** Range checks of a trial output; a message when out of range. */
function checkOutput(kind: MlModel, o: ModelOutput): string | undefined {
  if (kind === 'fault') {
    const p = o.probabilities ?? [];
    if (p.some((x) => !Number.isFinite(x) || x < -1e-6 || x > 1 + 1e-6)) return `probabilities ${JSON.stringify(p)} not all in 0..1`;
    const sum = p.reduce((a, b) => a + b, 0);
    if (Math.abs(sum - 1) > 1e-3) return `probabilities sum to ${sum}, not 1`;
  } else if (kind === 'anomaly') {
    if (!Number.isFinite(o.score) || o.score! < -1 || o.score! > 1) return `score ${o.score} not in -1..1`;
  } else {
    const f = o.forecast ?? [];
    if (f.some((x) => !Number.isFinite(x) || x < -0.5 || x > 2)) return `forecast ${JSON.stringify(f)} not all in -0.5..2 (fractions of capacity)`;
  }
  return undefined;
}

/**
 * Loads and validates one model file; throws ModelRejected. `sample` is the trial input (one row
 * of the kind's features).
 */
export async function loadModel(kind: MlModel, file: string, sample: readonly number[]): Promise<LoadedModel> {
  const t0 = performance.now();
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (err) {
    throw new ModelRejected(kind, file, 'unreadable', (err as Error).message);
  }
  const reject = (reason: RejectReason, detail: string): never => {
    throw new ModelRejected(kind, file, reason, detail);
  };
  let meta: Map<string, string>;
  try {
    meta = readOnnxMetadata(bytes);
  } catch (err) {
    return reject('corrupt', err instanceof OnnxFormatError ? `not a complete ONNX file: ${err.message}` : String(err));
  }
  if (meta.get('model') !== kind) reject('wrong_model', `its metadata says model ${JSON.stringify(meta.get('model') ?? null)}, expected ${JSON.stringify(kind)}`);
  const version = meta.get('version') ?? '';
  if (!/^\d+\.\d+\.\d+([-+][0-9A-Za-z.-]+)?$/.test(version)) reject('metadata', `metadata version ${JSON.stringify(version)} is not a semantic version`);
  const names = jsonList(meta, 'feature_names');
  const want = EXPECTED_FEATURES[kind];
  if (!names) reject('metadata', 'metadata feature_names missing or not a JSON list');
  if (JSON.stringify(names) !== JSON.stringify(want)) {
    const firstDiff = want.findIndex((n, i) => names![i] !== n);
    reject('features', `feature_names differ from the ${want.length} this component computes (first difference at ${firstDiff < 0 ? want.length : firstDiff}: model ${JSON.stringify(names![firstDiff < 0 ? want.length : firstDiff] ?? null)}, component ${JSON.stringify(want[firstDiff] ?? null)})`);
  }
  const classes = kind === 'fault' ? (jsonList(meta, 'classes') as string[] | undefined) : [];
  if (!classes || (kind === 'fault' && (classes.length < 2 || classes[0] !== 'normal'))) reject('metadata', 'metadata classes missing, or its first class is not "normal"');
  const horizonSteps = kind === 'forecast' ? Number(meta.get('horizon_steps')) : 0;
  const stepMinutes = kind === 'forecast' ? Number(meta.get('step_minutes')) : 0;
  if (kind === 'forecast' && (!(horizonSteps > 0 && Number.isInteger(horizonSteps)) || !(stepMinutes > 0))) reject('metadata', 'metadata horizon_steps / step_minutes missing');

  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(bytes, { intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: 'sequential', graphOptimizationLevel: 'all', enableCpuMemArena: false });
  } catch (err) {
    return reject('corrupt', `onnxruntime cannot load it: ${(err as Error).message}`);
  }
  const model: LoadedModel = { kind, version, file, sha256: createHash('sha256').update(bytes).digest('hex'), nFeatures: want.length, classes: classes!, horizonSteps, stepMinutes, loadMs: 0, session };
  const fail = (reason: RejectReason, detail: string): never => {
    void session.release().catch(() => undefined);
    return reject(reason, detail);
  };
  const inputs = session.inputMetadata;
  const in0 = inputs[0];
  if (inputs.length !== 1 || !in0 || in0.name !== 'features' || !in0.isTensor || in0.type !== 'float32' || in0.shape.length !== 2 || dim(in0.shape[1]) !== want.length) {
    fail('input_shape', `input must be features float32 [N, ${want.length}], the model has ${JSON.stringify(inputs.map((i) => (i.isTensor ? { name: i.name, type: i.type, shape: i.shape } : { name: i.name })))}`);
  }
  const width = kind === 'fault' ? classes!.length : kind === 'anomaly' ? 1 : horizonSteps;
  const out = session.outputMetadata.find((o) => o.name === OUTPUT[kind]);
  if (!out || !out.isTensor || out.type !== 'float32' || out.shape.length !== 2 || dim(out.shape[1]) !== width) {
    fail('output_shape', `output ${OUTPUT[kind]} must be float32 [N, ${width}], the model has ${JSON.stringify(session.outputMetadata.map((o) => (o.isTensor ? { name: o.name, type: o.type, shape: o.shape } : { name: o.name })))}`);
  }
  let trial: ModelOutput[] = [];
  try {
    trial = await runModel(model, Float32Array.from(sample), 1);
  } catch (err) {
    fail('trial_failed', `trial inference failed: ${(err as Error).message}`);
  }
  const bad = trial[0] ? checkOutput(kind, trial[0]) : 'no output row';
  if (bad) fail('output_range', `trial inference: ${bad}`);
  model.loadMs = performance.now() - t0;
  return model;
}

export interface ModelIssue {
  kind: MlModel;
  file: string;
  reason: RejectReason;
  message: string;
  at: number;
}

export interface ModelSetOptions {
  /** The models folder (the models component's artifacts, or modelDir). */
  dir: () => string;
  /** Where the last good models are kept (in the work folder). */
  keepDir: string;
  /** Trial input of a kind. */
  sample: (kind: MlModel) => readonly number[];
  now: () => number;
  onLoaded: (m: LoadedModel, previous: LoadedModel | undefined, from: 'models' | 'kept') => void;
  onRejected: (e: ModelRejected) => void;
}

/** The three models in service, the folder watcher's state and the issues of rejected files. */
export class ModelSet {
  private readonly models = new Map<MlModel, LoadedModel>();
  private readonly seen = new Map<MlModel, string>();
  private readonly issueMap = new Map<MlModel, ModelIssue>();
  private readonly inflight = new Map<LoadedModel, number>();
  private readonly retired = new Set<LoadedModel>();
  private busy: Promise<void> | undefined;
  private closed = false;

  constructor(private readonly o: ModelSetOptions) {}

  get(kind: MlModel): LoadedModel | undefined {
    return this.models.get(kind);
  }

  issues(): ModelIssue[] {
    return [...this.issueMap.values()];
  }

  /** At start: the kept copies of the last good models. */
  async loadKept(): Promise<void> {
    for (const kind of MODEL_KINDS) {
      const file = path.join(this.o.keepDir, `${kind}.onnx`);
      if (!fs.existsSync(file)) continue;
      try {
        this.install(await loadModel(kind, file, this.o.sample(kind)), 'kept');
      } catch (err) {
        if (err instanceof ModelRejected) this.o.onRejected(err);
        else throw err;
      }
    }
  }

  /** Looks at the models folder; loads every file that changed since the last look. Never overlaps itself. */
  check(): Promise<void> {
    this.busy ??= this.checkOnce().finally(() => {
      this.busy = undefined;
    });
    return this.busy;
  }

  /** Forgets what was seen in the folder (a new folder was configured): every file is looked at again. */
  resetSeen(): void {
    this.seen.clear();
  }

  private async checkOnce(): Promise<void> {
    const dir = this.o.dir();
    if (!dir) return;
    for (const kind of MODEL_KINDS) {
      if (this.closed) return;
      const file = path.join(dir, `${kind}.onnx`);
      let st: fs.Stats;
      try {
        st = fs.statSync(file);
      } catch {
        continue; // no file of this kind (yet): the kept one, if any, serves
      }
      const sig = `${file}:${st.size}:${st.mtimeMs}:${st.ino}`;
      if (this.seen.get(kind) === sig) continue;
      this.seen.set(kind, sig);
      const cur = this.models.get(kind);
      if (cur && st.size > 0) {
        const sha = createHash('sha256').update(fs.readFileSync(file)).digest('hex');
        if (sha === cur.sha256) {
          this.issueMap.delete(kind);
          continue;
        }
      }
      try {
        const m = await loadModel(kind, file, this.o.sample(kind));
        if (this.closed) {
          await m.session.release();
          return;
        }
        this.keep(m);
        this.install(m, 'models');
      } catch (err) {
        if (!(err instanceof ModelRejected)) throw err;
        this.issueMap.set(kind, { kind, file, reason: err.reason, message: err.message, at: this.o.now() });
        this.o.onRejected(err);
      }
    }
  }

  private keep(m: LoadedModel): void {
    fs.mkdirSync(this.o.keepDir, { recursive: true });
    const dest = path.join(this.o.keepDir, `${m.kind}.onnx`);
    if (path.resolve(m.file) === path.resolve(dest)) return;
    const tmp = `${dest}.tmp`;
    fs.copyFileSync(m.file, tmp);
    fs.renameSync(tmp, dest);
  }

  /** The switch: one assignment; the old session is released once no inference uses it. */
  private install(m: LoadedModel, from: 'models' | 'kept'): void {
    const prev = this.models.get(m.kind);
    this.models.set(m.kind, m);
    this.issueMap.delete(m.kind);
    this.o.onLoaded(m, prev, from);
    if (prev) this.retire(prev);
  }

  private retire(m: LoadedModel): void {
    this.retired.add(m);
    if ((this.inflight.get(m) ?? 0) === 0) this.release(m);
  }

  private release(m: LoadedModel): void {
    this.retired.delete(m);
    this.inflight.delete(m);
    void m.session.release().catch(() => undefined);
  }

  /** Runs the model of `kind` in service (undefined when there is none). */
  async run(kind: MlModel, data: Float32Array, rows: number): Promise<{ model: LoadedModel; outputs: ModelOutput[] } | undefined> {
    const m = this.models.get(kind);
    if (!m) return undefined;
    this.inflight.set(m, (this.inflight.get(m) ?? 0) + 1);
    try {
      return { model: m, outputs: await runModel(m, data, rows) };
    } finally {
      const n = (this.inflight.get(m) ?? 1) - 1;
      this.inflight.set(m, n);
      if (n === 0 && this.retired.has(m)) this.release(m);
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.busy?.catch(() => undefined);
    const all = [...this.models.values(), ...this.retired];
    this.models.clear();
    this.retired.clear();
    await Promise.all(all.map((m) => m.session.release().catch(() => undefined)));
  }
}
