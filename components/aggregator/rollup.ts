/**
 * Rollup arithmetic (dCMMS edge specification §5.1, docs/specification.md: level_2_1min min/max/avg/stddev/count,
 * level_3_15min min/max/avg/sum/count, level_4_daily sum (energy)/avg/max).
 *
 * A `Roll` is a mergeable summary: n, count, min, max, sum, m2 (sum of squared deviations from the
 * mean), first, last, energy. 1-minute rolls are computed from the samples with two passes (mean,
 * then deviations), so they are exactly what a naive computation over the raw samples gives. Longer
 * buckets merge shorter ones in time order with Chan et al.'s parallel formula for m2, which is
 * stable where `sumSq - sum²/n` (the chunk statistics' form) cancels catastrophically (a flat 41 kW
 * minute would show a stddev of ~1e-3 W). Merging in a fixed order makes a recomputation give
 * bit-identical rows.
 */
import type { AggregateInterval, AggregateStats } from '../lib/contract';
import type { Sample } from '../lib/store';

export interface Roll {
  /** Samples, valueless ones included (what the store's chunk statistics call n). */
  n: number;
  /** Samples with a value. */
  count: number;
  min: number | null;
  max: number | null;
  sum: number;
  m2: number;
  first: number | null;
  last: number | null;
  /** Sum over minutes with data of the minute's mean x 1/60 h: energy in unit·h for a power series. */
  energy: number;
}

export function emptyRoll(): Roll {
  return { n: 0, count: 0, min: null, max: null, sum: 0, m2: 0, first: null, last: null, energy: 0 };
}

/** One minute's roll from its samples (sorted by ts). */
export function rollSamples(samples: readonly Sample[]): Roll {
  const r = emptyRoll();
  r.n = samples.length;
  let min = Infinity;
  let max = -Infinity;
  for (const s of samples) {
    if (s.v === null) continue;
    r.count += 1;
    r.sum += s.v;
    if (s.v < min) min = s.v;
    if (s.v > max) max = s.v;
    if (r.first === null) r.first = s.v;
    r.last = s.v;
  }
  if (r.count === 0) return r;
  r.min = min;
  r.max = max;
  const mean = r.sum / r.count;
  let m2 = 0;
  for (const s of samples) if (s.v !== null) m2 += (s.v - mean) * (s.v - mean);
  r.m2 = m2;
  r.energy = mean / 60;
  return r;
}

/** Merges rolls of consecutive buckets given in time order. */
export function mergeRolls(parts: readonly Roll[]): Roll {
  const out = emptyRoll();
  for (const p of parts) {
    out.n += p.n;
    out.energy += p.energy;
    if (p.count === 0) continue;
    if (out.count === 0) {
      out.count = p.count;
      out.sum = p.sum;
      out.m2 = p.m2;
      out.min = p.min;
      out.max = p.max;
      out.first = p.first;
      out.last = p.last;
      continue;
    }
    const na = out.count;
    const nb = p.count;
    const delta = p.sum / nb - out.sum / na;
    out.m2 = out.m2 + p.m2 + (delta * delta * na * nb) / (na + nb);
    out.count = na + nb;
    out.sum += p.sum;
    out.min = Math.min(out.min as number, p.min as number);
    out.max = Math.max(out.max as number, p.max as number);
    out.last = p.last;
  }
  return out;
}

export function rollsEqual(a: Roll, b: Roll): boolean {
  return (
    a.n === b.n && a.count === b.count && a.min === b.min && a.max === b.max && Object.is(a.sum, b.sum) && Object.is(a.m2, b.m2) &&
    a.first === b.first && a.last === b.last && Object.is(a.energy, b.energy)
  );
}

/** Kind of a series for energy: integrated power (W) or an energy counter (Wh). */
export type EnergyKind = 'power' | 'counter' | undefined;

/** Daily energy of one series, Wh (payloads.ts AggregateStats.energyWh). */
export function energyWh(r: Roll, kind: EnergyKind): number | undefined {
  if (r.count === 0) return undefined;
  if (kind === 'power') return r.energy;
  if (kind === 'counter') return (r.last as number) - (r.first as number);
  return undefined;
}

/**
 * What a bucket publishes per series (spec §5.1): 1 minute min/max/avg/stddev/count, 15 minutes
 * min/max/avg/sum/count, daily sum/avg/max (+ min, count, energy). stddev is the sample standard
 * deviation (n - 1, as SQL STDEV and TimescaleDB's stddev), absent for fewer than 2 values.
 */
export function statsFor(interval: AggregateInterval, r: Roll, unit: string | null, kind: EnergyKind): AggregateStats {
  const s: AggregateStats = { count: r.count };
  if (r.count > 0) {
    s.min = r.min as number;
    s.max = r.max as number;
    s.avg = r.sum / r.count;
    if (interval === '1m' && r.count >= 2) s.stddev = Math.sqrt(Math.max(0, r.m2) / (r.count - 1));
    if (interval !== '1m') s.sum = r.sum;
    if (interval === '1d') {
      const e = energyWh(r, kind);
      if (e !== undefined) s.energyWh = e;
    }
  }
  if (unit) s.u = unit;
  return s;
}
