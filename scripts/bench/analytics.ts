/**
 * Analytics benchmarks (docs/analytics-component.md "Figures"), `runAnalyticsBench({ seconds })`:
 *
 *   live       the component (factory, in-memory bus that only counts) with 100 inverters (model
 *              103 and 160 with 4 inputs), a weather station and 10 trackers, fed processed
 *              telemetry at 1 Hz per asset for `minutes` simulated minutes (FakeClock) with an
 *              evaluation of every kind each minute: CPU per simulated minute as a share of one core
 *              (process.cpuUsage over the run), split into intake and evaluation; heap and RSS after
 *              the run (after a GC when node runs with --expose-gc).
 *   siteDay    one site-day in a real store (100 inverters, daylight 05:00-19:00 at one sample per
 *              5 s, the points Analytics reads; the weather station and trackers likewise), then the
 *              time to compute the day's figures from it: a new site model replays the day from the
 *              store and evaluates (what a start at the end of the day, or a late-data rebuild of
 *              every asset, costs).
 *   ivCurve    one 100-point curve analysed against its string model (iv.ts), per call.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { createAnalytics } from '../../components/analytics/analytics';
import { analyticsConfigSpec, type AnalyticsConfig } from '../../components/analytics/config';
import { analyseCurve } from '../../components/analytics/iv-analysis';
import { SiteModel } from '../../components/analytics/site-model';
import { validateConfig } from '../../components/lib/config';
import type { Point, TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { openStore, openStoreReader, type StoreSample } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { SIM_LAYOUT, SIM_MODULE } from '../simulator/combiner';
import { describeMachine } from './machine';

const INVERTERS = 100;
const TRACKERS = 10;
const DAY0 = Date.UTC(2026, 5, 21); // a summer solstice day; 37 N, 2.5 W
const MIN = 60_000;

function plantConfig(dir: string): Readonly<AnalyticsConfig> {
  const inverters: AnalyticsConfig['inverters'] = {};
  for (let n = 1; n <= INVERTERS; n++) inverters[`INV-${String(n).padStart(3, '0')}`] = { pStcKw: 72, gammaPerK: -0.0035, weatherStation: 'WS-01', combiner: `CB-${String(n).padStart(3, '0')}`, tracker: 'TRK-01', acRatingKw: 60 };
  const trackers: AnalyticsConfig['trackers'] = {};
  for (let n = 1; n <= TRACKERS; n++) {
    trackers[`TRK-${String(n).padStart(2, '0')}`] = { axisAzimuthDeg: 180, axisTiltDeg: 0, maxAngleDeg: 55, gcr: 0.35, backtrack: true, anglePoint: 'actualAngle', statusPoint: 'status', stowBits: ['stowed'], modePoint: 'mode', trackingModes: [0] };
  }
  return validateConfig(analyticsConfigSpec, {
    siteId: 'bench-site',
    storePath: path.join(dir, 'raw.db'),
    dbPath: path.join(dir, 'analytics.db'),
    weatherStations: { 'WS-01': { poaPoint: 'poa', ambientPoint: 'ambientTemp', modulePoint: 'moduleTemp', windPoint: 'windSpeed' } },
    inverters,
    trackers,
    ivScan: { times: [], strings: {}, timeoutMs: 30000, models: { 'CB-001': { module: SIM_MODULE, layout: SIM_LAYOUT } } },
  });
}

/** POA on a clear day (W/m2) at ms `t`. */
function poaAt(t: number): number {
  const s = (t - DAY0) / 1000;
  return Math.max(0, Math.round(1000 * Math.sin(((s - 5 * 3600) / (14 * 3600)) * Math.PI)));
}

function messages(t: number, seq: number): TelemetryMessage[] {
  const poa = poaAt(t);
  const out: TelemetryMessage[] = [{ schemaVersion: 1, siteId: 'bench-site', assetId: 'WS-01', ts: t, seq, points: { poa: { v: poa, u: 'W/m2', q: 'good' }, ambientTemp: { v: 25, u: 'Cel', q: 'good' }, moduleTemp: { v: 25 + poa * 0.025, u: 'Cel', q: 'good' }, windSpeed: { v: 2, u: 'm/s', q: 'good' } } }];
  for (let n = 1; n <= INVERTERS; n++) {
    const w = Math.round(poa * 72 * 0.85);
    const a = Math.round((w / 600 / 4) * 100) / 100;
    const points: Record<string, Point> = {
      '103.W': { v: w, u: 'W', q: 'good' },
      '103.WH': { v: Math.round(1e7 + (t - DAY0) * (w / 3.6e6)), u: 'Wh', q: 'good' },
      '103.St': { v: w > 0 ? 'MPPT' : 'SLEEPING', q: 'good' },
      '103.TmpSnk': { v: 40, u: 'Cel', q: 'good' },
    };
    for (let k = 1; k <= 4; k++) {
      points[`160.module.${k}.DCA`] = { v: a, u: 'A', q: 'good' };
      points[`160.module.${k}.DCSt`] = { v: 'MPPT', q: 'good' };
    }
    out.push({ schemaVersion: 1, siteId: 'bench-site', assetId: `INV-${String(n).padStart(3, '0')}`, ts: t, seq, points });
  }
  for (let n = 1; n <= TRACKERS; n++) out.push({ schemaVersion: 1, siteId: 'bench-site', assetId: `TRK-${String(n).padStart(2, '0')}`, ts: t, seq, points: { actualAngle: { v: 10, u: 'deg', q: 'good' }, status: { v: '', q: 'good' }, mode: { v: 0, q: 'good' } } });
  return out;
}

function gc(): boolean {
  const g = (globalThis as { gc?: () => void }).gc;
  if (g) g();
  return g !== undefined;
}

export async function runAnalyticsBench(opts: { seconds: number }): Promise<Record<string, unknown>> {
  const minutes = Math.max(5, Math.min(60, opts.seconds * 2));
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-analytics-'));
  try {
    const config = plantConfig(dir);
    // ---- live -------------------------------------------------------------------------------------
    // An empty store for the component to open (the Processor's, in production).
    const seed = openStore({ path: path.join(dir, 'raw.db') });
    seed.close();
    const clock = new FakeClock(DAY0 + 11 * 3_600_000);
    const bus = new RecordingBus({ record: false });
    const a = createAnalytics({ bus, logger: silentLogger, metrics: createMetrics({ clock }), clock, component: 'analytics', fail: (e) => { throw e; }, workDir: dir }, config);
    await a.start();
    const heap0 = (gc(), process.memoryUsage());
    // Warm-up minute (JIT, first bins), not measured.
    let seq = 0;
    const feedMinute = async (): Promise<{ intake: number; evaluate: number }> => {
      const c0 = process.cpuUsage();
      for (let s = 0; s < 60; s++) {
        for (const m of messages(clock.now(), ++seq)) await bus.deliver('processedTelemetry', `site/bench-site/processed/${m.assetId}/telemetry`, m);
        if (s < 59) clock.advance(1000);
      }
      const c1 = process.cpuUsage(c0);
      const e0 = process.cpuUsage();
      clock.advance(1000); // the evaluation timer fires on the minute
      const e1 = process.cpuUsage(e0);
      return { intake: (c1.user + c1.system) / 1000, evaluate: (e1.user + e1.system) / 1000 };
    };
    await feedMinute();
    let intakeMs = 0;
    let evaluateMs = 0;
    for (let k = 0; k < minutes; k++) {
      const r = await feedMinute();
      intakeMs += r.intake;
      evaluateMs += r.evaluate;
    }
    const gcd = gc();
    const heap1 = process.memoryUsage();
    const published = bus.publishCount;
    await a.close();
    const perMinute = (intakeMs + evaluateMs) / minutes;
    const live = {
      inverters: INVERTERS,
      trackers: TRACKERS,
      simulatedMinutes: minutes,
      messagesPerMinute: 60 * (INVERTERS + TRACKERS + 1),
      cpuMsPerMinute: round(perMinute),
      cpuShareOfOneCorePct: round((perMinute / MIN) * 100),
      intakeMsPerMinute: round(intakeMs / minutes),
      evaluateMsPerMinute: round(evaluateMs / minutes),
      publishedPerMinute: round(published / (minutes + 1)),
      heapUsedMB: round(heap1.heapUsed / 1e6),
      heapGrowthMB: round((heap1.heapUsed - heap0.heapUsed) / 1e6),
      rssMB: round(heap1.rss / 1e6),
      heapAfterGc: gcd,
    };

    // ---- site-day from the store --------------------------------------------------------------------
    const storeDir = path.join(dir, 'day');
    fs.mkdirSync(storeDir);
    const tGen = performance.now();
    const store = openStore({ path: path.join(storeDir, 'raw.db'), clock: new FakeClock(DAY0 + 2 * 86_400_000) }, { sealLagMs: 0, synchronous: 'NORMAL' });
    let samples = 0;
    for (let t = DAY0 + 5 * 3_600_000; t < DAY0 + 19 * 3_600_000; t += 3_600_000) {
      const batch: StoreSample[] = [];
      for (let u = t; u < t + 3_600_000; u += 5000) {
        for (const m of messages(u, 0)) for (const [point, p] of Object.entries(m.points)) if (typeof p.v === 'number') batch.push({ assetId: m.assetId, point, ts: u, v: p.v, q: p.q, ...(p.u ? { u: p.u } : {}) });
      }
      samples += batch.length;
      for (let k = 0; k < batch.length; k += 50_000) store.append(batch.slice(k, k + 50_000));
      store.flush();
    }
    store.seal();
    store.close();
    const genMs = performance.now() - tGen;
    const reader = openStoreReader(path.join(storeDir, 'raw.db'));
    const t0 = performance.now();
    const model = new SiteModel(config);
    const replay = model.replay(reader, DAY0, DAY0 + 86_400_000);
    const t1 = performance.now();
    const out = model.evaluate(DAY0 + 19 * 3_600_000);
    const t2 = performance.now();
    reader.close();
    const dayPr = out.figures.find((f) => f.assetId === 'site' && f.kind === 'performance_ratio')?.details['day'] as { value: number | null } | undefined;
    const siteDay = {
      inverters: INVERTERS,
      samplesInStore: samples,
      samplesReplayed: replay.samples,
      storeGenerationS: round(genMs / 1000),
      replayMs: round(t1 - t0),
      evaluateMs: round(t2 - t1),
      totalMs: round(t2 - t0),
      sitePrDayPct: dayPr?.value ?? null,
    };

    // ---- IV curve ------------------------------------------------------------------------------------
    const v = Array.from({ length: 100 }, (_, k) => (k / 99) * 720);
    const i = v.map((x) => Math.max(0, 29 * (1 - Math.exp((x - 735) / 18))));
    const n = 200;
    analyseCurve({ kind: 'iv_curve', string: 1, v, i, irradiance: 900, temperature: 45 }, config, 'CB-001', null);
    const i0 = performance.now();
    for (let k = 0; k < n; k++) analyseCurve({ kind: 'iv_curve', string: 1, v, i, irradiance: 900, temperature: 45 }, config, 'CB-001', null);
    const ivCurve = { msPerCurve: round((performance.now() - i0) / n) };

    return { machine: describeMachine(), live, siteDay, ivCurve };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number): number {
  return Math.round(x * 100) / 100;
}
