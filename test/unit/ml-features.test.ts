/**
 * The TypeScript feature definitions (scripts/training/features.ts) against the training pipeline's
 * golden file (models/golden.json: raw one-minute inputs and the features the Python pipeline computed
 * from them for held-out test windows). The gateway must feed the models exactly what they were
 * trained on: every feature to 1e-5.
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  ANOMALY_FEATURES,
  FAULT_FEATURES,
  HORIZON,
  PAST_STEPS,
  clearSkyMinutes,
  forecastFeatures,
  windowFeatures,
  type InverterWindow,
  type SiteWindow,
} from '../../scripts/training/features';

interface GoldenWindow {
  inverter: number;
  label: string;
  ratedW: number;
  site: SiteWindow;
  inverters: InverterWindow[];
  features: Record<string, number>;
}
interface GoldenForecast {
  originMs: number;
  latitude: number;
  longitude: number;
  trackerLimitDeg: number;
  capacityW: number;
  minutes: { W: (number | null)[][]; ghi: number[]; poa: number[]; ambientTemp: number[]; clearSkyPoa: number[] };
  features: number[];
}
interface Golden {
  faultFeatureNames: string[];
  anomalyFeatureNames: string[];
  forecastFeatureNames: string[];
  classes: string[];
  windows: GoldenWindow[];
  forecasts: GoldenForecast[];
}

const golden = JSON.parse(fs.readFileSync(path.join(__dirname, '../../models/golden.json'), 'utf8')) as Golden;
const TOL = 1e-5;

describe('ML window features (fault classifier, anomaly detector)', () => {
  test('the feature lists and their order are the models\'', () => {
    expect([...FAULT_FEATURES]).toEqual(golden.faultFeatureNames);
    expect([...ANOMALY_FEATURES]).toEqual(golden.anomalyFeatureNames);
  });

  test('the golden file covers every class', () => {
    expect(new Set(golden.windows.map((w) => w.label))).toEqual(new Set(golden.classes));
    expect(golden.windows.some((w) => w.inverters[w.inverter].W.includes(null))).toBe(true);
  });

  test.each(golden.windows.map((w, i) => [i, w.label, w] as const))('window %i (%s): every feature to 1e-5', (_i, _label, w) => {
    const f = windowFeatures(w.site, w.inverters, w.inverter, w.ratedW);
    expect(f).toBeDefined();
    for (const [name, want] of Object.entries(w.features)) {
      const got = (f as Record<string, number>)[name];
      if (!(Math.abs(got - want) <= TOL)) throw new Error(`${name}: ${got} != ${want}`);
    }
  });

  test('a window at night or with fewer than 5 samples of the inverter is not scored', () => {
    const w = golden.windows[0];
    expect(windowFeatures({ ...w.site, sunElevation: w.site.sunElevation.map(() => 2) }, w.inverters, w.inverter, w.ratedW)).toBeUndefined();
    const sparse = w.inverters.map((inv, i) =>
      i !== w.inverter ? inv : Object.fromEntries(Object.entries(inv).map(([k, v]) => [k, v.map((x, m) => (m < 11 ? null : x))])),
    );
    expect(windowFeatures(w.site, sparse, w.inverter, w.ratedW)).toBeUndefined();
  });
});

describe('ML forecast features', () => {
  test('98 inputs: 16 past steps x 5, 16 clear-sky steps ahead, time of day', () => {
    expect(golden.forecastFeatureNames).toHaveLength(PAST_STEPS * 5 + HORIZON + 2);
  });

  test.each(golden.forecasts.map((g, i) => [i, g] as const))('origin %i: clear sky from the physics, every feature to 1e-5', (_i, g) => {
    const geometry = { latitude: g.latitude, longitude: g.longitude, trackerLimitDeg: g.trackerLimitDeg };
    const cs = clearSkyMinutes(g.originMs, geometry);
    // The generator's clear-sky column is float32: a few thousandths of a W/m2 at most.
    cs.forEach((v, k) => expect(Math.abs(v - g.minutes.clearSkyPoa[k])).toBeLessThan(0.01));
    const f = forecastFeatures(g.minutes, g.originMs, g.capacityW, geometry);
    expect(f).toHaveLength(g.features.length);
    f.forEach((v, k) => {
      if (!(Math.abs(v - g.features[k]) <= TOL)) throw new Error(`${golden.forecastFeatureNames[k]}: ${v} != ${g.features[k]}`);
    });
  });
});
