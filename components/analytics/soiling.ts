/**
 * Soiling: soiling ratio (IEC 61724-1:2021 defines it as the ratio of the output of the soiled
 * array to what it would give clean), daily soiling loss in energy and money, the soiling rate, and
 * a cleaning recommendation. docs/analytics.md "soiling" has the formulas and the rule.
 *
 * Expected (clean) output comes from a clean reference: the weather station's POA reference cell
 * (the simulator's is never soiled) or a soiling station's clean cell where one exists, corrected
 * to the array's cell temperature. Pure functions on intervals (e.g. 1-minute bins or the
 * Aggregator's 1-minute averages), so the component chooses where the data comes from.
 */
import { AnalyticsResult, checkNumber, withDefaults } from './types';

const HOUR_MS = 3_600_000;

/** One interval: mean clean irradiance (W/m2), mean cell temperature (Cel), mean actual power of the array (W). */
export interface SoilingInterval {
  durationMs: number;
  cleanIrradianceWm2: number | null;
  cellTempC: number | null;
  actualW: number | null;
  /** Left out by the caller: curtailed (St THROTTLED), faulted, a string isolated. */
  excluded?: boolean;
}

export interface SoilingOptions {
  /** DC nameplate at STC of the array measured, W. */
  pStcW: number;
  /** Power temperature coefficient, 1/K. */
  gammaPerK: number;
  gStcWm2: number;
  /**
   * Intervals count only with clean irradiance at or above this, W/m2: soiling is a small effect,
   * measured best in strong light, where angle-of-incidence and low-light effects are smallest.
   */
  minIrradianceWm2: number;
  /**
   * Actual over expected right after a cleaning (wiring, mismatch, inverter losses when AC power is
   * used): the measured ratio is divided by it, so a clean array reads 100 %.
   */
  baselineRatio: number;
  /** Actual power at or above this fraction of clipW is clipping, not soiling: left out. */
  clipFraction: number;
  /** The inverter's AC (or DC input) limit, W; no clipping check without it. */
  clipW?: number;
  /** Intervals with the needed data must cover at least this many ms. */
  minUsedMs: number;
}

export const DEFAULT_SOILING_OPTIONS: Readonly<Omit<SoilingOptions, 'pStcW'>> = Object.freeze({
  gammaPerK: -0.0035,
  gStcWm2: 1000,
  minIrradianceWm2: 500,
  baselineRatio: 1,
  clipFraction: 0.98,
  minUsedMs: 30 * 60_000,
});

export type SoilingReason = 'insufficient_irradiance' | 'missing_data';

/**
 * Soiling ratio over the intervals, in percent:
 * SR = Σ P_actual Δt / Σ [P_STC (G_clean / G_STC) (1 + γ (T_cell - 25 °C))] Δt / baselineRatio.
 */
export function soilingRatio(intervals: readonly SoilingInterval[], options: Partial<SoilingOptions> & { pStcW: number }): AnalyticsResult<SoilingReason> {
  const o = withDefaults<SoilingOptions>({ ...DEFAULT_SOILING_OPTIONS, pStcW: options.pStcW }, options);
  checkNumber('pStcW', o.pStcW, 0, 1e10, { minExclusive: true });
  checkNumber('gammaPerK', o.gammaPerK, -0.02, 0.005);
  checkNumber('minIrradianceWm2', o.minIrradianceWm2, 0, 1500);
  checkNumber('baselineRatio', o.baselineRatio, 0.5, 1.5);
  checkNumber('clipFraction', o.clipFraction, 0.5, 1);
  if (o.clipW !== undefined) checkNumber('clipW', o.clipW, 0, 1e10, { minExclusive: true });
  checkNumber('minUsedMs', o.minUsedMs, 0, 400 * 86_400_000);
  let actualWh = 0;
  let expectedWh = 0;
  let usedMs = 0;
  let lit = 0;
  let clipped = 0;
  for (const x of intervals) {
    if (x.excluded || x.cleanIrradianceWm2 === null || x.cleanIrradianceWm2 < o.minIrradianceWm2) continue;
    lit++;
    if (x.actualW === null || x.cellTempC === null) continue;
    if (o.clipW !== undefined && x.actualW >= o.clipFraction * o.clipW) {
      clipped++;
      continue;
    }
    const h = x.durationMs / HOUR_MS;
    actualWh += x.actualW * h;
    expectedWh += o.pStcW * (x.cleanIrradianceWm2 / o.gStcWm2) * (1 + o.gammaPerK * (x.cellTempC - 25)) * h;
    usedMs += x.durationMs;
  }
  const details: Record<string, unknown> = { actualWh, expectedWh, usedMs, baselineRatio: o.baselineRatio, minIrradianceWm2: o.minIrradianceWm2, clippedIntervals: clipped };
  if (lit === 0) return { value: null, u: '%', reason: 'insufficient_irradiance', details: { ...details, reason: 'insufficient_irradiance' } };
  if (usedMs < o.minUsedMs || !(expectedWh > 0)) return { value: null, u: '%', reason: 'missing_data', details: { ...details, reason: 'missing_data', minUsedMs: o.minUsedMs } };
  return { value: (actualWh / expectedWh / o.baselineRatio) * 100, u: '%', reason: null, details };
}

/**
 * The day's soiling loss: the energy a clean array would have given beyond what the soiled one
 * gave, E_actual (1 / SR - 1), and its price. Null for a ratio that is not positive; no loss at
 * SR >= 1 (cleaner than the baseline).
 */
export function soilingLoss(soilingRatioFraction: number, actualEnergyWh: number, pricePerKWh: number): { lossWh: number; lossMoney: number } | null {
  if (!(soilingRatioFraction > 0) || !Number.isFinite(actualEnergyWh) || !Number.isFinite(pricePerKWh)) return null;
  const lossWh = soilingRatioFraction >= 1 ? 0 : actualEnergyWh * (1 / soilingRatioFraction - 1);
  return { lossWh, lossMoney: (lossWh / 1000) * pricePerKWh };
}

export interface DailyRatio {
  /** Day number (any consecutive numbering: days since the epoch in the site's zone). */
  day: number;
  /** Soiling ratio of that day, fraction (1 = clean). */
  ratio: number;
}

/**
 * Soiling rate, fraction per day, from daily ratios: the least-squares slope of the ratio over the
 * days since the last cleaning (a rise of more than `cleaningJump` from one day to the next, by
 * hand or by rain), negated (0 when the ratio does not fall). Null with fewer than `minDays` days.
 */
export function soilingRate(days: readonly DailyRatio[], cleaningJump = 0.02, minDays = 3): { ratePerDay: number | null; sinceDay: number | null; days: number } {
  const s = [...days].filter((d) => Number.isFinite(d.ratio)).sort((a, b) => a.day - b.day);
  let start = 0;
  for (let i = 1; i < s.length; i++) if ((s[i]?.ratio as number) - (s[i - 1]?.ratio as number) > cleaningJump) start = i;
  const run = s.slice(start);
  if (run.length < minDays) return { ratePerDay: null, sinceDay: run[0]?.day ?? null, days: run.length };
  const n = run.length;
  const mx = run.reduce((a, d) => a + d.day, 0) / n;
  const my = run.reduce((a, d) => a + d.ratio, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const d of run) {
    sxy += (d.day - mx) * (d.ratio - my);
    sxx += (d.day - mx) ** 2;
  }
  const slope = sxx > 0 ? sxy / sxx : 0;
  return { ratePerDay: Math.max(0, -slope), sinceDay: run[0]?.day ?? null, days: n };
}

export interface CleaningInput {
  /** Current soiling ratio, fraction. */
  soilingRatio: number;
  /** Soiling rate, fraction per day (soilingRate); null when not known yet. */
  ratePerDay: number | null;
  /** The clean array's expected energy per day, kWh (e.g. the recent days' E_actual / SR). */
  expectedDailyKWh: number;
  pricePerKWh: number;
  /** Cost of one cleaning of this array, same currency. */
  cleaningCost: number;
  /** Days until the next natural cleaning (rain forecast); null: `horizonDays`. */
  daysUntilNaturalCleaning: number | null;
  /** Horizon when no natural cleaning is forecast, days. */
  horizonDays?: number;
  /** Soiling loss accumulated since the last cleaning, same currency (Σ of soilingLoss().lossMoney). */
  lossSinceCleaning?: number;
}

export interface CleaningRecommendation {
  clean: boolean;
  /** Loss that cleaning now avoids until the next natural cleaning: price x E_daily x (1 - SR) x D. */
  avoidableLoss: number;
  horizonDays: number;
  cleaningCost: number;
  /** sqrt(2 C / (price x E_daily x rate)), days; null without a positive rate. */
  optimalIntervalDays: number | null;
  /** The classic rule, for comparison: loss since the last cleaning >= cost. */
  lossSinceCleaningExceedsCost: boolean | null;
}

/**
 * Clean when the loss that cleaning now avoids until the next natural cleaning exceeds the
 * cleaning's cost. Without cleaning, the loss fraction over the next D days is L0 + r t; cleaned
 * now it is r t (soiling starts again at the same rate), so cleaning avoids L0 x D days of the
 * daily energy: avoidable = price x E_daily x L0 x D, with L0 = 1 - SR. The soiling rate cancels;
 * it sets the optimal interval between cleanings (loss cost p E r T^2 / 2 plus C over T, least per
 * day at T* = sqrt(2 C / (p E r))), reported for planning.
 */
export function cleaningRecommendation(i: CleaningInput): CleaningRecommendation {
  checkNumber('soilingRatio', i.soilingRatio, 0, 2, { minExclusive: true });
  checkNumber('expectedDailyKWh', i.expectedDailyKWh, 0, 1e9);
  checkNumber('pricePerKWh', i.pricePerKWh, 0, 1e6);
  checkNumber('cleaningCost', i.cleaningCost, 0, 1e9);
  const horizonDays = i.daysUntilNaturalCleaning ?? checkNumber('horizonDays', i.horizonDays ?? 30, 0, 3650);
  checkNumber('daysUntilNaturalCleaning', horizonDays, 0, 3650);
  const l0 = Math.max(0, 1 - i.soilingRatio);
  const avoidableLoss = i.pricePerKWh * i.expectedDailyKWh * l0 * horizonDays;
  const denom = i.pricePerKWh * i.expectedDailyKWh * (i.ratePerDay ?? 0);
  return {
    clean: avoidableLoss > i.cleaningCost,
    avoidableLoss,
    horizonDays,
    cleaningCost: i.cleaningCost,
    optimalIntervalDays: denom > 0 ? Math.sqrt((2 * i.cleaningCost) / denom) : null,
    lossSinceCleaningExceedsCost: i.lossSinceCleaning === undefined ? null : i.lossSinceCleaning >= i.cleaningCost,
  };
}
