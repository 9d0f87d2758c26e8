/**
 * Uplink benchmarks (docs/uplink.md "Figures"), `runUplinkBench({ seconds, json })`:
 *
 *   append       records/s into the SQLite outbox, groups of 100 per transaction (the Uplink commits
 *                what arrived in one event-loop turn together), synchronous FULL (the default) and
 *                NORMAL; a mix of the site-day's classes (components/uplink/testing/site-day.ts).
 *   drain        seal (gzip) + send + confirm through the real Sender with an exporter that confirms
 *                at once: the outbox's own ceiling, records/s and batches/s.
 *   compression  raw NDJSON / gzip per class on the sealed batches (dCMMS edge specification §3.1: about 5:1).
 *   siteDay      bytes the cloud gets per site-day (10k points = 1000 inverters x 10 points, the
 *                Aggregator benchmark's model) with the default routes and both exporters on:
 *                S3 objects (gzip NDJSON) + IoT Core messages (gzip UplinkBatch), against raw
 *                telemetry as JSON messages (one poll of one asset a second, as scripts/bench/aggregator.ts
 *                counts it). Measured on ASSETS_MEASURED inverters' full day, scaled x1000/ASSETS_MEASURED
 *                (every class but health is per inverter, so it scales linearly).
 * Figures go with the machine into docs/uplink.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { CONTRACT_VERSION, type TelemetryMessage } from '../../components/lib/contract';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { CLASSES, type RecordClass } from '../../components/uplink/classes';
import { UPLINK_DEFAULTS } from '../../components/uplink/config';
import { iotPayload } from '../../components/uplink/exporters/iotcore';
import { Outbox, type AppendItem } from '../../components/uplink/outbox';
import { Sender } from '../../components/uplink/sender';
import { SITE_ASSETS, siteDay } from '../../components/uplink/testing/site-day';
import { describeMachine } from './machine';

const DAY_START = Date.UTC(2026, 5, 21);
const ASSETS_MEASURED = 5;
const GROUP = 100;

const mb = (n: number): number => Math.round((n / 1e6) * 10) / 10;
const r1 = (n: number): number => Math.round(n * 10) / 10;

function items(assets: number): AppendItem[] {
  return [...siteDay({ site: 'bench-site', dayStart: DAY_START, assets })].map((r) => ({ cls: r.cls, receivedAt: r.at, body: JSON.stringify(r.payload) }));
}

function appendRate(dir: string, sync: 'FULL' | 'NORMAL', all: readonly AppendItem[], budgetMs: number): { recordsPerS: number; mbPerS: number; records: number } {
  const ob = new Outbox({ path: path.join(dir, `append-${sync}.db`), synchronous: sync, maxBytes: 100 * 1024 ** 3 });
  let n = 0;
  let bytes = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < budgetMs) {
    const group = all.slice(n % all.length, (n % all.length) + GROUP);
    ob.append(group);
    n += group.length;
    for (const g of group) bytes += g.body.length;
  }
  const s = (performance.now() - t0) / 1000;
  ob.close();
  return { recordsPerS: Math.round(n / s), mbPerS: r1(bytes / 1e6 / s), records: n };
}

async function drainRate(dir: string, all: readonly AppendItem[]): Promise<{ sealRecordsPerS: number; drainRecordsPerS: number; drainBatchesPerS: number; batches: number }> {
  const ob = new Outbox({ path: path.join(dir, 'drain.db'), synchronous: 'FULL', maxBytes: 100 * 1024 ** 3 });
  ob.append(all);
  const t0 = performance.now();
  const metas = ob.seal({ now: DAY_START + 2 * 86_400_000, delayMs: UPLINK_DEFAULTS.batchDelayMs, maxRecords: UPLINK_DEFAULTS.maxBatchRecords, maxBytes: UPLINK_DEFAULTS.maxBatchBytes, gzipLevel: UPLINK_DEFAULTS.gzipLevel, force: true }, () => [0]);
  const sealS = (performance.now() - t0) / 1000;
  const clock = new FakeClock();
  let delivered = 0;
  const done = new Promise<void>((resolve) => {
    const sender = new Sender({
      index: 0,
      exporter: { name: 'null', send: () => Promise.resolve(), close: () => Promise.resolve() },
      outbox: ob,
      clock,
      logger: silentLogger,
      metrics: createMetrics({ clock }),
      concurrency: 8,
      backoffInitialMs: 1000,
      backoffMaxMs: 1000,
      onDelivered: () => {
        if (++delivered === metas.length) resolve();
      },
    });
    sender.kick();
  });
  const t1 = performance.now();
  await done;
  const drainS = (performance.now() - t1) / 1000;
  ob.close();
  return { sealRecordsPerS: Math.round(all.length / sealS), drainRecordsPerS: Math.round(all.length / drainS), drainBatchesPerS: Math.round(metas.length / drainS), batches: metas.length };
}

/** Bytes per site-day: sealed as the Uplink seals (default batch limits), scaled to the full site. */
function siteDayBytes(dir: string, all: readonly AppendItem[]): Record<string, unknown> {
  const ob = new Outbox({ path: path.join(dir, 'day.db'), synchronous: 'NORMAL', maxBytes: 100 * 1024 ** 3 });
  ob.append(all);
  const metas = ob.seal({ now: DAY_START + 2 * 86_400_000, delayMs: UPLINK_DEFAULTS.batchDelayMs, maxRecords: UPLINK_DEFAULTS.maxBatchRecords, maxBytes: UPLINK_DEFAULTS.maxBatchBytes, gzipLevel: UPLINK_DEFAULTS.gzipLevel, force: true }, () => [0]);
  const scale = (cls: RecordClass): number => (cls === 'health' ? 1 : SITE_ASSETS / ASSETS_MEASURED);
  const rawBy: Record<string, number> = {};
  const gzBy: Record<string, number> = {};
  let s3 = 0;
  let iot = 0;
  let iotMessages = 0;
  let s3Objects = 0;
  let json = 0;
  for (const m of metas) {
    const b = ob.load(m)!;
    const k = scale(m.cls);
    json += m.rawBytes * k;
    rawBy[m.cls] = (rawBy[m.cls] ?? 0) + m.rawBytes;
    gzBy[m.cls] = (gzBy[m.cls] ?? 0) + m.bytes;
    if (UPLINK_DEFAULTS.routes[m.cls].includes('s3')) {
      s3 += m.bytes * k;
      s3Objects += k;
    }
    if (UPLINK_DEFAULTS.routes[m.cls].includes('iotcore')) {
      iot += iotPayload('bench-site', ob.id, { seq: m.id, cls: m.cls, oldestAt: m.oldestAt, createdAt: m.createdAt, count: m.count, body: b.body }).length * k;
      iotMessages += k;
    }
  }
  ob.close();
  // Raw: one processed-telemetry message per inverter and second, 10 points (as the Aggregator benchmark counts it).
  const t: TelemetryMessage = {
    schemaVersion: CONTRACT_VERSION,
    siteId: 'bench-site',
    assetId: 'INV-0001',
    ts: DAY_START + 43_200_000,
    seq: 43_200,
    points: { W: { v: 48231, u: 'W', q: 'good' }, VA: { v: 49196, u: 'VA', q: 'good' }, VAr: { v: 4823, u: 'var', q: 'good' }, PF: { v: 0.98, q: 'good' }, A: { v: 209.7, u: 'A', q: 'good' }, PhVphA: { v: 230.4, u: 'V', q: 'good' }, Hz: { v: 50.01, u: 'Hz', q: 'good' }, DCV: { v: 748.2, u: 'V', q: 'good' }, DCW: { v: 49678, u: 'W', q: 'good' }, TmpCab: { v: 44.6, u: 'Cel', q: 'good' } },
  };
  const raw = Buffer.byteLength(JSON.stringify(t)) * SITE_ASSETS * 86_400;
  const cloud = s3 + iot;
  return {
    assetsMeasured: ASSETS_MEASURED,
    rawTelemetryJsonGB: r1(raw / 1e9),
    rollupsJsonMB: mb(json),
    s3MB: mb(s3),
    s3Objects: Math.round(s3Objects),
    iotCoreMB: mb(iot),
    iotCoreMessages: Math.round(iotMessages),
    cloudMB: mb(cloud),
    reductionPercent: Math.round((1 - cloud / raw) * 10000) / 100,
    ratioRawToCloud: Math.round(raw / cloud),
    gzipByClass: Object.fromEntries(Object.keys(rawBy).map((c) => [c, r1((rawBy[c] ?? 0) / (gzBy[c] ?? 1))])),
    gzipRatio: r1(json / (metas.reduce((a, m) => a + m.bytes * scale(m.cls), 0))),
    // The specification's target (§1.2, docs/specification.md), 10 TB -> 240 GB a day, is 97.6 %.
  };
}

export async function runUplinkBench(opts: { seconds: number; json: boolean }): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-uplink-'));
  const log = (s: string): void => void process.stderr.write(`uplink: ${s}\n`);
  try {
    const day = items(ASSETS_MEASURED);
    const byClass = Object.fromEntries(CLASSES.map((c) => [c, 0])) as Record<RecordClass, number>;
    for (const d of day) byClass[d.cls]++;
    log(`${day.length} records of ${ASSETS_MEASURED} inverters' day; append ${opts.seconds}s each for FULL and NORMAL`);
    const appendFull = appendRate(dir, 'FULL', day, (opts.seconds * 1000) / 2);
    const appendNormal = appendRate(dir, 'NORMAL', day, (opts.seconds * 1000) / 2);
    log('bytes per site-day');
    const siteDayFigures = siteDayBytes(dir, day);
    log('seal + drain');
    // Five copies of the measured day, so the drain spans some tens of default-size batches.
    const drain = await drainRate(dir, Array.from({ length: 5 }, () => day).flat());
    const figures: Record<string, unknown> = {
      machine: describeMachine(),
      records: { measuredAssets: ASSETS_MEASURED, perClass: byClass },
      append: { full: appendFull, normal: appendNormal, groupSize: GROUP },
      drain,
      // One day's records as the Uplink seals them (the drain's repeated copies would flatter gzip).
      compression: { ratio: siteDayFigures['gzipRatio'], byClass: siteDayFigures['gzipByClass'], gzipLevel: UPLINK_DEFAULTS.gzipLevel, specExpects: 5 },
      siteDay: siteDayFigures,
    };
    if (opts.json) process.stdout.write(`${JSON.stringify(figures)}\n`);
    return figures;
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

export function formatUplinkReport(f: Record<string, unknown>): string {
  const a = f['append'] as { full: { recordsPerS: number; mbPerS: number }; normal: { recordsPerS: number; mbPerS: number } };
  const d = f['drain'] as { sealRecordsPerS: number; drainRecordsPerS: number; drainBatchesPerS: number; batches: number };
  const c = f['compression'] as { ratio: number; byClass: Record<string, number> };
  const s = f['siteDay'] as Record<string, number>;
  return [
    `outbox append (groups of ${GROUP}): FULL ${a.full.recordsPerS} records/s (${a.full.mbPerS} MB/s), NORMAL ${a.normal.recordsPerS} records/s (${a.normal.mbPerS} MB/s)`,
    `seal (gzip) ${d.sealRecordsPerS} records/s; drain (send + confirm, null exporter) ${d.drainRecordsPerS} records/s, ${d.drainBatchesPerS} batches/s over ${d.batches} batches`,
    `gzip ratio ${c.ratio}:1 (spec: about 5:1); by class ${Object.entries(c.byClass).map(([k, v]) => `${k} ${v}`).join(', ')}`,
    `site-day (10k points, default routes, S3 on): raw telemetry JSON ${s['rawTelemetryJsonGB']} GB -> cloud ${s['cloudMB']} MB (S3 ${s['s3MB']} MB in ${s['s3Objects']} objects, IoT Core ${s['iotCoreMB']} MB in ${s['iotCoreMessages']} messages): ${s['reductionPercent']} % less, ${s['ratioRawToCloud']}:1 (spec target 97.6 %)`,
  ].join('\n');
}

export function uplinkProblems(f: Record<string, unknown>): string[] {
  const c = f['compression'] as { ratio: number };
  const s = f['siteDay'] as Record<string, number>;
  const out: string[] = [];
  if (!(c.ratio >= 3)) out.push(`gzip ratio ${c.ratio}:1 is far below the spec's 5:1`);
  if (!((s['reductionPercent'] ?? 0) >= 97.6)) out.push(`site-day reduction ${s['reductionPercent']} % is below the spec's 97.6 %`);
  return out;
}
