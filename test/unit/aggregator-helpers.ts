/** Rig for the Aggregator's unit tests: a real store written with openStore, the factory on a FakeNucleus bus, a hand-driven clock and scheduler. */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAggregator, type Aggregator } from '../../components/aggregator/aggregator';
import { aggregatorConfigSpec, type AggregatorConfig } from '../../components/aggregator/config';
import { ManualScheduler } from '../../components/aggregator/scheduler';
import { createBus } from '../../components/lib/bus';
import type { Clock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import type { AggregateMessage, DailySummary } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics, type Metrics } from '../../components/lib/metrics';
import type { Bus } from '../../components/lib/bus-types';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { openStore, type Store, type StoreSample } from '../../components/lib/store';

export const SITE = 's1';

/** A clock the test sets; timers are never used by the Aggregator's work (the scheduler is). */
export class SetClock implements Clock {
  constructor(public t: number) {}
  now(): number {
    return this.t;
  }
  setTimeout(): unknown {
    return undefined;
  }
  clearTimeout(): void {}
  setInterval(): unknown {
    return undefined;
  }
  clearInterval(): void {}
}

export function tmp(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/**
 * The store, with its own never-advanced clock set far ahead so that `seal()` seals everything
 * (every sample is then older than lateAfterMs at its commit: all of them go to the late log).
 */
export function writeStore(dir: string, now = Date.UTC(2030, 0, 1)): Store {
  return openStore({ path: path.join(dir, 'raw.db'), clock: new FakeClock(now) }, { sealLagMs: 0 });
}

export interface AggRig {
  agg: Aggregator;
  nucleus: FakeNucleus;
  clock: SetClock;
  scheduler: ManualScheduler;
  config: Readonly<AggregatorConfig>;
  metrics: Metrics;
  aggregates(interval?: string): AggregateMessage[];
  summaries(): DailySummary[];
  close(): Promise<void>;
}

export async function aggRig(dir: string, now: number, over: Partial<AggregatorConfig> = {}, opts: { bus?: (b: Bus) => Bus } = {}): Promise<AggRig> {
  const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Aggregator' });
  const clock = new SetClock(now);
  const metrics = createMetrics({ clock });
  const real = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock: new FakeClock() });
  await real.connect();
  const bus = opts.bus ? opts.bus(real) : real;
  const scheduler = new ManualScheduler();
  const config = validateConfig(aggregatorConfigSpec, { siteId: SITE, storePath: path.join(dir, 'raw.db'), dbPath: path.join(dir, 'agg.db'), ...over });
  const agg = createAggregator({ bus, logger: silentLogger, metrics, clock, fail: (e) => { throw e; }, scheduler }, config);
  await agg.start();
  await agg.tick();
  return {
    agg,
    nucleus,
    clock,
    scheduler,
    config,
    metrics,
    aggregates: (interval) =>
      nucleus.published.filter((p) => p.topic.startsWith(`site/${SITE}/aggregates/${interval ?? ''}`)).map((p) => p.message as AggregateMessage),
    summaries: () => nucleus.published.filter((p) => p.topic === `site/${SITE}/summary/daily`).map((p) => p.message as DailySummary),
    close: async () => {
      await agg.close();
      await real.close();
    },
  };
}

/** Resolves with the first message the Aggregator publishes that `match` accepts (an event, not a sleep). */
export function nextPublished<T>(nucleus: FakeNucleus, match: (topic: string, message: T) => boolean): Promise<T> {
  return new Promise((resolve) => {
    const route = nucleus.route.bind(nucleus);
    nucleus.route = (from, topic, msg) => {
      route(from, topic, msg);
      const m = msg.jsonMessage?.message as T;
      if (from !== undefined && match(topic, m)) {
        nucleus.route = route;
        resolve(m);
      }
    };
  });
}

/** Deterministic pseudo-random numbers (xorshift), so failures reproduce. */
export function rng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 4294967296;
  };
}

/** ~1 Hz samples with ms jitter, some nulls and a gap, decimal values (SunSpec-like scale factors). */
export function series(assetId: string, point: string, from: number, to: number, seed: number, base: number): StoreSample[] {
  const r = rng(seed);
  const out: StoreSample[] = [];
  for (let t = from; t < to; t += 1000) {
    if (r() < 0.01) continue; // missed poll
    const ts = t + Math.floor(r() * 200);
    const v = r() < 0.02 ? null : Math.round((base + Math.sin(t / 600_000) * base * 0.3 + r() * 5) * 10) / 10;
    out.push({ assetId, point, ts, v, q: v === null ? 'bad' : 'good' });
  }
  return out;
}

/** The naive reference: statistics of the raw samples of [from, to). */
export function naive(samples: readonly StoreSample[], from: number, to: number): { n: number; count: number; min?: number; max?: number; sum: number; avg?: number; stddev?: number } {
  const inside = samples.filter((s) => s.ts >= from && s.ts < to).sort((a, b) => a.ts - b.ts);
  const vals = inside.map((s) => s.v).filter((v): v is number => v !== null);
  let sum = 0;
  for (const v of vals) sum += v;
  const out: ReturnType<typeof naive> = { n: inside.length, count: vals.length, sum };
  if (vals.length) {
    out.min = Math.min(...vals);
    out.max = Math.max(...vals);
    out.avg = sum / vals.length;
    let m2 = 0;
    for (const v of vals) m2 += (v - (out.avg as number)) ** 2;
    if (vals.length > 1) out.stddev = Math.sqrt(m2 / (vals.length - 1));
  }
  return out;
}

/** Relative closeness for sums merged in another order than the naive loop (float reassociation). */
export function expectClose(actual: number | undefined, expected: number | undefined, rel = 1e-12): void {
  expect(actual).toBeDefined();
  expect(expected).toBeDefined();
  const a = actual as number;
  const e = expected as number;
  expect(Math.abs(a - e)).toBeLessThanOrEqual(rel * Math.max(1, Math.abs(e)));
}
