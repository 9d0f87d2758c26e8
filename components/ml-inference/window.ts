/**
 * One-minute samples of the points the models read, and the windows built from them
 * (docs/ml-inference.md "Features"). The training pipeline's definition of a sample: the latest
 * value of a point received within a minute; a minute without one is missing. Each series is a
 * ring of `HISTORY_MIN` minutes (value, sample time, minute), so memory is fixed per series and a
 * late sample of a minute still in the ring replaces an older one of the same minute.
 *
 * Missing minutes: an inverter's minute is missing when its power (W) is; the models learned that
 * (missing_frac). Its other points and the site's (weather station, tracker) were always complete
 * in training, so a gap in them is filled with the point's latest earlier value within
 * `FILL_MIN` minutes; a point with none is "no data" and the window is not scored.
 */
import { solarPosition } from '../lib/solar';
import { BLOCK_MIN, HORIZON, PAST_STEPS, WINDOW_MIN, type ForecastMinutes, type InverterWindow, type SiteWindow } from './features';

/** The forecast's 4 h of history plus a margin; the windows need 15 minutes of it. */
export const HISTORY_MIN = PAST_STEPS * BLOCK_MIN + WINDOW_MIN;
/** How far back a gap in a site point or a secondary inverter point is filled from. */
export const FILL_MIN = 15;
export const MINUTE_MS = 60000;

class Ring {
  readonly v = new Float64Array(HISTORY_MIN);
  readonly ts = new Float64Array(HISTORY_MIN);
  readonly minute = new Int32Array(HISTORY_MIN).fill(-1);

  put(ts: number, v: number): void {
    const m = Math.floor(ts / MINUTE_MS);
    const i = m % HISTORY_MIN;
    if (this.minute[i] === m && this.ts[i]! > ts) return; // a later sample of this minute is already here
    this.minute[i] = m;
    this.ts[i] = ts;
    this.v[i] = v;
  }

  get(m: number): number | null {
    const i = m % HISTORY_MIN;
    return this.minute[i] === m ? this.v[i]! : null;
  }
}

/** Why a window was not built; counted per reason. */
export type Unscored = 'night' | 'too_few_samples' | 'site_data_missing' | 'inverter_data_missing' | 'not_configured';

/** Series names of an inverter window (scripts/training/features.ts InverterWindow). */
export function inverterSeries(modules: number): string[] {
  return ['W', 'DCW', 'DCV', 'TmpSnk', 'TmpCab', 'Tmp', ...Array.from({ length: modules }, (_, k) => `str${k + 1}DCA`), 'stFault', 'evtOverTemp', 'evtGroundFault'];
}

export const SITE_SERIES = ['ghi', 'poa', 'ambientTemp', 'wsModuleTemp', 'windSpeed', 'trackerActual', 'trackerTarget'] as const;
export type SiteSeries = (typeof SITE_SERIES)[number];

/** The asset every site series is kept under. */
export const SITE_KEY = '\u0000site';

export class MinuteSamples {
  private readonly rings = new Map<string, Ring>();

  put(asset: string, series: string, ts: number, v: number): void {
    const k = `${asset}\u0000${series}`;
    let r = this.rings.get(k);
    if (!r) {
      r = new Ring();
      this.rings.set(k, r);
    }
    r.put(ts, v);
  }

  get(asset: string, series: string, minute: number): number | null {
    return this.rings.get(`${asset}\u0000${series}`)?.get(minute) ?? null;
  }

  /** Minutes [first, first + n): the samples, null where missing. */
  range(asset: string, series: string, first: number, n: number): (number | null)[] {
    const r = this.rings.get(`${asset}\u0000${series}`);
    const out = new Array<number | null>(n);
    for (let k = 0; k < n; k++) out[k] = r ? r.get(first + k) : null;
    return out;
  }

  /** Like range, gaps filled with the latest earlier value within FILL_MIN minutes; undefined if a minute stays empty. */
  filled(asset: string, series: string, first: number, n: number): number[] | undefined {
    const r = this.rings.get(`${asset}\u0000${series}`);
    if (!r) return undefined;
    const out = new Array<number>(n);
    let last: number | null = null;
    let lastAt = -Infinity;
    for (let m = first - FILL_MIN; m < first; m++) {
      const v = r.get(m);
      if (v !== null) {
        last = v;
        lastAt = m;
      }
    }
    for (let k = 0; k < n; k++) {
      const m = first + k;
      const v = r.get(m);
      if (v !== null) {
        last = v;
        lastAt = m;
      } else if (last === null || m - lastAt > FILL_MIN) {
        return undefined;
      }
      out[k] = v ?? (last as number);
    }
    return out;
  }

  /** Drops every series of an asset (a reconfiguration removed it). */
  dropAsset(asset: string): void {
    for (const k of [...this.rings.keys()]) if (k.startsWith(`${asset}\u0000`)) this.rings.delete(k);
  }

  get seriesCount(): number {
    return this.rings.size;
  }
}

export interface WindowPlant {
  latitude: number;
  longitude: number;
  inverters: readonly string[];
  modules: number;
  hasTracker: boolean;
}

/** Sun elevation at each minute (degrees; SPA, as the simulator the models were trained on). */
export function sunElevations(first: number, n: number, latitude: number, longitude: number): number[] {
  const out: number[] = [];
  for (let k = 0; k < n; k++) out.push(solarPosition((first + k) * MINUTE_MS, { latitude, longitude }).elevation);
  return out;
}

/**
 * The site's window of the WINDOW_MIN minutes from `first`: weather station and tracker points,
 * gaps filled; undefined (with why) when a point has no data.
 */
export function siteWindow(s: MinuteSamples, p: WindowPlant, first: number, sun?: number[]): SiteWindow | Unscored {
  const sunElevation = sun ?? sunElevations(first, WINDOW_MIN, p.latitude, p.longitude);
  const get = (series: SiteSeries): number[] | undefined => s.filled(SITE_KEY, series, first, WINDOW_MIN);
  const ghi = get('ghi');
  const poa = get('poa');
  const ambientTemp = get('ambientTemp');
  const wsModuleTemp = get('wsModuleTemp');
  const windSpeed = get('windSpeed');
  // No tracker: fixed tilt, no tracking error (0 and 0).
  const trackerActual = p.hasTracker ? get('trackerActual') : new Array<number>(WINDOW_MIN).fill(0);
  const trackerTarget = p.hasTracker ? get('trackerTarget') : new Array<number>(WINDOW_MIN).fill(0);
  if (!ghi || !poa || !ambientTemp || !wsModuleTemp || !windSpeed || !trackerActual || !trackerTarget) return 'site_data_missing';
  return { ghi, poa, ambientTemp, wsModuleTemp, windSpeed, trackerActual, trackerTarget, sunElevation };
}

/**
 * One inverter's window: W as sampled (null = missing minute), every other series at the minutes
 * W has, gaps filled; the string and fault series as the features expect them.
 */
export function inverterWindow(s: MinuteSamples, asset: string, modules: number, first: number): InverterWindow | Unscored {
  const w = s.range(asset, 'W', first, WINDOW_MIN);
  const out: InverterWindow = { W: w };
  for (const series of inverterSeries(modules)) {
    if (series === 'W') continue;
    // Fault flags: a minute without the state or event point counts as "no fault" (the store keeps
    // numbers only, so after a restart the flags of the replayed minutes are unknown: 0).
    const flag = series === 'stFault' || series === 'evtOverTemp' || series === 'evtGroundFault';
    const full = flag ? s.range(asset, series, first, WINDOW_MIN).map((v) => v ?? 0) : s.filled(asset, series, first, WINDOW_MIN);
    if (!full) {
      // Only the minutes W has matter: a series missing where W is missing is fine.
      const raw = s.range(asset, series, first, WINDOW_MIN);
      if (w.some((x, k) => x !== null && raw[k] === null)) return 'inverter_data_missing';
      out[series] = raw;
      continue;
    }
    out[series] = full.map((v, k) => (w[k] === null ? null : v));
  }
  return out;
}

/** The forecast's history before `originMs`: per inverter W as sampled, the site's weather filled. */
export function forecastMinutes(s: MinuteSamples, inverters: readonly string[], originMs: number): ForecastMinutes | Unscored {
  const n = PAST_STEPS * BLOCK_MIN;
  const first = Math.floor(originMs / MINUTE_MS) - n;
  const ghi = s.filled(SITE_KEY, 'ghi', first, n);
  const poa = s.filled(SITE_KEY, 'poa', first, n);
  const ambientTemp = s.filled(SITE_KEY, 'ambientTemp', first, n);
  if (!ghi || !poa || !ambientTemp) return 'site_data_missing';
  return { W: inverters.map((a) => s.range(a, 'W', first, n)), ghi, poa, ambientTemp };
}

export const FORECAST_STEP_MS = BLOCK_MIN * MINUTE_MS;
export const FORECAST_HORIZON = HORIZON;
