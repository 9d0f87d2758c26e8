/**
 * Shared pieces of the Analytics calculation modules (performance.ts, strings.ts, soiling.ts,
 * health.ts): result shape, sample intake (quality, units), time bins and parameter checks.
 *
 * Everything here is pure and deterministic: time is always passed in (sample times, an explicit
 * `now`), never read from the system clock, so a replay of stored data gives the same numbers.
 */
import type { Quality } from '../lib/contract';
import { ConfigError } from '../lib/errors';
import { Zone } from '../aggregator/tz';

/**
 * What a calculation returns: the value the component publishes (`AnalyticsMessage.value`, `u`)
 * or null with the reason why there is no trustworthy number. `details` goes into the message's
 * `details` unchanged (it repeats `reason` when the value is null).
 */
export interface AnalyticsResult<R extends string = string> {
  value: number | null;
  u?: string;
  reason: R | null;
  details: Record<string, unknown>;
}

/**
 * What became of one sample fed to an accumulator. Everything but `ok` means the sample was not
 * used; the component counts these under the same names (metrics.reject) and logs them
 * rate-limited. `counter_reset` / `counter_jump` are energy-counter samples that start a new base.
 */
export type FeedResult =
  | 'ok'
  | 'out_of_order'
  | 'duplicate'
  | 'bad_quality'
  | 'no_value'
  | 'not_finite'
  | 'unknown_unit'
  | 'counter_reset'
  | 'counter_jump';

/**
 * Qualities used by default: measured (`good`) and the Processor's short-gap fill (`interpolated`,
 * at most 10 s). `uncertain` (out of a flagged range, device clock skew) is left out unless
 * configured: a flagged value should not move a performance figure.
 */
export const DEFAULT_ACCEPTED_QUALITIES: readonly Quality[] = ['good', 'interpolated'];

export type Dimension = 'power' | 'energy' | 'irradiance' | 'temperature' | 'speed' | 'current';

/** Unit -> [factor, offset] to the canonical unit (first entry). The Processor converts already; this covers raw feeds. */
const UNITS: Record<Dimension, Record<string, readonly [number, number]>> = {
  power: { W: [1, 0], kW: [1e3, 0], MW: [1e6, 0] },
  energy: { Wh: [1, 0], kWh: [1e3, 0], MWh: [1e6, 0] },
  irradiance: { 'W/m2': [1, 0], 'W/m²': [1, 0], 'W.m-2': [1, 0], 'kW/m2': [1e3, 0] },
  temperature: { Cel: [1, 0], C: [1, 0], degC: [1, 0], '°C': [1, 0], K: [1, -273.15] },
  speed: { 'm/s': [1, 0], 'km/h': [1 / 3.6, 0] },
  current: { A: [1, 0], mA: [1e-3, 0] },
};

/** The canonical unit of a dimension: W, Wh, W/m2, Cel, m/s, A. */
export function canonicalUnit(dim: Dimension): string {
  return Object.keys(UNITS[dim])[0] as string;
}

/** A value in `unit` (absent = already canonical) to the canonical unit; null for a unit of another dimension or unknown. */
export function toCanonical(dim: Dimension, v: number, unit?: string): number | null {
  if (unit === undefined || unit === '') return v;
  const f = UNITS[dim][unit];
  return f === undefined ? null : v * f[0] + f[1];
}

/**
 * Checks one sample: accepted quality, a finite number, a known unit. Returns the canonical value
 * or the reason it is unusable.
 */
export function admit(dim: Dimension, v: unknown, q: Quality, unit: string | undefined, accepted: readonly Quality[]): { v: number } | { reject: FeedResult } {
  if (v === null || v === undefined) return { reject: 'no_value' };
  if (!accepted.includes(q)) return { reject: 'bad_quality' };
  if (typeof v !== 'number' || !Number.isFinite(v)) return { reject: 'not_finite' };
  const c = toCanonical(dim, v, unit);
  return c === null ? { reject: 'unknown_unit' } : { v: c };
}

/**
 * Spreads the linear segment (t0, v0) -> (t1, v1) over bins of `binMs` (bin i = [i*binMs, (i+1)*binMs)):
 * calls fn(bin, overlapMs, integral) where integral is the exact integral of the line over the
 * overlap, in value x ms (the trapezoid rule on the segment's two samples).
 */
export function spreadLinear(t0: number, v0: number, t1: number, v1: number, binMs: number, fn: (bin: number, ms: number, integral: number) => void): void {
  if (!(t1 > t0)) return;
  const slope = (v1 - v0) / (t1 - t0);
  let a = t0;
  while (a < t1) {
    const bin = Math.floor(a / binMs);
    const b = Math.min(t1, (bin + 1) * binMs);
    const va = v0 + slope * (a - t0);
    const vb = v0 + slope * (b - t0);
    fn(bin, b - a, ((va + vb) / 2) * (b - a));
    a = b;
  }
}

/** The complete bins inside [from, to): indices ceil(from/binMs) .. floor(to/binMs) - 1. */
export function binRange(from: number, to: number, binMs: number): { first: number; last: number } {
  return { first: Math.ceil(from / binMs), last: Math.floor(to / binMs) - 1 };
}

/** `defaults` overlaid with the keys of `o` that are defined (an explicit undefined keeps the default). */
export function withDefaults<T extends object>(defaults: Readonly<T>, o: Partial<T> | undefined): T {
  const out = { ...defaults } as T;
  if (o !== undefined) for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

/** A map of bins by index with a retention horizon; bins older than it are dropped as new ones come. */
export class BinStore<T> {
  private readonly bins = new Map<number, T>();
  private newest = -Infinity;
  constructor(
    private readonly make: () => T,
    private readonly keepBins: number,
  ) {}
  get(i: number): T | undefined {
    return this.bins.get(i);
  }
  /** The bin, created if it is inside the retention horizon; undefined for a bin already dropped. */
  at(i: number): T | undefined {
    let b = this.bins.get(i);
    if (b !== undefined) return b;
    if (i <= this.newest - this.keepBins) return undefined;
    b = this.make();
    this.bins.set(i, b);
    if (i > this.newest) {
      this.newest = i;
      // Amortised pruning: only once the map has grown a tenth past the horizon.
      if (this.bins.size > this.keepBins * 1.1 + 16) for (const k of this.bins.keys()) if (k <= this.newest - this.keepBins) this.bins.delete(k);
    }
    return b;
  }
  get size(): number {
    return this.bins.size;
  }
}

/** A time range [from, to), ms since the epoch. */
export interface TimeRange {
  from: number;
  to: number;
}

/** The last `windowMs` of complete bins before `now`: the rolling window. */
export function rollingWindow(now: number, windowMs: number, binMs: number): TimeRange {
  const to = Math.floor(now / binMs) * binMs;
  return { from: to - windowMs, to };
}

const OFFSET_RE = /^(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?$/;

/**
 * The site's local day holding instant `ts`: `timeZone` is an IANA zone (`Europe/Berlin`, days of
 * 23 and 25 hours at DST changes, as the Aggregator's days) or a fixed offset (`+05:30`,
 * `UTC-03:00`, `Z`/`UTC`). Throws a ConfigError naming `timeZone` for anything else.
 */
export function localDay(ts: number, timeZone: string): TimeRange & { day: string } {
  const m = OFFSET_RE.exec(timeZone);
  if (m !== null || timeZone === 'Z' || timeZone === 'UTC') {
    const off = m === null ? 0 : (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 3_600_000 + Number(m[3] ?? 0) * 60_000);
    const localMidnight = Math.floor((ts + off) / 86_400_000) * 86_400_000;
    return { day: new Date(localMidnight).toISOString().slice(0, 10), from: localMidnight - off, to: localMidnight - off + 86_400_000 };
  }
  const d = zoneOf(timeZone).dayOf(ts);
  return { day: d.day, from: d.start, to: d.end };
}

const zones = new Map<string, Zone>();
function zoneOf(timeZone: string): Zone {
  let z = zones.get(timeZone);
  if (z === undefined) {
    try {
      z = new Zone(timeZone);
    } catch {
      throw new ConfigError('timeZone', `timeZone: "${timeZone}" is neither an IANA time zone (Europe/Berlin) nor a UTC offset (+05:30)`);
    }
    zones.set(timeZone, z);
  }
  return z;
}

/** Parameter checks for option objects: a ConfigError naming the key and what is allowed. */
export function checkNumber(key: string, v: unknown, min: number, max: number, opts: { integer?: boolean; minExclusive?: boolean } = {}): number {
  const ok = typeof v === 'number' && Number.isFinite(v) && (opts.minExclusive ? v > min : v >= min) && v <= max && (!opts.integer || Number.isInteger(v));
  if (!ok) throw new ConfigError(key, `${key}: ${JSON.stringify(v)} is not allowed; expected ${opts.integer ? 'an integer' : 'a number'} ${opts.minExclusive ? '>' : '>='} ${min} and <= ${max}`);
  return v as number;
}

/** `min(max(x, 0), 1)`. */
export function clamp01(x: number): number {
  return x < 0 ? 0 : x > 1 ? 1 : x;
}

export function median(values: readonly number[]): number | null {
  if (values.length === 0) return null;
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 === 1 ? (s[mid] as number) : ((s[mid - 1] as number) + (s[mid] as number)) / 2;
}
