/**
 * Processor benchmarks (docs/processor.md "Figures"), `runProcessorBench({ seconds, json })`:
 *
 *   hotPath     validate, convert, dedupe, commit to the store: the Processor factory with a real
 *               store (WAL, synchronous FULL) and an in-memory bus, on one core, 200-point
 *               messages (a SunSpec inverter poll is 100-500 points). Target >= 200k samples/s.
 *   rangeQuery  one hour of one 1 Hz series from the Processor's store (sealed chunks + head),
 *               60 random hours. Target < 20 ms.
 *   alarm       telemetry ingest -> alarm handed to the bus, p50/p99 (in process: the Processor's
 *               share of the latency).
 *   runtime     through the local runtime with the real IPC client (./processor-runtime.ts): 100k
 *               samples/s sustained for 12 x `seconds` (60 s at the default 5) with the Processor's
 *               RSS every second, and telemetry publish -> alarm delivery p50/p99.
 * Figures go with the machine (machine.ts) into docs/processor.md.
 */
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { systemClock } from '../../components/lib/clock';
import { validateConfig } from '../../components/lib/config';
import { topics, type AlarmMessage, type Point, type Topic } from '../../components/lib/contract';
import type { PublishOutcome } from '../../components/lib/bus-types';
import { silentLogger } from '../../components/lib/logger';
import { createMetrics } from '../../components/lib/metrics';
import { processorConfigSpec } from '../../components/processor/config';
import { createProcessor, type Processor } from '../../components/processor/processor';
import { RecordingBus } from '../../components/lib/testing/recording-bus';
import { describeMachine } from './machine';
import { runProcessorRuntimeBench } from './processor-runtime';

const SITE = 's1';

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? 0;
}

async function makeProcessor(dir: string, bus: RecordingBus, over: Record<string, unknown> = {}): Promise<Processor> {
  const cfg = validateConfig(processorConfigSpec, { siteId: SITE, unknownAssets: 'accept', maxPastMs: 31536000000, maxClockSkewMs: 86400000, maxFutureMs: 86400000, ...over });
  const p = createProcessor({ bus, logger: silentLogger, metrics: createMetrics({ clock: systemClock }), clock: systemClock, component: 'processor', fail: (e) => { throw e; }, workDir: dir }, cfg);
  await p.start();
  return p;
}

function inverterMessage(asset: string, ts: number, seq: number, points: number): unknown {
  const pts: Record<string, Point> = {};
  for (let k = 0; k < points; k++) pts[`160.module.${k}.DCA`] = { v: ((seq * 7 + k) % 1000) / 10, u: 'A', q: 'good' };
  return { schemaVersion: 1, siteId: SITE, assetId: asset, ts, seq, points: pts };
}

export async function hotPath(seconds: number): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proc-'));
  const bus = new RecordingBus(false);
  const p = await makeProcessor(dir, bus, { alarmRules: [] });
  const POINTS = 200;
  const ASSETS = 50; // 10k series
  const base = Date.now() - 3600_000;
  // Messages are built ahead in small pools so the figure is the Processor's, not the generator's.
  let samples = 0;
  let seq = 0;
  const t0 = performance.now();
  const cpu0 = process.cpuUsage();
  const heap0 = process.memoryUsage().rss;
  while (performance.now() - t0 < seconds * 1000) {
    const batch: Array<[unknown, string]> = [];
    for (let a = 0; a < ASSETS; a++) batch.push([inverterMessage(`INV-${a}`, base + seq * 1000, seq, POINTS), topics.rawTelemetry(SITE, `INV-${a}`)]);
    const tb = performance.now();
    for (const [m, t] of batch) p.ingest(m, t);
    samples += ASSETS * POINTS;
    seq++;
    // Let the commit timer run, as the event loop would between IPC deliveries.
    if (performance.now() - tb > 0) await new Promise((r) => setImmediate(r));
  }
  p.flush();
  const wallS = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  const counters = p.store?.counters();
  const rss = process.memoryUsage().rss;
  await p.close();
  fs.rmSync(dir, { recursive: true, force: true });
  return {
    pointsPerMessage: POINTS,
    series: ASSETS * POINTS,
    samples,
    samplesPerS: Math.round(samples / wallS),
    samplesPerCpuS: Math.round(samples / ((cpu.user + cpu.system) / 1e6)),
    committed: counters?.committed,
    commits: counters?.commits,
    processedPublished: bus.publishCount,
    rssGrowthBytes: rss - heap0,
    note: 'includes building the messages (about a third of the time); see docs/processor.md',
  };
}

async function rangeQuery(): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proc-q-'));
  const p = await makeProcessor(dir, new RecordingBus(false), { alarmRules: [] });
  const HOURS = 6;
  const base = Date.now() - (HOURS + 1) * 3600_000;
  for (let i = 0; i < HOURS * 3600; i++) {
    const pts: Record<string, Point> = {};
    for (let k = 0; k < 20; k++) pts[`103.P${k}`] = { v: Math.round(1000 * Math.sin(i / 600 + k)) / 10, u: 'W', q: 'good' };
    p.ingest({ schemaVersion: 1, siteId: SITE, assetId: 'INV-01', ts: base + i * 1000, seq: i, points: pts });
    if (i % 5000 === 0) p.flush();
  }
  p.store?.seal();
  const times: number[] = [];
  let n = 0;
  for (let q = 0; q < 60; q++) {
    const from = base + Math.floor(Math.random() * (HOURS - 1) * 3600) * 1000;
    const t = performance.now();
    n = p.store?.range({ assetId: 'INV-01', point: '103.P3' }, from, from + 3600_000 - 1).length ?? 0;
    times.push(performance.now() - t);
  }
  await p.close();
  fs.rmSync(dir, { recursive: true, force: true });
  times.sort((a, b) => a - b);
  return { samplesPerQuery: n, p50Ms: percentile(times, 50), p99Ms: percentile(times, 99), maxMs: times[times.length - 1] };
}

class TimedBus extends RecordingBus {
  onAlarm: ((a: AlarmMessage) => void) | undefined;
  override publish<P extends object>(topic: Topic<P>, payload: P): Promise<PublishOutcome> {
    if (topic.endsWith('/alarms')) this.onAlarm?.(payload as unknown as AlarmMessage);
    return super.publish(topic, payload);
  }
}

async function alarmInProcess(rounds: number): Promise<Record<string, unknown>> {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bench-proc-a-'));
  const bus = new TimedBus(false);
  const p = await makeProcessor(dir, bus);
  const lat: number[] = [];
  let sentAt = 0;
  bus.onAlarm = () => lat.push(performance.now() - sentAt);
  const base = Date.now() - 3600_000;
  for (let i = 0; i < rounds * 2; i++) {
    const msg = inverterMessage('INV-01', base + i * 1000, i, 200) as { points: Record<string, Point> };
    msg.points['103.TmpCab'] = { v: i % 2 === 0 ? 80 : 60, u: 'C', q: 'good' };
    sentAt = performance.now();
    p.ingest(msg);
    if (i % 50 === 0) await new Promise((r) => setImmediate(r));
  }
  await p.close();
  fs.rmSync(dir, { recursive: true, force: true });
  lat.sort((a, b) => a - b);
  return { transitions: lat.length, p50Ms: percentile(lat, 50), p99Ms: percentile(lat, 99), maxMs: lat[lat.length - 1] };
}

export async function runProcessorBench(opts: { seconds: number; json: boolean }): Promise<Record<string, unknown>> {
  const log = (s: string): void => void process.stderr.write(`${s}\n`);
  const machine = describeMachine();
  log('processor: hot path');
  const hot = await hotPath(opts.seconds);
  log('processor: range query');
  const range = await rangeQuery();
  log('processor: alarm latency (in process)');
  const alarm = await alarmInProcess(500);
  // bench.js is dist/bench.js: the project root is one up.
  const runtime = await runProcessorRuntimeBench({ projectRoot: path.resolve(__dirname, '..'), seconds: opts.seconds, log });
  const figures = { date: new Date().toISOString(), machine, hotPath: hot, rangeQuery: range, alarmInProcess: alarm, runtime };
  if (!opts.json) log(JSON.stringify(figures, null, 2));
  return figures;
}
