/** @jest-environment ./test/helpers/ml-inference-environment.js */
/**
 * The gateway against the training pipeline's golden file (models/golden.json: held-out windows and
 * forecast origins with their raw one-minute inputs, the features the Python pipeline computed, and
 * the trained models' outputs under the Python pipeline's onnxruntime check). The inputs go through
 * MLInference's own path: one-minute samples (window.ts MinuteSamples, as telemetry fills them),
 * windows built from them, the shared feature definitions, and the shipped models loaded and
 * validated by models.ts. Features and outputs must agree to 1e-5.
 */
import fs from 'node:fs';
import path from 'node:path';
import { ANOMALY_FEATURES, FAULT_FEATURES, forecastFeatures, windowFeatures, type InverterWindow } from '../../components/ml-inference/features';
import { loadModel, runModel, type LoadedModel } from '../../components/ml-inference/models';
import { BUILTIN_SAMPLES } from '../../components/ml-inference/samples';
import { MINUTE_MS, MinuteSamples, SITE_KEY, forecastMinutes, inverterWindow, siteWindow } from '../../components/ml-inference/window';

interface GoldenWindow {
  endMs: number;
  inverter: number;
  label: string;
  ratedW: number;
  site: Record<string, number[]>;
  inverters: Array<Record<string, (number | null)[]>>;
  features: Record<string, number>;
  fault: { label: number; probabilities: number[] };
  anomaly: { score: number };
}
interface GoldenForecast {
  originMs: number;
  latitude: number;
  longitude: number;
  trackerLimitDeg: number;
  capacityW: number;
  minutes: { W: (number | null)[][]; ghi: number[]; poa: number[]; ambientTemp: number[]; clearSkyPoa: number[] };
  features: number[];
  forecast: number[];
}
const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../../models/golden.json'), 'utf8')) as {
  classes: string[];
  windows: GoldenWindow[];
  forecasts: GoldenForecast[];
};
const TOL = 1e-5;
const MODELS = path.join(__dirname, '../../models');
const models: Partial<Record<'fault' | 'anomaly' | 'forecast', LoadedModel>> = {};

beforeAll(async () => {
  for (const kind of ['fault', 'anomaly', 'forecast'] as const) models[kind] = await loadModel(kind, path.join(MODELS, `${kind}.onnx`), BUILTIN_SAMPLES[kind]);
});
afterAll(async () => {
  for (const m of Object.values(models)) await m?.session.release();
});

function close(got: number, want: number, what: string): void {
  if (!(Math.abs(got - want) <= TOL)) throw new Error(`${what}: ${got} != ${want}`);
}

/** The window's raw minutes as samples the way telemetry puts them (a sample mid-minute). */
function samplesOf(w: GoldenWindow): { s: MinuteSamples; first: number; ids: string[] } {
  const s = new MinuteSamples();
  const first = Math.floor(w.endMs / MINUTE_MS) - 15;
  const ids = w.inverters.map((_, i) => `INV-${i + 1}`);
  for (let k = 0; k < 15; k++) {
    const ts = (first + k) * MINUTE_MS + 30_000;
    for (const [series, values] of Object.entries(w.site)) if (series !== 'sunElevation') s.put(SITE_KEY, series, ts, values[k]!);
    w.inverters.forEach((inv, i) => {
      for (const [series, values] of Object.entries(inv)) if (values[k] !== null) s.put(ids[i]!, series, ts, values[k]!);
    });
  }
  return { s, first, ids };
}

describe('golden windows: samples -> windows -> features -> fault and anomaly outputs', () => {
  test('the golden file covers every class and a window with a missing minute', () => {
    expect(new Set(golden.windows.map((w) => w.label))).toEqual(new Set(golden.classes));
    expect(golden.windows.some((w) => w.inverters[w.inverter]!.W.includes(null))).toBe(true);
  });

  test.each(golden.windows.map((w, i) => [i, w.label, w] as const))('window %i (%s)', async (_i, _label, w) => {
    const { s, first, ids } = samplesOf(w);
    const site = siteWindow(s, { latitude: 0, longitude: 0, inverters: ids, modules: 4, hasTracker: true }, first, w.site['sunElevation']);
    if (typeof site === 'string') throw new Error(`site window not built: ${site}`);
    const wins = ids.map((id) => inverterWindow(s, id, 4, first));
    wins.forEach((x) => {
      if (typeof x === 'string') throw new Error(`inverter window not built: ${x}`);
    });
    const f = windowFeatures(site, wins as InverterWindow[], w.inverter, w.ratedW);
    if (!f) throw new Error('window not scored');
    for (const [name, want] of Object.entries(w.features)) close((f as Record<string, number>)[name]!, want, name);

    const fault = await runModel(models.fault!, Float32Array.from(FAULT_FEATURES.map((n) => f[n])), 1);
    fault[0]!.probabilities!.forEach((p, k) => close(p, w.fault.probabilities[k]!, `P(${golden.classes[k]})`));
    expect(fault[0]!.label).toBe(golden.classes[w.fault.label]);
    const anomaly = await runModel(models.anomaly!, Float32Array.from(ANOMALY_FEATURES.map((n) => f[n])), 1);
    close(anomaly[0]!.score!, w.anomaly.score, 'anomaly score');
  });
});

describe('golden forecasts: samples -> history -> features -> forecast', () => {
  test.each(golden.forecasts.map((g, i) => [i, g] as const))('origin %i', async (_i, g) => {
    const s = new MinuteSamples();
    const first = Math.floor(g.originMs / MINUTE_MS) - 240;
    const ids = g.minutes.W.map((_, i) => `INV-${i + 1}`);
    for (let k = 0; k < 240; k++) {
      const ts = (first + k) * MINUTE_MS + 30_000;
      s.put(SITE_KEY, 'ghi', ts, g.minutes.ghi[k]!);
      s.put(SITE_KEY, 'poa', ts, g.minutes.poa[k]!);
      s.put(SITE_KEY, 'ambientTemp', ts, g.minutes.ambientTemp[k]!);
      g.minutes.W.forEach((w, i) => {
        if (w[k] !== null) s.put(ids[i]!, 'W', ts, w[k]!);
      });
    }
    const fm = forecastMinutes(s, ids, g.originMs);
    if (typeof fm === 'string') throw new Error(`forecast history not built: ${fm}`);
    const geometry = { latitude: g.latitude, longitude: g.longitude, trackerLimitDeg: g.trackerLimitDeg };
    // The clear sky the component computes (from the simulator's physics, as the generator did).
    const f = forecastFeatures(fm, g.originMs, g.capacityW, geometry);
    f.forEach((v, k) => close(v, g.features[k]!, `feature ${k}`));
    const out = await runModel(models.forecast!, Float32Array.from(f), 1);
    out[0]!.forecast!.forEach((v, k) => close(v, g.forecast[k]!, `step ${k + 1}`));
  });
});
