/**
 * Aggregator benchmarks (docs/aggregator.md "Figures"), `runAggregatorBench({ seconds, json })`:
 *
 *   rollupDay      rollups (1 min, 15 min, day, summary) of one simulated site-day at 1 Hz, from a
 *                  real store (sealed chunks) into the Aggregator's database, with the factory and
 *                  an in-memory bus. Reduced scale (series = clamp(20 x seconds, 40, 2000)) and
 *                  extrapolated linearly to 10k series: generating and sealing a full 864 M-sample
 *                  day would take about an hour here. Rollup work is per series, so it scales linearly.
 *   lateBackfill   a tenth of the inverters deliver the last 6 hours of the day again, late, with
 *                  one new sample per minute and point (a buffered history after a link outage):
 *                  the store logs it (late log), the Aggregator re-aggregates it from the log on
 *                  the next tick. Time of that tick, entries, minutes changed, messages republished.
 *   reduction      bytes the cloud gets (every published rollup message of the day, in batches of
 *                  one minute's messages as the Uplink batches them, JSON, then gzip) against raw:
 *                  processed telemetry as JSON messages (one poll of one asset a second) and the
 *                  store's bytes. Specification §5.1: 10 TB -> 240 GB a day, 97.6 %.
 * Figures go with the machine into docs/aggregator.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { createAggregator } from '../../components/aggregator/aggregator';
import { aggregatorConfigSpec } from '../../components/aggregator/config';
import { ManualScheduler } from '../../components/aggregator/scheduler';
import { createBus } from '../../components/lib/bus';
import { validateConfig } from '../../components/lib/config';
import { CONTRACT_VERSION, type Point, type TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { openStore, type StoreSample } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { FakeNucleus } from '../../components/lib/testing/fake-ipc';
import { describeMachine } from './machine';

const DAY_START = Date.UTC(2025, 5, 21); // a summer solstice day
const DAY = 86_400_000;
const POINTS = ['W', 'VA', 'VAr', 'PF', 'A', 'PhVphA', 'Hz', 'DCV', 'DCW', 'TmpCab'] as const;
const UNITS: Record<string, string> = { W: 'W', VA: 'VA', VAr: 'var', PF: '', A: 'A', PhVphA: 'V', Hz: 'Hz', DCV: 'V', DCW: 'W', TmpCab: 'Cel' };

/** An inverter's points at second `s` of the day: a clear-sky bell, SunSpec-like decimals. */
function values(a: number, s: number): number[] {
  const sun = Math.max(0, Math.sin(((s - 6 * 3600) / (12 * 3600)) * Math.PI));
  const w = Math.round(sun * 50_000 * (0.97 + 0.03 * Math.sin(s / 97 + a)));
  return [w, Math.round(w * 1.02), Math.round(w * 0.1), Math.round(sun * 99) / 100, Math.round(w / 23) / 10, Math.round((230 + Math.sin(s / 31)) * 10) / 10, Math.round((50 + Math.sin(s / 53) * 0.02) * 100) / 100, Math.round((600 + sun * 150) * 10) / 10, Math.round(w * 1.03), Math.round((25 + sun * 20) * 10) / 10];
}

export async function runAggregatorBench(opts: { seconds: number; json: boolean }): Promise<Record<string, unknown>> {
  const wanted = Math.max(40, Math.min(2000, Math.round(20 * opts.seconds)));
  const seriesN = wanted - (wanted % POINTS.length);
  const assets = seriesN / POINTS.length;
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-agg-'));
  try {
    // 1. The store: one site-day, sealed (what the Processor leaves behind).
    const tGen = performance.now();
    const store = openStore({ path: path.join(dir, 'raw.db'), clock: new FakeClock(DAY_START + 2 * DAY) }, { sealLagMs: 0, synchronous: 'NORMAL' });
    let rawJsonBytes = 0;
    let samples = 0;
    for (let h = 0; h < 24; h++) {
      const batch: StoreSample[] = [];
      for (let s = h * 3600; s < (h + 1) * 3600; s++) {
        for (let a = 0; a < assets; a++) {
          const v = values(a, s);
          const ts = DAY_START + s * 1000;
          const points: Record<string, Point> = {};
          POINTS.forEach((p, i) => {
            batch.push({ assetId: `INV-${a}`, point: p, ts, v: v[i] as number, q: 'good' });
            points[p] = UNITS[p] ? { v: v[i] as number, u: UNITS[p] as string, q: 'good' } : { v: v[i] as number, q: 'good' };
          });
          // Raw bytes as processed telemetry JSON: measured on every 60th second, scaled by 60.
          if (s % 60 === 0) {
            const m: TelemetryMessage = { schemaVersion: CONTRACT_VERSION, siteId: 'site-001', assetId: `INV-${a}`, ts, seq: s, points };
            rawJsonBytes += Buffer.byteLength(JSON.stringify(m)) * 60;
          }
        }
      }
      store.append(batch);
      store.flush();
      samples += batch.length;
      store.seal();
    }
    store.close();
    const genS = (performance.now() - tGen) / 1000;
    const storeBytes = fs.statSync(path.join(dir, 'raw.db')).size + (fs.existsSync(path.join(dir, 'raw.db-wal')) ? fs.statSync(path.join(dir, 'raw.db-wal')).size : 0);

    // 2. The Aggregator catches the whole day up in one tick.
    const nucleus = new FakeNucleus({ componentName: 'com.dcmms.edge.Aggregator' });
    const now = DAY_START + DAY + 6 * 60_000;
    const clock = new FakeClock(now);
    const metrics = createMetrics({ clock });
    const bus = createBus({ createClient: nucleus.factory, logger: silentLogger, metrics, clock });
    await bus.connect();
    const config = validateConfig(aggregatorConfigSpec, { siteId: 'site-001', storePath: path.join(dir, 'raw.db'), dbPath: path.join(dir, 'agg.db'), initialBackfillMs: now - DAY_START });
    const agg = createAggregator({ bus, logger: silentLogger, metrics, clock, fail: (e) => { throw e; }, scheduler: new ManualScheduler() }, config);
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    await agg.start();
    // A tick publishes up to 5 000 outbox rows; the catch-up of a day takes several.
    do await agg.tick();
    while ((agg.db?.outboxSize() ?? 0) > 0);
    const rollupS = (performance.now() - t0) / 1000;
    const cpu = process.cpuUsage(cpu0);
    const cpuS = (cpu.user + cpu.system) / 1e6;
    const aggDbBytes = fs.statSync(path.join(dir, 'agg.db')).size + (fs.existsSync(path.join(dir, 'agg.db-wal')) ? fs.statSync(path.join(dir, 'agg.db-wal')).size : 0);
    const dayMessages = nucleus.published.length;

    // 2b. Late data: a tenth of the inverters send the day's last 6 hours again, one new sample per
    // minute and point (at :30.5 s, between the 1 Hz polls), committed the next day: logged, re-aggregated.
    const lateAssets = Math.max(1, Math.round(assets / 10));
    const writer = openStore({ path: path.join(dir, 'raw.db'), clock: new FakeClock(now) }, { sealLagMs: 0, synchronous: 'NORMAL' });
    let lateSamples = 0;
    const head0 = writer.lateLogHead();
    for (let a = 0; a < lateAssets; a++) {
      const batch: StoreSample[] = [];
      for (let s = 18 * 3600; s < 24 * 3600; s += 60) {
        const v = values(a, s);
        POINTS.forEach((p, i) => batch.push({ assetId: `INV-${a}`, point: p, ts: DAY_START + s * 1000 + 30_500, v: v[i] as number, q: 'good' }));
      }
      writer.append(batch);
      writer.flush();
      lateSamples += batch.length;
    }
    const lateEntries = writer.lateLogHead() - head0;
    writer.close();
    const before = agg.counters();
    const tLate = performance.now();
    const cpuLate0 = process.cpuUsage();
    clock.advance(60_000);
    do await agg.tick();
    while ((agg.db?.outboxSize() ?? 0) > 0);
    const lateS = (performance.now() - tLate) / 1000;
    const lateCpu = process.cpuUsage(cpuLate0);
    const after = agg.counters();
    const lateBackfill = {
      assets: lateAssets,
      samples: lateSamples,
      lateLogEntries: lateEntries,
      entriesRead: after.lateEntries - before.lateEntries,
      minutesChanged: after.reaggregated - before.reaggregated,
      messagesRepublished: after.published - before.published,
      wallS: round(lateS, 3),
      cpuS: round((lateCpu.user + lateCpu.system) / 1e6, 3),
    };
    await agg.close();
    await bus.close();

    // 3. What goes to the cloud: the published messages, batched per bucket start as the Uplink would, JSON then gzip.
    const byBatch = new Map<string, unknown[]>();
    const perInterval: Record<string, { messages: number; jsonBytes: number }> = {};
    for (const p of nucleus.published.slice(0, dayMessages)) {
      if (p.topic.includes('/health/')) continue;
      const m = p.message as { interval?: string; start: number };
      const k = `${m.interval ?? 'summary'}|${m.start}`;
      (byBatch.get(k) ?? byBatch.set(k, []).get(k))?.push(m);
      const e = (perInterval[m.interval ?? 'summary'] ??= { messages: 0, jsonBytes: 0 });
      e.messages += 1;
      e.jsonBytes += Buffer.byteLength(JSON.stringify(m));
    }
    let cloudJson = 0;
    let cloudGzip = 0;
    for (const [k, items] of byBatch) {
      const body = Buffer.from(JSON.stringify({ schemaVersion: CONTRACT_VERSION, siteId: 'site-001', kind: 'telemetry', interval: k.split('|')[0], seq: 0, createdAt: now, items }));
      cloudJson += body.length;
      cloudGzip += zlib.gzipSync(body).length;
    }
    const scale = 10_000 / seriesN;
    const pct = (x: number): number => Math.round((1 - cloudGzip / x) * 10000) / 100;
    return {
      machine: describeMachine(),
      scale: { series: seriesN, assets, samples, extrapolatedTo: 10_000, factor: scale, generateAndSealS: round(genS) },
      rollupDay: {
        wallS: round(rollupS),
        cpuS: round(cpuS),
        samplesPerS: Math.round(samples / rollupS),
        extrapolated10kSeriesWallS: round(rollupS * scale),
        extrapolated10kSeriesCpuPercentOfDay: round(((cpuS * scale) / 86400) * 100, 3),
        aggregatorDbBytes10k: Math.round(aggDbBytes * scale),
      },
      lateBackfill,
      reduction: {
        rawJsonBytes10k: Math.round(rawJsonBytes * scale),
        storeBytes10k: Math.round(storeBytes * scale),
        cloudJsonBytes10k: Math.round(cloudJson * scale),
        cloudGzipBytes10k: Math.round(cloudGzip * scale),
        gzipRatio: round(cloudJson / cloudGzip),
        reductionVsRawJsonPercent: pct(rawJsonBytes),
        reductionVsStorePercent: pct(storeBytes),
        specTargetPercent: 97.6,
        perInterval10k: Object.fromEntries(Object.entries(perInterval).map(([k, v]) => [k, { messages: Math.round(v.messages * (k === 'summary' ? 1 : scale)), jsonBytes: Math.round(v.jsonBytes * scale) }])),
      },
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function round(x: number, d = 2): number {
  const f = 10 ** d;
  return Math.round(x * f) / f;
}
