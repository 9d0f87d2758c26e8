/**
 * Performance ratio (IEC 61724-1:2021), weather-corrected performance ratio (NREL, Dierauf et al.
 * 2013, NREL/TP-5200-57991), time-based availability (IEC 61724-3 style) and specific yield, from
 * small accumulators fed (ts, value, quality, unit) samples. docs/analytics.md has the formulas,
 * defaults and null reasons.
 *
 * Samples are cut into fixed time bins (default 1 min, aligned to the epoch, so they also align to
 * any local midnight): irradiance, temperatures, wind and power are integrated with the trapezoid
 * rule between consecutive accepted samples no more than `maxGapMs` apart; an energy counter's
 * increase between two readings is spread evenly over the time between them. A result is then a
 * sum over the bins of a range in which irradiance was above the threshold and both irradiance and
 * energy are known, so numerator and denominator always cover the same time.
 */
import type { Quality } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import {
  admit,
  AnalyticsResult,
  BinStore,
  binRange,
  checkNumber,
  withDefaults,
  DEFAULT_ACCEPTED_QUALITIES,
  Dimension,
  FeedResult,
  spreadLinear,
  TimeRange,
} from './types';

const HOUR_MS = 3_600_000;

export interface SeriesOptions {
  /** Bin length, ms; must divide a day (60 000 = 1 min). */
  binMs: number;
  /** Consecutive samples further apart are not bridged (no integral, no counter spread over bins). */
  maxGapMs: number;
  /** How long bins are kept (covers the trailing reference of the weather-corrected PR). */
  retentionMs: number;
  acceptQualities: readonly Quality[];
}

export const DEFAULT_SERIES_OPTIONS: Readonly<SeriesOptions> = Object.freeze({
  binMs: 60_000,
  maxGapMs: 300_000,
  retentionMs: 8 * 24 * HOUR_MS,
  acceptQualities: DEFAULT_ACCEPTED_QUALITIES,
});

function seriesOptions(o: Partial<SeriesOptions> | undefined): SeriesOptions {
  const s = withDefaults<SeriesOptions>(DEFAULT_SERIES_OPTIONS, o);
  checkNumber('binMs', s.binMs, 1000, 3_600_000, { integer: true });
  // Bins must tile a day so that a local day (whole minutes from UTC) is a whole number of bins.
  if (86_400_000 % s.binMs !== 0) throw new ConfigError('binMs', `binMs: ${s.binMs} does not divide a day (86 400 000 ms); use e.g. 60000, 300000 or 900000`);
  checkNumber('maxGapMs', s.maxGapMs, 0, 86_400_000, { minExclusive: true });
  checkNumber('retentionMs', s.retentionMs, s.binMs, 400 * 86_400_000);
  return s;
}

/** One channel whose samples are joined by straight lines (trapezoid rule); a rejected sample breaks the line. */
class LinearChannel {
  private last: { ts: number; v: number } | null = null;
  private lastTs = -Infinity;
  newestAccepted: number | null = null;
  constructor(
    private readonly dim: Dimension,
    private readonly o: SeriesOptions,
    private readonly segment: (t0: number, v0: number, t1: number, v1: number) => void,
  ) {}
  add(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    if (ts === this.lastTs) return 'duplicate';
    if (ts < this.lastTs) return 'out_of_order';
    this.lastTs = ts;
    const a = admit(this.dim, v, q, unit, this.o.acceptQualities);
    if ('reject' in a) {
      this.last = null;
      return a.reject;
    }
    if (this.last !== null && ts - this.last.ts <= this.o.maxGapMs) this.segment(this.last.ts, this.last.v, ts, a.v);
    this.last = { ts, v: a.v };
    this.newestAccepted = ts;
    return 'ok';
  }
}

interface Integral {
  ms: number;
  /** value x ms */
  sum: number;
}
const integral = (): Integral => ({ ms: 0, sum: 0 });

interface WeatherBin {
  poa: Integral;
  tMod: Integral;
  tAmb: Integral;
  wind: Integral;
  cleanRef: Integral;
}

/** Means of one weather bin; null where the bin's coverage is below the minimum. */
export interface WeatherMeans {
  poaWm2: number | null;
  moduleTempC: number | null;
  ambientTempC: number | null;
  windMs: number | null;
  cleanRefWm2: number | null;
}

/**
 * The site's weather station: plane-of-array irradiance (W/m2), back-of-module temperature,
 * ambient temperature (Cel), wind speed (m/s) and, where a soiling station exists, its clean
 * reference cell (W/m2).
 */
export class WeatherAccumulator {
  readonly options: SeriesOptions;
  private readonly bins: BinStore<WeatherBin>;
  private readonly poa: LinearChannel;
  private readonly tMod: LinearChannel;
  private readonly tAmb: LinearChannel;
  private readonly wind: LinearChannel;
  private readonly cleanRef: LinearChannel;

  constructor(options?: Partial<SeriesOptions>) {
    this.options = seriesOptions(options);
    const o = this.options;
    this.bins = new BinStore(() => ({ poa: integral(), tMod: integral(), tAmb: integral(), wind: integral(), cleanRef: integral() }), Math.ceil(o.retentionMs / o.binMs));
    const into = (field: keyof WeatherBin) => (t0: number, v0: number, t1: number, v1: number) =>
      spreadLinear(t0, v0, t1, v1, o.binMs, (i, ms, sum) => {
        const b = this.bins.at(i);
        if (b !== undefined) {
          b[field].ms += ms;
          b[field].sum += sum;
        }
      });
    this.poa = new LinearChannel('irradiance', o, into('poa'));
    this.tMod = new LinearChannel('temperature', o, into('tMod'));
    this.tAmb = new LinearChannel('temperature', o, into('tAmb'));
    this.wind = new LinearChannel('speed', o, into('wind'));
    this.cleanRef = new LinearChannel('irradiance', o, into('cleanRef'));
  }

  addPoa(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.poa.add(ts, v, q, unit);
  }
  addModuleTemp(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.tMod.add(ts, v, q, unit);
  }
  addAmbientTemp(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.tAmb.add(ts, v, q, unit);
  }
  addWind(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.wind.add(ts, v, q, unit);
  }
  /** A soiling station's clean reference cell (kept clean, so it measures what clean modules receive). */
  addCleanReference(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.cleanRef.add(ts, v, q, unit);
  }

  /** Time of the newest accepted POA sample; null if none yet. */
  get lastPoaTs(): number | null {
    return this.poa.newestAccepted;
  }

  /** Mean values of bin `i`; a mean is null unless its samples cover at least `minBinCoverage` of the bin. */
  means(i: number, minBinCoverage: number): WeatherMeans {
    const b = this.bins.get(i);
    const need = minBinCoverage * this.options.binMs;
    const mean = (x: Integral | undefined): number | null => (x !== undefined && x.ms > 0 && x.ms >= need ? x.sum / x.ms : null);
    return { poaWm2: mean(b?.poa), moduleTempC: mean(b?.tMod), ambientTempC: mean(b?.tAmb), windMs: mean(b?.wind), cleanRefWm2: mean(b?.cleanRef) };
  }
}

/** SunSpec model 103 `St` numbers and their symbols. */
const ST_SYMBOLS: Record<number, string> = { 1: 'OFF', 2: 'SLEEPING', 3: 'STARTING', 4: 'MPPT', 5: 'THROTTLED', 6: 'SHUTTING_DOWN', 7: 'FAULT', 8: 'STANDBY' };

export interface InverterOptions extends SeriesOptions {
  /** Power temperature coefficient of the array, 1/K (-0.0035 = -0.35 %/K). */
  gammaPerK: number;
  /** Producing = mean AC power above this, W. */
  producingMinW: number;
  /**
   * Operating states (SunSpec 103 `St` symbols) in which a non-producing inverter is still
   * available: throttled (curtailed by the grid operator or the plant controller) and starting.
   */
  availableStates: readonly string[];
  /** A counter increase faster than this multiple of P_STC is a jump (meter swap, bad read), not energy. */
  maxCounterRateFactor: number;
}

export const DEFAULT_INVERTER_OPTIONS: Readonly<Omit<InverterOptions, keyof SeriesOptions>> = Object.freeze({
  gammaPerK: -0.0035,
  producingMinW: 0,
  availableStates: ['MPPT', 'THROTTLED', 'STARTING'],
  maxCounterRateFactor: 1.5,
});

interface InverterBin {
  power: Integral;
  counterMs: number;
  counterWh: number;
  /** Counter increases over gaps longer than maxGapMs, spread evenly: day totals only. */
  gapMs: number;
  gapWh: number;
  producingMs: number;
  availableMs: number;
  unavailableMs: number;
}

/**
 * One inverter (or any PV asset with an AC output): AC power (`103.W`), the AC energy counter
 * (`103.WH`) and the operating state (`103.St`, symbol or number). `pStcW` is the array's DC
 * nameplate at STC (sum of module ratings), W.
 */
export class InverterAccumulator {
  readonly options: InverterOptions;
  private readonly bins: BinStore<InverterBin>;
  private readonly power: LinearChannel;
  private counter: { ts: number; v: number } | null = null;
  private counterLastTs = -Infinity;
  private state: { ts: number; symbol: string } | null = null;
  private stateLastTs = -Infinity;
  /** Counter resets and jumps seen (each starts a new base). */
  counterResets = 0;

  constructor(
    readonly assetId: string,
    readonly pStcW: number,
    options?: Partial<InverterOptions>,
  ) {
    checkNumber('pStcW', pStcW, 0, 1e10, { minExclusive: true });
    this.options = { ...withDefaults(DEFAULT_INVERTER_OPTIONS, options), ...seriesOptions(options) };
    const o = this.options;
    checkNumber('gammaPerK', o.gammaPerK, -0.02, 0.005);
    checkNumber('producingMinW', o.producingMinW, 0, 1e10);
    checkNumber('maxCounterRateFactor', o.maxCounterRateFactor, 1, 100);
    this.bins = new BinStore(
      () => ({ power: integral(), counterMs: 0, counterWh: 0, gapMs: 0, gapWh: 0, producingMs: 0, availableMs: 0, unavailableMs: 0 }),
      Math.ceil(o.retentionMs / o.binMs),
    );
    this.power = new LinearChannel('power', o, (t0, w0, t1, w1) => {
      const cls = (w0 + w1) / 2 > o.producingMinW ? 'producingMs' : this.stateAvailable(t1) ? 'availableMs' : 'unavailableMs';
      spreadLinear(t0, w0, t1, w1, o.binMs, (i, ms, sum) => {
        const b = this.bins.at(i);
        if (b === undefined) return;
        b.power.ms += ms;
        b.power.sum += sum;
        b[cls] += ms;
      });
    });
  }

  addPower(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    return this.power.add(ts, v, q, unit);
  }

  /**
   * An energy counter reading (Wh, kWh, MWh). A bad reading does not break the counter (the next
   * good one still gives the energy since the last good one); a decrease is a reset and a rise
   * faster than maxCounterRateFactor x P_STC a jump: both only start a new base.
   */
  addEnergy(ts: number, v: unknown, q: Quality, unit?: string): FeedResult {
    if (ts === this.counterLastTs) return 'duplicate';
    if (ts < this.counterLastTs) return 'out_of_order';
    this.counterLastTs = ts;
    const a = admit('energy', v, q, unit, this.options.acceptQualities);
    if ('reject' in a) return a.reject;
    const base = this.counter;
    this.counter = { ts, v: a.v };
    if (base === null) return 'ok';
    const dWh = a.v - base.v;
    const dt = ts - base.ts;
    if (dWh < 0) {
      this.counterResets++;
      return 'counter_reset';
    }
    if ((dWh * HOUR_MS) / dt > this.options.maxCounterRateFactor * this.pStcW) {
      this.counterResets++;
      return 'counter_jump';
    }
    const rate = dWh / dt;
    const gap = dt > this.options.maxGapMs;
    spreadLinear(base.ts, rate, ts, rate, this.options.binMs, (i, ms, wh) => {
      const b = this.bins.at(i);
      if (b === undefined) return;
      if (gap) {
        b.gapMs += ms;
        b.gapWh += wh;
      } else {
        b.counterMs += ms;
        b.counterWh += wh;
      }
    });
    return 'ok';
  }

  /** Operating state: a SunSpec 103 `St` symbol (`MPPT`) or its number (4). */
  addState(ts: number, v: unknown, q: Quality): FeedResult {
    if (ts === this.stateLastTs) return 'duplicate';
    if (ts < this.stateLastTs) return 'out_of_order';
    this.stateLastTs = ts;
    if (v === null || v === undefined) return 'no_value';
    if (!this.options.acceptQualities.includes(q)) return 'bad_quality';
    const symbol = typeof v === 'number' ? ST_SYMBOLS[v] : typeof v === 'string' ? v : undefined;
    if (symbol === undefined) return 'not_finite';
    this.state = { ts, symbol };
    return 'ok';
  }

  private stateAvailable(at: number): boolean {
    const s = this.state;
    return s !== null && at - s.ts <= this.options.maxGapMs && this.options.availableStates.includes(s.symbol);
  }

  /**
   * AC energy of bin `i`, Wh, scaled to the whole bin: from the counter when its readings cover at
   * least `minBinCoverage` of the bin, else from the power integral; null when neither does.
   */
  binEnergy(i: number, minBinCoverage: number): { wh: number; source: 'counter' | 'power' } | null {
    const b = this.bins.get(i);
    if (b === undefined) return null;
    const binMs = this.options.binMs;
    const need = Math.max(1, minBinCoverage * binMs);
    if (b.counterMs >= need) return { wh: (b.counterWh * binMs) / b.counterMs, source: 'counter' };
    if (b.power.ms >= need) return { wh: (b.power.sum / HOUR_MS) * (binMs / b.power.ms), source: 'power' };
    return null;
  }

  /** Energy of bin `i` for day totals: binEnergy, else the counter increase spread over a gap. */
  binTotalEnergy(i: number, minBinCoverage: number): number | null {
    const e = this.binEnergy(i, minBinCoverage);
    if (e !== null) return e.wh;
    const b = this.bins.get(i);
    return b !== undefined && b.gapMs > 0 ? b.gapWh + (b.counterMs > 0 ? b.counterWh : 0) : null;
  }

  /** Time of bin `i` spent producing, available (not producing) and unavailable, ms; the rest is unknown. */
  binAvailability(i: number): { producingMs: number; availableMs: number; unavailableMs: number } {
    const b = this.bins.get(i);
    return b === undefined ? { producingMs: 0, availableMs: 0, unavailableMs: 0 } : { producingMs: b.producingMs, availableMs: b.availableMs, unavailableMs: b.unavailableMs };
  }
}

// ---------------------------------------------------------------------------------------------
// The formulas on intervals (also usable on data from the store's rollups).

/** One interval's energy and irradiation: E_AC (Wh), H_POA (Wh/m2), and its cell temperature (Cel). */
export interface PrInterval {
  eAcWh: number;
  hPoaWhM2: number;
  tCellC?: number | null;
}

/** IEC 61724-1: PR = (Σ E_AC / P_STC) / (Σ H_POA / G_STC); null when Σ H_POA is 0. A fraction, not percent. */
export function prFromIntervals(intervals: readonly PrInterval[], pStcW: number, gStcWm2 = 1000): number | null {
  let e = 0;
  let h = 0;
  for (const x of intervals) {
    e += x.eAcWh;
    h += x.hPoaWhM2;
  }
  return h > 0 && pStcW > 0 ? e / pStcW / (h / gStcWm2) : null;
}

/**
 * NREL weather-corrected PR: Σ E_AC / Σ [P_STC (H_POA / G_STC) (1 - γ (T_cell_typ_avg - T_cell))],
 * with H_POA = G_POA x Δt per interval. Null when an interval lacks T_cell or the denominator is not positive.
 */
export function wcprFromIntervals(intervals: readonly PrInterval[], pStcW: number, gammaPerK: number, tCellTypAvgC: number, gStcWm2 = 1000): number | null {
  let e = 0;
  let expected = 0;
  for (const x of intervals) {
    if (x.tCellC === null || x.tCellC === undefined) return null;
    e += x.eAcWh;
    expected += pStcW * (x.hPoaWhM2 / gStcWm2) * (1 - gammaPerK * (tCellTypAvgC - x.tCellC));
  }
  return expected > 0 ? e / expected : null;
}

/** Irradiance-weighted average cell temperature Σ H T_cell / Σ H over intervals with T_cell; null without any. */
export function irradianceWeightedCellTemp(intervals: readonly PrInterval[]): number | null {
  let ht = 0;
  let h = 0;
  for (const x of intervals) {
    if (x.tCellC === null || x.tCellC === undefined || !(x.hPoaWhM2 > 0)) continue;
    ht += x.hPoaWhM2 * x.tCellC;
    h += x.hPoaWhM2;
  }
  return h > 0 ? ht / h : null;
}

/** Cell temperature from the back-of-module temperature: T_cell = T_m + G/1000 x ΔT (King et al. 2004; ΔT 3 °C open rack). */
export function cellTempFromModule(moduleTempC: number, poaWm2: number, deltaTC = 3): number {
  return moduleTempC + (poaWm2 / 1000) * deltaTC;
}

/**
 * Sandia module temperature model (King et al. 2004, open rack glass/cell/polymer: a -3.56,
 * b -0.075, ΔT 3 °C): T_m = G e^(a + b WS) + T_a, T_cell = T_m + G/1000 ΔT.
 */
export function cellTempSandia(poaWm2: number, ambientTempC: number, windMs: number, a = -3.56, b = -0.075, deltaTC = 3): number {
  return cellTempFromModule(poaWm2 * Math.exp(a + b * windMs) + ambientTempC, poaWm2, deltaTC);
}


// ---------------------------------------------------------------------------------------------
// Results over a time range: the rolling window (rollingWindow in types.ts) or a local day (localDay).

export interface EvalOptions {
  /** G_STC, W/m2. */
  gStcWm2: number;
  /** A bin counts only with mean POA at or above this, W/m2 (IEC 61724-1 filtering; no PR from dawn watts). */
  minIrradianceWm2: number;
  /** All bins with known POA below this: `night` rather than `insufficient_irradiance`, W/m2. */
  nightIrradianceWm2: number;
  /** Share of the candidate bins (lit, or POA unknown during daylight) that must be usable, else null. */
  minCoverage: number;
  /** Share of a bin that samples of a series must cover for the bin to have a value. */
  minBinCoverage: number;
  /** With `range.now`: the newest POA sample older than this -> `stale_weather`. */
  staleWeatherMs: number;
  /**
   * Whether the sun is up at an instant (solar elevation > 0). Bins with unknown POA count against
   * coverage only in daylight when given; without it every bin with unknown POA does.
   */
  isDaylight?: (ts: number) => boolean;
}

export const DEFAULT_EVAL_OPTIONS: Readonly<EvalOptions> = Object.freeze({
  gStcWm2: 1000,
  minIrradianceWm2: 50,
  nightIrradianceWm2: 5,
  minCoverage: 0.8,
  minBinCoverage: 0.5,
  staleWeatherMs: 300_000,
});

/** A range to evaluate; `now` (the evaluation time) enables the stale-weather check (rolling windows). */
export interface EvalRange extends TimeRange {
  now?: number;
}

export type PrReason = 'night' | 'insufficient_irradiance' | 'missing_irradiance' | 'stale_weather' | 'missing_energy' | 'coverage_below_min';
export type WcprReason = PrReason | 'missing_temperature';
export type AvailabilityReason = 'night' | 'insufficient_irradiance' | 'missing_irradiance' | 'stale_weather' | 'coverage_below_min';
export type YieldReason = 'missing_energy' | 'coverage_below_min';

function evalOptions<T extends EvalOptions>(defaults: Readonly<T>, o: Partial<T> | undefined): T {
  const r = withDefaults<T>(defaults, o);
  checkNumber('gStcWm2', r.gStcWm2, 0, 2000, { minExclusive: true });
  checkNumber('minIrradianceWm2', r.minIrradianceWm2, 0, 1500, { minExclusive: true });
  checkNumber('nightIrradianceWm2', r.nightIrradianceWm2, 0, r.minIrradianceWm2);
  checkNumber('minCoverage', r.minCoverage, 0, 1);
  checkNumber('minBinCoverage', r.minBinCoverage, 0, 1, { minExclusive: true });
  checkNumber('staleWeatherMs', r.staleWeatherMs, 0, 86_400_000, { minExclusive: true });
  return r;
}

interface LitBin {
  i: number;
  m: WeatherMeans & { poaWm2: number };
}

interface Scan {
  reason: PrReason | null;
  lit: LitBin[];
  /** Bins that should have counted: lit, plus bins with unknown POA (in daylight when isDaylight is given). */
  candidates: number;
  unknown: number;
  maxPoaWm2: number | null;
}

function scanWeather(weather: WeatherAccumulator, range: EvalRange, o: EvalOptions): Scan {
  const binMs = weather.options.binMs;
  const scan: Scan = { reason: null, lit: [], candidates: 0, unknown: 0, maxPoaWm2: null };
  if (range.now !== undefined) {
    const last = weather.lastPoaTs;
    if (last === null) return { ...scan, reason: 'missing_irradiance' };
    if (range.now - last > o.staleWeatherMs) return { ...scan, reason: 'stale_weather' };
  }
  const { first, last } = binRange(range.from, range.to, binMs);
  let known = 0;
  for (let i = first; i <= last; i++) {
    const m = weather.means(i, o.minBinCoverage);
    if (m.poaWm2 === null) {
      if (o.isDaylight === undefined || o.isDaylight(i * binMs + binMs / 2)) {
        scan.unknown++;
        scan.candidates++;
      }
      continue;
    }
    known++;
    scan.maxPoaWm2 = Math.max(scan.maxPoaWm2 ?? -Infinity, m.poaWm2);
    if (m.poaWm2 >= o.minIrradianceWm2) {
      scan.lit.push({ i, m: m as LitBin['m'] });
      scan.candidates++;
    }
  }
  if (known === 0) scan.reason = 'missing_irradiance';
  else if (scan.lit.length === 0) scan.reason = (scan.maxPoaWm2 ?? 0) < o.nightIrradianceWm2 ? 'night' : 'insufficient_irradiance';
  return scan;
}

function asList(inverters: InverterAccumulator | readonly InverterAccumulator[]): readonly InverterAccumulator[] {
  const list = Array.isArray(inverters) ? (inverters as readonly InverterAccumulator[]) : [inverters as InverterAccumulator];
  if (list.length === 0) throw new ConfigError('inverters', 'inverters: at least one inverter is needed');
  const binMs = list[0]?.options.binMs;
  if (list.some((x) => x.options.binMs !== binMs)) throw new ConfigError('binMs', 'binMs: every inverter and the weather station must use the same bins');
  return list;
}

function nullResult<R extends string>(reason: R, details: Record<string, unknown>, u?: string): AnalyticsResult<R> {
  return { value: null, ...(u !== undefined ? { u } : {}), reason, details: { ...details, reason } };
}

/** Lit bins with the energy of every inverter: PR intervals, each with its per-inverter energies. */
function pairEnergy(list: readonly InverterAccumulator[], lit: readonly LitBin[], binMs: number, o: EvalOptions) {
  const used: { bin: LitBin; hPoaWhM2: number; perInverterWh: number[]; eAcWh: number }[] = [];
  const energySource = { counter: 0, power: 0 };
  for (const bin of lit) {
    const per: number[] = [];
    for (const inv of list) {
      const e = inv.binEnergy(bin.i, o.minBinCoverage);
      if (e === null) break;
      per.push(e.wh);
    }
    if (per.length !== list.length) continue;
    for (const inv of list) energySource[inv.binEnergy(bin.i, o.minBinCoverage)?.source ?? 'power']++;
    used.push({ bin, hPoaWhM2: (bin.m.poaWm2 * binMs) / HOUR_MS, perInverterWh: per, eAcWh: per.reduce((a, b) => a + b, 0) });
  }
  return { used, energySource };
}

/**
 * IEC 61724-1 performance ratio over `range`, per inverter (one accumulator) or per site (several:
 * Σ E_AC over Σ P_STC). Value in percent.
 */
export function performanceRatio(
  inverters: InverterAccumulator | readonly InverterAccumulator[],
  weather: WeatherAccumulator,
  range: EvalRange,
  options?: Partial<EvalOptions>,
): AnalyticsResult<PrReason> {
  const list = asList(inverters);
  const o = evalOptions(DEFAULT_EVAL_OPTIONS, options);
  const binMs = weather.options.binMs;
  const pStcW = list.reduce((a, x) => a + x.pStcW, 0);
  const base = { from: range.from, to: range.to, pStcW, assets: list.map((x) => x.assetId), minIrradianceWm2: o.minIrradianceWm2 };
  const scan = scanWeather(weather, range, o);
  if (scan.reason !== null) return nullResult(scan.reason, { ...base, coverage: 0 }, '%');
  const { used, energySource } = pairEnergy(list, scan.lit, binMs, o);
  if (used.length === 0) return nullResult('missing_energy', { ...base, coverage: 0, binsLit: scan.lit.length }, '%');
  const eAcWh = used.reduce((a, x) => a + x.eAcWh, 0);
  const hPoaWhM2 = used.reduce((a, x) => a + x.hPoaWhM2, 0);
  const coverage = used.length / scan.candidates;
  const details = { ...base, eAcWh, hPoaWhM2, coverage, binsUsed: used.length, binsLit: scan.lit.length, binsUnknown: scan.unknown, binMs, energySource };
  if (coverage < o.minCoverage) return nullResult('coverage_below_min', { ...details, minCoverage: o.minCoverage }, '%');
  const pr = prFromIntervals([{ eAcWh, hPoaWhM2 }], pStcW, o.gStcWm2) as number;
  return { value: pr * 100, u: '%', reason: null, details };
}

export interface WcprOptions extends EvalOptions {
  /** `module`: T_cell from the back-of-module sensor; `ambient`: Sandia model from ambient and wind; `auto`: module where known, else ambient. */
  cellTemperature: 'auto' | 'module' | 'ambient';
  /** ΔT between cell and back of module at 1000 W/m2, °C (3 for open rack). */
  deltaTC: number;
  sandiaA: number;
  sandiaB: number;
  /** T_cell_typ_avg, °C, when configured (e.g. from a typical meteorological year). */
  tCellTypAvgC?: number;
  /** Otherwise: the irradiance-weighted cell temperature over this trailing period ending at range.to, ms ... */
  referenceMs: number;
  /** ... if it holds at least this much irradiation, Wh/m2; else the evaluated period itself. */
  minReferenceWhM2: number;
}

export const DEFAULT_WCPR_OPTIONS: Readonly<WcprOptions> = Object.freeze({
  ...DEFAULT_EVAL_OPTIONS,
  cellTemperature: 'auto' as const,
  deltaTC: 3,
  sandiaA: -3.56,
  sandiaB: -0.075,
  referenceMs: 7 * 24 * HOUR_MS,
  minReferenceWhM2: 3000,
});

/** Cell temperature of a bin from its weather means, with the source used; null when the inputs are missing. */
export function binCellTemp(m: WeatherMeans, o: Pick<WcprOptions, 'cellTemperature' | 'deltaTC' | 'sandiaA' | 'sandiaB'>): { c: number; source: 'module' | 'ambient' } | null {
  if (m.poaWm2 === null) return null;
  if (o.cellTemperature !== 'ambient' && m.moduleTempC !== null) return { c: cellTempFromModule(m.moduleTempC, m.poaWm2, o.deltaTC), source: 'module' };
  if (o.cellTemperature !== 'module' && m.ambientTempC !== null && m.windMs !== null) {
    return { c: cellTempSandia(m.poaWm2, m.ambientTempC, m.windMs, o.sandiaA, o.sandiaB, o.deltaTC), source: 'ambient' };
  }
  return null;
}

/**
 * NREL weather-corrected PR over `range` (per inverter or per site; each inverter's own γ).
 * Value in percent; details carry the uncorrected PR of the same bins for comparison.
 */
export function weatherCorrectedPr(
  inverters: InverterAccumulator | readonly InverterAccumulator[],
  weather: WeatherAccumulator,
  range: EvalRange,
  options?: Partial<WcprOptions>,
): AnalyticsResult<WcprReason> {
  const list = asList(inverters);
  const o = evalOptions(DEFAULT_WCPR_OPTIONS, options);
  if (!['auto', 'module', 'ambient'].includes(o.cellTemperature)) throw new ConfigError('cellTemperature', `cellTemperature: "${String(o.cellTemperature)}" is not one of auto, module, ambient`);
  checkNumber('deltaTC', o.deltaTC, 0, 20);
  checkNumber('referenceMs', o.referenceMs, 0, weather.options.retentionMs);
  checkNumber('minReferenceWhM2', o.minReferenceWhM2, 0, 1e7);
  if (o.tCellTypAvgC !== undefined) checkNumber('tCellTypAvgC', o.tCellTypAvgC, -50, 100);
  const binMs = weather.options.binMs;
  const pStcW = list.reduce((a, x) => a + x.pStcW, 0);
  const base = { from: range.from, to: range.to, pStcW, assets: list.map((x) => x.assetId), gammaPerK: list.map((x) => x.options.gammaPerK), minIrradianceWm2: o.minIrradianceWm2 };
  const scan = scanWeather(weather, range, o);
  if (scan.reason !== null) return nullResult(scan.reason, { ...base, coverage: 0 }, '%');
  const { used: withEnergy, energySource } = pairEnergy(list, scan.lit, binMs, o);
  if (withEnergy.length === 0) return nullResult('missing_energy', { ...base, coverage: 0, binsLit: scan.lit.length }, '%');
  const tCellSource = { module: 0, ambient: 0 };
  const used: ((typeof withEnergy)[number] & { tCellC: number })[] = [];
  for (const u of withEnergy) {
    const t = binCellTemp(u.bin.m, o);
    if (t === null) continue;
    tCellSource[t.source]++;
    used.push({ ...u, tCellC: t.c });
  }
  if (used.length === 0) return nullResult('missing_temperature', { ...base, coverage: 0, binsLit: scan.lit.length }, '%');

  // T_cell_typ_avg: configured, else the trailing reference, else this period (then WCPR = PR exactly).
  let tCellTypAvgC = o.tCellTypAvgC ?? null;
  let tCellRefSource: 'configured' | 'trailing' | 'period' = 'configured';
  let referenceWhM2: number | undefined;
  if (tCellTypAvgC === null) {
    const ref: PrInterval[] = [];
    const { first, last } = binRange(range.to - o.referenceMs, range.to, binMs);
    for (let i = first; i <= last; i++) {
      const m = weather.means(i, o.minBinCoverage);
      if (m.poaWm2 === null || m.poaWm2 < o.minIrradianceWm2) continue;
      const t = binCellTemp(m, o);
      if (t !== null) ref.push({ eAcWh: 0, hPoaWhM2: (m.poaWm2 * binMs) / HOUR_MS, tCellC: t.c });
    }
    referenceWhM2 = ref.reduce((a, x) => a + x.hPoaWhM2, 0);
    if (referenceWhM2 >= o.minReferenceWhM2 && referenceWhM2 > 0) {
      tCellTypAvgC = irradianceWeightedCellTemp(ref);
      tCellRefSource = 'trailing';
    } else {
      tCellTypAvgC = irradianceWeightedCellTemp(used);
      tCellRefSource = 'period';
    }
  }
  const tTyp = tCellTypAvgC as number;
  let eAcWh = 0;
  let expectedWh = 0;
  let hPoaWhM2 = 0;
  for (const u of used) {
    eAcWh += u.eAcWh;
    hPoaWhM2 += u.hPoaWhM2;
    list.forEach((inv) => {
      expectedWh += inv.pStcW * (u.hPoaWhM2 / o.gStcWm2) * (1 - inv.options.gammaPerK * (tTyp - u.tCellC));
    });
  }
  const coverage = used.length / scan.candidates;
  const details = {
    ...base,
    eAcWh,
    expectedWh,
    hPoaWhM2,
    coverage,
    tCellTypAvgC: tTyp,
    tCellRefSource,
    ...(referenceWhM2 !== undefined ? { referenceWhM2 } : {}),
    tCellAvgC: irradianceWeightedCellTemp(used),
    tCellSource,
    prUncorrected: ((eAcWh / pStcW) / (hPoaWhM2 / o.gStcWm2)) * 100,
    binsUsed: used.length,
    binsLit: scan.lit.length,
    binsUnknown: scan.unknown,
    binMs,
    energySource,
  };
  if (coverage < o.minCoverage) return nullResult('coverage_below_min', { ...details, minCoverage: o.minCoverage }, '%');
  if (!(expectedWh > 0)) return nullResult('insufficient_irradiance', details, '%');
  return { value: (eAcWh / expectedWh) * 100, u: '%', reason: null, details };
}

/**
 * Time-based availability of one inverter over `range` (IEC 61724-3 style), in percent: time
 * producing or available while POA is at or above the threshold / time with POA at or above it
 * and the inverter's state known. Time without inverter data (communication loss) is unknown: in
 * neither numerator nor denominator, reported as `unknownMs` with the bounds it leaves open
 * (`lowerBound`: all of it unavailable; `upperBound`: all available); too much of it -> null.
 */
export function availability(inverter: InverterAccumulator, weather: WeatherAccumulator, range: EvalRange, options?: Partial<EvalOptions>): AnalyticsResult<AvailabilityReason> {
  const o = evalOptions(DEFAULT_EVAL_OPTIONS, options);
  const binMs = weather.options.binMs;
  const base = { from: range.from, to: range.to, assetId: inverter.assetId, minIrradianceWm2: o.minIrradianceWm2 };
  const scan = scanWeather(weather, range, o);
  if (scan.reason !== null) return nullResult(scan.reason as AvailabilityReason, { ...base, coverage: 0 }, '%');
  let producingMs = 0;
  let availableMs = 0;
  let unavailableMs = 0;
  for (const { i } of scan.lit) {
    const a = inverter.binAvailability(i);
    producingMs += a.producingMs;
    availableMs += a.availableMs;
    unavailableMs += a.unavailableMs;
  }
  const knownMs = producingMs + availableMs + unavailableMs;
  const expectedMs = scan.candidates * binMs;
  const unknownMs = Math.max(0, expectedMs - knownMs);
  const coverage = expectedMs > 0 ? knownMs / expectedMs : 0;
  const up = producingMs + availableMs;
  const details = {
    ...base,
    producingMs,
    availableMs,
    unavailableMs,
    unknownMs,
    litMs: scan.lit.length * binMs,
    coverage,
    lowerBound: expectedMs > 0 ? (up / expectedMs) * 100 : null,
    upperBound: expectedMs > 0 ? ((up + unknownMs) / expectedMs) * 100 : null,
  };
  if (knownMs === 0 || coverage < o.minCoverage) return nullResult('coverage_below_min', { ...details, minCoverage: o.minCoverage }, '%');
  return { value: (up / knownMs) * 100, u: '%', reason: null, details };
}

/**
 * Specific yield over `range` (normally a local day): Σ E_AC / P_STC, kWh/kWp (= Wh/Wp). Energy
 * includes counter increases across data gaps (a total needs no bin-level pairing). Coverage is
 * the share of the candidate bins (weather given: lit or POA unknown in daylight; else every bin)
 * with energy from every inverter.
 */
export function specificYield(
  inverters: InverterAccumulator | readonly InverterAccumulator[],
  range: TimeRange,
  weather?: WeatherAccumulator | null,
  options?: Partial<EvalOptions>,
): AnalyticsResult<YieldReason> {
  const list = asList(inverters);
  const o = evalOptions(DEFAULT_EVAL_OPTIONS, options);
  const binMs = list[0]?.options.binMs as number;
  const pStcW = list.reduce((a, x) => a + x.pStcW, 0);
  let candidates: number[];
  if (weather) {
    const scan = scanWeather(weather, { from: range.from, to: range.to }, o);
    const lit = new Set(scan.lit.map((b) => b.i));
    candidates = [];
    const { first, last } = binRange(range.from, range.to, binMs);
    for (let i = first; i <= last; i++) {
      if (lit.has(i)) candidates.push(i);
      else if (weather.means(i, o.minBinCoverage).poaWm2 === null && (o.isDaylight === undefined || o.isDaylight(i * binMs + binMs / 2))) candidates.push(i);
    }
  } else {
    const { first, last } = binRange(range.from, range.to, binMs);
    candidates = Array.from({ length: Math.max(0, last - first + 1) }, (_, k) => first + k);
  }
  let eAcWh = 0;
  let anyEnergy = false;
  const { first, last } = binRange(range.from, range.to, binMs);
  for (let i = first; i <= last; i++) {
    for (const inv of list) {
      const e = inv.binTotalEnergy(i, o.minBinCoverage);
      if (e !== null) {
        eAcWh += e;
        anyEnergy = true;
      }
    }
  }
  const covered = candidates.filter((i) => list.every((inv) => inv.binTotalEnergy(i, o.minBinCoverage) !== null)).length;
  const coverage = candidates.length > 0 ? covered / candidates.length : anyEnergy ? 1 : 0;
  const details = { from: range.from, to: range.to, pStcW, assets: list.map((x) => x.assetId), eAcWh, coverage };
  if (!anyEnergy) return nullResult('missing_energy', details, 'kWh/kWp');
  if (coverage < o.minCoverage) return nullResult('coverage_below_min', { ...details, minCoverage: o.minCoverage }, 'kWh/kWp');
  return { value: eAcWh / pStcW, u: 'kWh/kWp', reason: null, details };
}
