/**
 * Equipment health score 0-100 per asset, explainable: five factors, each a sub-score 0..1 times
 * its weight (weights sum to 100), every factor with its input and points in `details`.
 * docs/analytics.md "health_score" has the table. Also the small accumulators that feed it: alarm
 * history, thermal stress and communication quality over a trailing week in hourly buckets.
 */
import type { Quality, Severity } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import { admit, AnalyticsResult, checkNumber, clamp01, median, withDefaults } from './types';

const HOUR_MS = 3_600_000;
const WEEK_MS = 7 * 24 * HOUR_MS;

export const HEALTH_FACTORS = ['availability', 'prVsPeers', 'alarms', 'thermal', 'comms'] as const;
export type HealthFactor = (typeof HEALTH_FACTORS)[number];

export interface HealthOptions {
  /** Points per factor; must sum to 100. */
  weights: Readonly<Record<HealthFactor, number>>;
  /** Availability (%) at or below which the factor gives 0 points; 100 % gives all. */
  availabilityFloorPct: number;
  /** PR over the peers' median PR: 0 points at or below the floor, all at or above `full`. */
  prRatioFloor: number;
  prRatioFull: number;
  /** Penalty per alarm raised in the window, by severity; the factor is 0 at `alarmBudget` penalty points. */
  alarmPenalty: Readonly<Record<Severity, number>>;
  alarmBudget: number;
  /** Share of observed time above the temperature limit that gives 0 points (linear from 0). */
  thermalShareZero: number;
  /** Share of good samples: 0 points at or below the floor, all at or above `full`. */
  commsFloor: number;
  commsFull: number;
  /** Factors with data needed for a score. */
  minFactors: number;
}

export const DEFAULT_HEALTH_OPTIONS: Readonly<HealthOptions> = Object.freeze({
  weights: Object.freeze({ availability: 30, prVsPeers: 25, alarms: 20, thermal: 15, comms: 10 }),
  availabilityFloorPct: 80,
  prRatioFloor: 0.8,
  prRatioFull: 0.97,
  alarmPenalty: Object.freeze({ critical: 10, high: 5, medium: 2, low: 1 }),
  alarmBudget: 20,
  thermalShareZero: 0.05,
  commsFloor: 0.9,
  commsFull: 0.99,
  minFactors: 3,
});

export interface HealthInputs {
  /** availability() value over the period, %; null if unknown. */
  availabilityPct: number | null;
  /** This asset's PR and its peers' (same site, same period), %. */
  prPct: number | null;
  peerPrPct: readonly number[];
  /** Alarm raises in the window (AlarmHistory.counts()); null if unknown. */
  alarms: Readonly<Record<Severity, number>> | null;
  /** Time above the temperature limit and time observed (ThermalStress.totals()). */
  thermal: { aboveMs: number; observedMs: number } | null;
  /** Samples of the asset by quality (CommQuality.totals()). */
  comms: { good: number; total: number } | null;
}

export type HealthReason = 'insufficient_data';

interface FactorDetail {
  weight: number;
  input: unknown;
  /** 0..1, null when the factor has no data. */
  subscore: number | null;
  points: number | null;
  note: string;
}

function checkOptions(o: HealthOptions): void {
  let sum = 0;
  for (const f of HEALTH_FACTORS) sum += checkNumber(`weights.${f}`, o.weights[f], 0, 100);
  if (Math.abs(sum - 100) > 1e-9) throw new ConfigError('weights', `weights: the five weights must sum to 100, not ${sum}`);
  checkNumber('availabilityFloorPct', o.availabilityFloorPct, 0, 100, { minExclusive: false });
  checkNumber('prRatioFull', o.prRatioFull, o.prRatioFloor, 2, { minExclusive: true });
  checkNumber('alarmBudget', o.alarmBudget, 0, 1e6, { minExclusive: true });
  checkNumber('thermalShareZero', o.thermalShareZero, 0, 1, { minExclusive: true });
  checkNumber('commsFull', o.commsFull, o.commsFloor, 1, { minExclusive: true });
  checkNumber('minFactors', o.minFactors, 1, 5, { integer: true });
}

/**
 * Health score 0-100. A factor without data is left out and the others' weights are scaled up to
 * 100 (details say which); with fewer than `minFactors` factors the score is null.
 */
export function healthScore(inputs: HealthInputs, options?: Partial<HealthOptions>): AnalyticsResult<HealthReason> {
  const o = withDefaults<HealthOptions>(DEFAULT_HEALTH_OPTIONS, options);
  checkOptions(o);
  const f: Record<HealthFactor, Omit<FactorDetail, 'weight' | 'points'>> = {} as never;

  const a = inputs.availabilityPct;
  f.availability = { input: a, subscore: a === null ? null : clamp01((a - o.availabilityFloorPct) / (100 - o.availabilityFloorPct)), note: `0 at <= ${o.availabilityFloorPct} %, full at 100 %` };

  const peers = median(inputs.peerPrPct.filter((x) => Number.isFinite(x)));
  const ratio = inputs.prPct !== null && peers !== null && peers > 0 ? inputs.prPct / peers : null;
  f.prVsPeers = {
    input: { prPct: inputs.prPct, peersMedianPct: peers, ratio },
    subscore: ratio === null ? null : clamp01((ratio - o.prRatioFloor) / (o.prRatioFull - o.prRatioFloor)),
    note: `PR / peers' median PR: 0 at <= ${o.prRatioFloor}, full at >= ${o.prRatioFull}`,
  };

  const al = inputs.alarms;
  const penalty = al === null ? null : (Object.keys(o.alarmPenalty) as Severity[]).reduce((s, k) => s + (al[k] ?? 0) * o.alarmPenalty[k], 0);
  f.alarms = { input: al === null ? null : { ...al, penalty }, subscore: penalty === null ? null : clamp01(1 - penalty / o.alarmBudget), note: `penalty critical ${o.alarmPenalty.critical}, high ${o.alarmPenalty.high}, medium ${o.alarmPenalty.medium}, low ${o.alarmPenalty.low} per raise; 0 at ${o.alarmBudget}` };

  const th = inputs.thermal;
  const share = th === null || th.observedMs <= 0 ? null : th.aboveMs / th.observedMs;
  f.thermal = { input: th === null ? null : { ...th, share }, subscore: share === null ? null : clamp01(1 - share / o.thermalShareZero), note: `share of time above the limit: full at 0, 0 at >= ${o.thermalShareZero}` };

  const c = inputs.comms;
  const good = c === null || c.total <= 0 ? null : c.good / c.total;
  f.comms = { input: c === null ? null : { ...c, goodShare: good }, subscore: good === null ? null : clamp01((good - o.commsFloor) / (o.commsFull - o.commsFloor)), note: `share of good samples: 0 at <= ${o.commsFloor}, full at >= ${o.commsFull}` };

  const present = HEALTH_FACTORS.filter((k) => f[k].subscore !== null);
  const presentWeight = present.reduce((s, k) => s + o.weights[k], 0);
  const factors: Record<string, FactorDetail> = {};
  let score = 0;
  for (const k of HEALTH_FACTORS) {
    const sub = f[k].subscore;
    // A missing factor's weight is shared out over the present ones in proportion to their weights.
    const weight = sub === null || presentWeight === 0 ? o.weights[k] : (o.weights[k] * 100) / presentWeight;
    const points = sub === null ? null : sub * weight;
    if (points !== null) score += points;
    factors[k] = { ...f[k], weight, points };
  }
  const details = { factors, missing: HEALTH_FACTORS.filter((k) => f[k].subscore === null), configuredWeights: o.weights };
  if (present.length < o.minFactors || presentWeight === 0) return { value: null, reason: 'insufficient_data', details: { ...details, reason: 'insufficient_data', minFactors: o.minFactors } };
  return { value: score, reason: null, details };
}

/** Hourly buckets over a trailing window: the accumulators below share them. */
class HourBuckets<T> {
  private readonly buckets = new Map<number, T>();
  constructor(
    private readonly make: () => T,
    private readonly windowMs: number,
  ) {}
  at(ts: number): T {
    const k = Math.floor(ts / HOUR_MS);
    let b = this.buckets.get(k);
    if (b === undefined) {
      b = this.make();
      this.buckets.set(k, b);
      const oldest = k - Math.ceil(this.windowMs / HOUR_MS) - 1;
      for (const key of this.buckets.keys()) if (key < oldest) this.buckets.delete(key);
    }
    return b;
  }
  /** Buckets of the hours overlapping (now - windowMs, now]. */
  within(now: number): T[] {
    const from = Math.floor((now - this.windowMs) / HOUR_MS);
    const to = Math.floor(now / HOUR_MS);
    return [...this.buckets].filter(([k]) => k > from && k <= to).map(([, b]) => b);
  }
}

/** Alarm raises of one asset over a trailing window (default 7 days); an alarm counts once, by alarmId. */
export class AlarmHistory {
  private readonly raises = new Map<string, { ts: number; severity: Severity }>();
  constructor(private readonly windowMs = WEEK_MS) {}
  /** An alarm transition; only raises count (updates and clears of a known alarm do not add). */
  add(a: { alarmId: string; severity: Severity; ts: number; state: 'raised' | 'cleared'; transition?: 'raised' | 'updated' | 'cleared' }): void {
    if (a.state !== 'raised' || this.raises.has(a.alarmId)) return;
    this.raises.set(a.alarmId, { ts: a.ts, severity: a.severity });
  }
  counts(now: number): Record<Severity, number> {
    const c: Record<Severity, number> = { critical: 0, high: 0, medium: 0, low: 0 };
    for (const [id, r] of this.raises) {
      if (r.ts <= now - this.windowMs) this.raises.delete(id);
      else if (r.ts <= now) c[r.severity]++;
    }
    return c;
  }
}

/** Time a temperature spent above `limitC` over a trailing window (samples held until the next, up to maxGapMs). */
export class ThermalStress {
  private readonly hours: HourBuckets<{ aboveMs: number; observedMs: number }>;
  private last: { ts: number; c: number } | null = null;
  constructor(
    readonly limitC = 70,
    windowMs = WEEK_MS,
    private readonly maxGapMs = 300_000,
    private readonly acceptQualities: readonly Quality[] = ['good', 'interpolated', 'uncertain'],
  ) {
    this.hours = new HourBuckets(() => ({ aboveMs: 0, observedMs: 0 }), windowMs);
  }
  add(ts: number, v: unknown, q: Quality, unit?: string): void {
    const prev = this.last;
    if (prev !== null && ts <= prev.ts) return;
    const a = admit('temperature', v, q, unit, this.acceptQualities);
    if ('reject' in a) {
      this.last = null;
      return;
    }
    if (prev !== null && ts - prev.ts <= this.maxGapMs) {
      // Split the held interval at hour boundaries.
      for (let t = prev.ts; t < ts; ) {
        const end = Math.min(ts, (Math.floor(t / HOUR_MS) + 1) * HOUR_MS);
        const b = this.hours.at(t);
        b.observedMs += end - t;
        if (prev.c > this.limitC) b.aboveMs += end - t;
        t = end;
      }
    }
    this.last = { ts, c: a.v };
  }
  totals(now: number): { aboveMs: number; observedMs: number } {
    return this.hours.within(now).reduce((s, b) => ({ aboveMs: s.aboveMs + b.aboveMs, observedMs: s.observedMs + b.observedMs }), { aboveMs: 0, observedMs: 0 });
  }
}

/** Samples of an asset by quality over a trailing window: good / all (not_implemented points are not counted). */
export class CommQuality {
  private readonly hours: HourBuckets<{ good: number; total: number }>;
  constructor(windowMs = WEEK_MS) {
    this.hours = new HourBuckets(() => ({ good: 0, total: 0 }), windowMs);
  }
  /** One sample (or `n` of one message with the same quality). */
  add(ts: number, q: Quality, n = 1): void {
    if (q === 'not_implemented') return;
    const b = this.hours.at(ts);
    b.total += n;
    if (q === 'good') b.good += n;
  }
  /**
   * A poll that got no answer (device offline): counts as `n` bad samples, since a silent device
   * sends no telemetry to count.
   */
  addMissed(ts: number, n = 1): void {
    this.hours.at(ts).total += n;
  }
  totals(now: number): { good: number; total: number } {
    return this.hours.within(now).reduce((s, b) => ({ good: s.good + b.good, total: s.total + b.total }), { good: 0, total: 0 });
  }
}
