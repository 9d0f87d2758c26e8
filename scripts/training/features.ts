/**
 * MLInference's feature definitions in TypeScript: the reference the gateway's component uses, and
 * which test/unit/ml-features.test.ts checks against models/golden.json (computed by the training
 * pipeline's Python, scripts/training/mlfeatures.py) to 1e-5. The definitions, in words, are in
 * docs/ml-models.md; change the three together.
 *
 * Inputs are one-minute samples: the latest value of a point received within the minute, `null`
 * when none arrived. Arithmetic is plain float64 in the order written here.
 */
import { irradiance, planeOfArray, sunPosition, trackerIdealAngle } from '../simulator/physics';

/**
 * Clear-sky plane-of-array irradiance on an ideally tracking row: the simulator's physics with no
 * cloud (Haurwitz GHI, 12 % diffuse, a north-south single-axis tracker at its ideal angle).
 */
export function clearSkyPoa(timeMs: number, latitude: number, longitude: number, trackerLimitDeg: number): number {
  const sun = sunPosition(timeMs, latitude, longitude);
  return planeOfArray(sun, irradiance(sun, timeMs, 0, 0), trackerIdealAngle(sun, trackerLimitDeg));
}

export const WINDOW_MIN = 15;
export const MIN_SAMPLES = 5;
export const DAYLIGHT_ELEVATION = 5;
const PR_POA_FLOOR = 50;
const STRING_MIN_A = 0.5;

export const FAULT_FEATURES = [
  'w_mean', 'w_std', 'w_max', 'dcw_mean', 'efficiency', 'dcv_mean', 'pr_dc', 'pr_ac', 'peer_ratio',
  'heatsink_rise', 'cabinet_rise', 'heatsink_minus_cabinet', 'heatsink_slope', 'module_minus_ref',
  'string_min_ratio', 'string_max_ratio', 'st_fault_frac', 'evt_overtemp_frac', 'evt_groundfault_frac',
  'missing_frac', 'tracker_error', 'poa_mean', 'poa_std', 'poa_ghi_ratio', 'ghi_mean', 'ambient',
  'wind', 'sun_elevation', 'pr_dc_tc', 'at_cap_frac',
] as const;

export const ANOMALY_FEATURES = [
  'efficiency', 'pr_dc', 'pr_ac', 'peer_ratio', 'heatsink_minus_cabinet', 'heatsink_slope',
  'module_minus_ref', 'string_min_ratio', 'string_max_ratio', 'st_fault_frac', 'evt_overtemp_frac',
  'evt_groundfault_frac', 'missing_frac', 'tracker_error', 'heatsink_excess', 'cabinet_excess',
  'pr_dc_tc', 'at_cap_frac',
] as const;

export type WindowFeatureName = (typeof FAULT_FEATURES)[number] | (typeof ANOMALY_FEATURES)[number];

/** The weather station's and tracker's points over the window, oldest first (15 values each). */
export interface SiteWindow {
  ghi: number[];
  poa: number[];
  ambientTemp: number[];
  wsModuleTemp: number[];
  windSpeed: number[];
  trackerActual: number[];
  trackerTarget: number[];
  sunElevation: number[];
}

/**
 * One inverter's points over the window (15 values each, null = no sample that minute): model 103
 * W, DCW, DCV, TmpSnk, TmpCab; model 160 Tmp (first module) and DCA of each module as str<n>DCA;
 * stFault (1 when St is FAULT), evtOverTemp / evtGroundFault (1 when that Evt1 bit is set).
 */
export type InverterWindow = Record<string, (number | null)[]>;

function mean(x: number[]): number {
  let s = 0;
  for (const v of x) s += v;
  return s / x.length;
}

function median(x: number[]): number {
  const v = [...x].sort((a, b) => a - b);
  const k = Math.floor(v.length / 2);
  return v.length % 2 === 1 ? v[k] : (v[k - 1] + v[k]) / 2;
}

function std(x: number[]): number {
  const m = mean(x);
  let s = 0;
  for (const v of x) s += (v - m) ** 2;
  return Math.sqrt(s / x.length);
}

/** Features of inverter `i` for one window, or undefined when the window is not scored. */
export function windowFeatures(site: SiteWindow, inverters: InverterWindow[], i: number, ratedW: number): Record<WindowFeatureName, number> | undefined {
  if (mean(site.sunElevation) < DAYLIGHT_ELEVATION) return undefined;
  const inv = inverters[i];
  const idx: number[] = [];
  for (let k = 0; k < WINDOW_MIN; k++) if (inv.W[k] !== null) idx.push(k);
  const n = idx.length;
  if (n < MIN_SAMPLES) return undefined;
  const s = (point: string): number[] => idx.map((k) => inv[point][k] as number);
  const ss = (point: keyof SiteWindow): number[] => idx.map((k) => site[point][k]);
  const r = ratedW;
  const w = s('W');
  const dcw = s('DCW');
  const poaS = ss('poa');
  const ambS = ss('ambientTemp');
  const snk = s('TmpSnk');
  const cab = s('TmpCab');
  const poaFloor = Math.max(mean(poaS), PR_POA_FLOOR) / 1000;
  const peers: number[] = [];
  for (const other of inverters) {
    const ws = other.W.filter((v): v is number => v !== null);
    if (ws.length >= MIN_SAMPLES) peers.push(mean(ws));
  }
  const peer = median(peers);
  let slope = 0;
  if (n >= 2) {
    const tm = mean(idx);
    const ym = mean(snk);
    let num = 0;
    let den = 0;
    for (let k = 0; k < n; k++) {
      num += (idx[k] - tm) * (snk[k] - ym);
      den += (idx[k] - tm) ** 2;
    }
    slope = num / den;
  }
  const strings = Object.keys(inv)
    .filter((k) => k.startsWith('str') && k.endsWith('DCA'))
    .sort();
  const means = strings.map((k) => mean(s(k)));
  const ms = mean(means);
  const tmp = s('Tmp');
  const ref = ss('wsModuleTemp');
  const wmax = Math.max(...w);
  return {
    w_mean: mean(w) / r,
    w_std: std(w) / r,
    w_max: Math.max(...w) / r,
    dcw_mean: mean(dcw) / r,
    efficiency: mean(dcw) > 0.01 * r ? mean(w) / mean(dcw) : 0,
    dcv_mean: mean(s('DCV')) / 1000,
    pr_dc: mean(dcw) / (r * poaFloor),
    pr_ac: mean(w) / (r * poaFloor),
    peer_ratio: peer >= 0.01 * r ? mean(w) / peer : 1,
    heatsink_rise: mean(snk.map((v, k) => v - ambS[k])) / 10,
    cabinet_rise: mean(cab.map((v, k) => v - ambS[k])) / 10,
    heatsink_minus_cabinet: mean(snk.map((v, k) => v - cab[k])) / 10,
    heatsink_slope: slope,
    module_minus_ref: mean(tmp.map((v, k) => v - ref[k])) / 10,
    string_min_ratio: ms > STRING_MIN_A ? Math.min(...means) / ms : 1,
    string_max_ratio: ms > STRING_MIN_A ? Math.max(...means) / ms : 1,
    st_fault_frac: mean(s('stFault')),
    evt_overtemp_frac: mean(s('evtOverTemp')),
    evt_groundfault_frac: mean(s('evtGroundFault')),
    missing_frac: (WINDOW_MIN - n) / WINDOW_MIN,
    tracker_error: mean(site.trackerTarget.map((v, k) => Math.abs(v - site.trackerActual[k]))) / 10,
    poa_mean: mean(site.poa) / 1000,
    poa_std: std(site.poa) / 1000,
    poa_ghi_ratio: mean(site.poa) / Math.max(mean(site.ghi), PR_POA_FLOOR),
    ghi_mean: mean(site.ghi) / 1000,
    ambient: (mean(site.ambientTemp) - 20) / 10,
    wind: mean(site.windSpeed) / 10,
    sun_elevation: mean(site.sunElevation) / 90,
    heatsink_excess: mean(snk.map((v, k) => v - ambS[k] - (30 * w[k]) / r)) / 10,
    cabinet_excess: mean(cab.map((v, k) => v - ambS[k] - (10 * w[k]) / r)) / 10,
    pr_dc_tc: mean(dcw) / (r * poaFloor * (1 - 0.0035 * (mean(tmp) - 25))),
    at_cap_frac: wmax > 0.05 * r ? w.filter((v) => v >= wmax - 0.002 * r).length / n : 0,
  };
}

export const BLOCK_MIN = 15;
export const PAST_STEPS = 16;
export const HORIZON = 16;

export interface ForecastMinutes {
  /** Per inverter, the 240 one-minute 103.W samples before the origin (null = none). */
  W: (number | null)[][];
  ghi: number[];
  poa: number[];
  ambientTemp: number[];
}

export interface SiteGeometry {
  latitude: number;
  longitude: number;
  trackerLimitDeg: number;
}

/** Clear-sky POA at each minute from PAST_STEPS blocks before `originMs` to HORIZON blocks after it. */
export function clearSkyMinutes(originMs: number, g: SiteGeometry): number[] {
  const out: number[] = [];
  const first = originMs - PAST_STEPS * BLOCK_MIN * 60000;
  for (let k = 0; k < (PAST_STEPS + HORIZON) * BLOCK_MIN; k++) out.push(clearSkyPoa(first + k * 60000, g.latitude, g.longitude, g.trackerLimitDeg));
  return out;
}

/**
 * The forecast's 98 inputs at `originMs` (the end of a 15-minute block). `clearSky` defaults to
 * clearSkyMinutes(originMs, g).
 */
export function forecastFeatures(minutes: ForecastMinutes, originMs: number, capacityW: number, g: SiteGeometry, clearSky = clearSkyMinutes(originMs, g)): number[] {
  const power = new Array<number>(PAST_STEPS).fill(0);
  for (const w of minutes.W) {
    let last = 0;
    for (let k = 0; k < PAST_STEPS; k++) {
      const vals = w.slice(k * BLOCK_MIN, (k + 1) * BLOCK_MIN).filter((v): v is number => v !== null);
      if (vals.length > 0) last = mean(vals);
      power[k] += last;
    }
  }
  const block = (x: number[], k: number): number => mean(x.slice(k * BLOCK_MIN, (k + 1) * BLOCK_MIN));
  const f: number[] = [];
  for (let k = 0; k < PAST_STEPS; k++) {
    f.push(power[k] / capacityW, block(minutes.ghi, k) / 1000, block(minutes.poa, k) / 1000, (block(minutes.ambientTemp, k) - 20) / 10, block(clearSky, k) / 1000);
  }
  for (let h = 0; h < HORIZON; h++) f.push(block(clearSky, PAST_STEPS + h) / 1000);
  const solarH = (((originMs / 3600000 + g.longitude / 15) % 24) + 24) % 24;
  f.push(Math.sin((2 * Math.PI * solarH) / 24), Math.cos((2 * Math.PI * solarH) / 24));
  return f;
}
