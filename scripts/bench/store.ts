/**
 * Store benchmarks (docs/store.md "Figures"): commit-path ingest rate on one core, commit latency, bytes per
 * sample on a simulated solar-plant day (chunk data and the file at rest), the one-hour range
 * query, a burst followed by rest (the file gives the head's pages back), and where a
 * store-writing process's memory goes at 200k samples/s (./store-memory-worker.ts, one process
 * per scenario). Figures go to docs/store.md with the machine they ran on.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { openStore, type StoreSample, type Synchronous } from '../../components/lib/store';
import { FakeClock } from '../../components/lib/testing/fake-clock';
import { describeMachine } from './machine';
import { bundleWorker } from './nucleus-process';
import type { WorkerOptions } from './store-memory-worker';
import { mulberry32 as rng } from '../../components/lib/random';

const DAY0 = Date.UTC(2026, 10, 26);

function pct(sorted: number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] as number;
}

function round(x: number, d = 2): number {
  return Math.round(x * 10 ** d) / 10 ** d;
}

function tmpDb(tag: string): { dir: string; file: string } {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), `bench-store-${tag}-`));
  return { dir, file: path.join(dir, 'raw.db') };
}

/** Appends and commits as fast as possible: 10 000 series, 100-point messages, 50 000-sample commits. */
export function ingest(seconds: number, synchronous: Synchronous): Record<string, number> {
  const { dir, file } = tmpDb('ingest');
  const clock = new FakeClock(DAY0);
  const store = openStore({ path: file, clock }, { synchronous, maxBatchSamples: 100_000 });
  try {
    const assets = 100;
    const points = 100;
    const msgs: StoreSample[][] = [];
    for (let a = 0; a < assets; a++) msgs.push(Array.from({ length: points }, (_, p) => ({ assetId: `inv-${a}`, point: `p${p}`, ts: 0, v: 0, q: 'good' as const })));
    let samples = 0;
    let sinceCommit = 0;
    let t = DAY0;
    const start = performance.now();
    const end = start + seconds * 1000;
    while (performance.now() < end) {
      t += 1000;
      for (const m of msgs) {
        for (let i = 0; i < m.length; i++) {
          const s = m[i] as StoreSample;
          s.ts = t;
          s.v = (t / 1000 + i) % 977;
        }
        store.append(m);
        samples += m.length;
        sinceCommit += m.length;
        if (sinceCommit >= 50_000) {
          store.flush();
          sinceCommit = 0;
        }
      }
    }
    store.flush();
    const sec = (performance.now() - start) / 1000;
    // Sealing what was ingested: the background cost per sample.
    const s0 = performance.now();
    clock.advance(3600_000);
    store.seal();
    const sealSec = (performance.now() - s0) / 1000;
    return { samples, samplesPerSec: Math.round(samples / sec), sealSamplesPerSec: Math.round(samples / sealSec) };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** One site's rate (10 000 samples/s in 100-point messages every 10 ms) with the real clock. */
async function commitLatency(seconds: number, synchronous: Synchronous): Promise<Record<string, number>> {
  const { dir, file } = tmpDb('latency');
  const store = openStore({ path: file }, { synchronous, sealIntervalMs: 2000, sealLagMs: 1000 });
  const arrivalToDurable: number[] = [];
  const duration: number[] = [];
  store.onCommit((c) => {
    arrivalToDurable.push(c.waitMs + c.durationMs);
    duration.push(c.durationMs);
  });
  try {
    const msgs = Array.from({ length: 100 }, (_, a) => Array.from({ length: 100 }, (_, p) => ({ assetId: `a${a}`, point: `p${p}`, ts: 0, v: 0, q: 'good' as const })));
    const start = Date.now();
    let tick = 0;
    while (Date.now() - start < seconds * 1000) {
      const m = msgs[tick % 100] as StoreSample[];
      const ts = start + Math.floor(tick / 100) * 1000;
      for (const s of m) {
        s.ts = ts;
        s.v = tick % 1000;
      }
      store.append(m);
      tick += 1;
      await new Promise((r) => setTimeout(r, 10));
    }
    arrivalToDurable.sort((a, b) => a - b);
    duration.sort((a, b) => a - b);
    return {
      commits: duration.length,
      arrivalToDurableP50Ms: round(pct(arrivalToDurable, 50)),
      arrivalToDurableP99Ms: round(pct(arrivalToDurable, 99)),
      arrivalToDurableMaxMs: round(arrivalToDurable[arrivalToDurable.length - 1] ?? 0),
      commitP50Ms: round(pct(duration, 50)),
      commitP99Ms: round(pct(duration, 99)),
    };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}


const q = (x: number, step: number): number => Math.round(x / step) / Math.round(1 / step);

/**
 * A solar plant's day at 1 Hz: a weather station, `inverters` inverters and a meter, values
 * quantised as their Modbus registers are (SunSpec scale factors), polls aligned to the second.
 */
function* solarDay(inverters: number): Generator<StoreSample[]> {
  const r = rng(42);
  let cloud = 1;
  let cloudTarget = 1;
  const energy = new Array<number>(inverters).fill(0);
  let meterWh = 5_000_000;
  let modT = 8;
  for (let s = 0; s < 86_400; s++) {
    const ts = DAY0 + s * 1000;
    const hour = s / 3600;
    const clear = hour > 6 && hour < 18 ? Math.sin(((hour - 6) / 12) * Math.PI) * 950 : 0;
    if (r() < 0.002) cloudTarget = r() < 0.5 ? 1 : 0.25 + r() * 0.5; // clouds come and go
    cloud += (cloudTarget - cloud) * 0.05;
    const ghi = clear > 0 ? Math.max(0, clear * cloud + (r() - 0.5) * 4) : 0;
    const amb = 8 + 6 * Math.sin(((hour - 9) / 24) * 2 * Math.PI);
    modT += (amb + ghi * 0.028 - modT) * 0.01 + (r() - 0.5) * 0.05;
    const out: StoreSample[] = [];
    const add = (assetId: string, point: string, v: number): void => {
      out.push({ assetId, point, ts, v, q: 'good' });
    };
    add('wx', 'GHI', Math.round(ghi));
    add('wx', 'POA', Math.round(ghi * 1.12));
    add('wx', 'TmpAmb', q(amb + (r() - 0.5) * 0.2, 0.1));
    add('wx', 'TmpMod', q(modT, 0.1));
    add('wx', 'WndSpd', q(Math.max(0, 3 + Math.sin(s / 900) * 2 + (r() - 0.5)), 0.1));
    let plantW = 0;
    for (let i = 0; i < inverters; i++) {
      const id = `inv-${i}`;
      const w = ghi > 20 ? Math.round((ghi * 105 * (1 - (modT - 25) * 0.004) * (0.98 + i * 0.005) + (r() - 0.5) * 200) / 10) * 10 : 0;
      plantW += w;
      energy[i] = (energy[i] as number) + w / 3600;
      const producing = w > 0;
      add(id, 'W', w);
      add(id, 'DCW', producing ? Math.round((w * 1.025) / 10) * 10 : 0);
      add(id, 'DCV', producing ? q(620 + (r() - 0.5) * 4 - (modT - 25) * 1.2, 0.1) : q(2 + r() * 0.2, 0.1));
      add(id, 'DCA', producing ? q((w * 1.025) / 620, 0.01) : 0);
      add(id, 'PhVphA', producing ? q(230 + (r() - 0.5) * 1.5, 0.1) : 0);
      add(id, 'Hz', producing ? q(50 + (r() - 0.5) * 0.04, 0.01) : 0);
      add(id, 'WH', Math.floor(energy[i] as number));
      add(id, 'TmpCab', q(amb + 5 + w / 12000 + (r() - 0.5) * 0.1, 0.1));
      add(id, 'St', producing ? 4 : 2); // SunSpec St: MPPT / SLEEPING
      add(id, 'Evt1', 0);
    }
    meterWh += plantW / 3600;
    add('meter', 'W', Math.round(plantW * 0.985));
    add('meter', 'TotWhExp', Math.floor(meterWh));
    add('meter', 'PhV', q(231 + (r() - 0.5) * 1, 0.1));
    add('meter', 'PF', q(0.99 + (r() - 0.5) * 0.01, 0.001));
    add('meter', 'Hz', q(50 + (r() - 0.5) * 0.04, 0.01));
    yield out;
  }
}

async function dayAndQuery(): Promise<Record<string, unknown>> {
  const { dir, file } = tmpDb('day');
  const clock = new FakeClock(DAY0);
  const inverters = 4;
  const store = openStore({ path: file, clock }, { synchronous: 'NORMAL', retentionMs: 365 * 86_400_000, sealIntervalMs: 60_000, sealLagMs: 10_000 });
  try {
    let samples = 0;
    let s = 0;
    const t0 = performance.now();
    for (const second of solarDay(inverters)) {
      store.append(second);
      samples += second.length;
      s += 1;
      // Time moves as the Processor's would: the commit timer and the maintenance timer (seal
      // every minute, retention) run on the fake clock.
      if (s % 60 === 0) clock.advance(60_000);
    }
    clock.advance(3600_000);
    store.seal();
    const buildSec = (performance.now() - t0) / 1000;
    const chunkBytes = (store.db.prepare('SELECT sum(length(data)) AS b FROM chunk').get() as { b: number }).b;
    const chunks = (store.db.prepare('SELECT count(*) AS n FROM chunk').get() as { n: number }).n;
    // At rest: the maintenance timer's own seal runs and reclaim, no vacuum or checkpoint by hand.
    clock.advance(3 * 60_000);
    const fileBytes = fs.statSync(file).size;
    const walBytes = fileSize(`${file}-wal`);
    const perSeries: Record<string, number> = {};
    for (const row of store.db.prepare('SELECT s.asset || \'/\' || s.point AS k, sum(length(c.data)) AS b, sum(c.n) AS n FROM chunk c JOIN series s ON s.id = c.series GROUP BY c.series').all() as Array<{ k: string; b: number; n: number }>) {
      if (row.k.startsWith('inv-0/') || !row.k.startsWith('inv-')) perSeries[row.k] = round(row.b / row.n, 3);
    }

    // One hour of a 1 Hz series, at random hours of the day.
    const key = { assetId: 'wx', point: 'GHI' };
    const r = rng(7);
    const rawMs: number[] = [];
    const dsMs: number[] = [];
    let got = 0;
    // Warm-up: statement preparation and JIT, not what a running Aggregator pays.
    for (let i = 0; i < 5; i++) store.range(key, DAY0 + i * 3600_000, DAY0 + (i + 1) * 3600_000 - 1);
    for (let i = 0; i < 60; i++) {
      const from = DAY0 + Math.floor(r() * 23 * 3600) * 1000;
      let a = performance.now();
      got = store.range(key, from, from + 3599_999).length;
      rawMs.push(performance.now() - a);
      a = performance.now();
      store.range(key, from, from + 3599_999, { downsample: { bucketMs: 60_000, agg: 'avg' } });
      dsMs.push(performance.now() - a);
    }
    rawMs.sort((x, y) => x - y);
    dsMs.sort((x, y) => x - y);
    return {
      bytesPerSample: {
        series: store.listSeries().length,
        samples,
        chunks,
        chunkDataBytesPerSample: round(chunkBytes / samples, 3),
        fileBytesPerSampleAtRest: round(fileBytes / samples, 3),
        walBytesAtRest: walBytes,
        perSeriesChunkBytesPerSample: perSeries,
        buildSeconds: round(buildSec, 1),
      },
      rangeQuery1h: { samples: got, p50Ms: round(pct(rawMs, 50), 3), p99Ms: round(pct(rawMs, 99), 3), downsample1mP50Ms: round(pct(dsMs, 50), 3), downsample1mP99Ms: round(pct(dsMs, 99), 3) },
    };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

function fileSize(f: string): number {
  try {
    return fs.statSync(f).size;
  } catch {
    return 0;
  }
}

/**
 * A burst, then rest: 200 000 samples/s (10 000 series, 100-point messages) for `seconds` of
 * simulated time with the maintenance timer running on the fake clock, then three seal intervals
 * with no ingest. The head costs ~30 bytes a sample; once sealed, the store gives those pages
 * back in bounded steps (reclaim.ts), so the file at rest holds the chunks and little else.
 */
function burstAtRest(seconds: number): Record<string, number> {
  const { dir, file } = tmpDb('burst');
  const clock = new FakeClock(DAY0);
  const store = openStore({ path: file, clock }, { synchronous: 'NORMAL' });
  try {
    const series = 10_000;
    const msgs: StoreSample[][] = [];
    for (let a = 0; a < series / 100; a++) msgs.push(Array.from({ length: 100 }, (_, p) => ({ assetId: `inv-${a}`, point: `p${p}`, ts: 0, v: 0, q: 'good' as const })));
    const r = rng(3);
    let samples = 0;
    // 20 polls a second of every series, in 100 ms steps of the clock.
    for (let step = 0; step < seconds * 10; step++) {
      for (let poll = 0; poll < 2; poll++) {
        const ts = clock.now() + poll * 50;
        for (const m of msgs) {
          for (const s of m) {
            s.ts = ts;
            s.v = Math.round((s.v as number) * 10 + (r() - 0.5) * 40) / 10;
          }
          store.append(m);
          samples += m.length;
        }
      }
      clock.advance(100);
    }
    store.flush();
    store.db.pragma('wal_checkpoint(PASSIVE)');
    const burstFile = fs.statSync(file).size;
    const t0 = performance.now();
    clock.advance(3 * 60_000);
    const restSec = (performance.now() - t0) / 1000;
    const chunkBytes = (store.db.prepare('SELECT sum(length(data)) AS b FROM chunk').get() as { b: number }).b;
    const c = store.counters();
    return {
      samples,
      sealedSamples: c.sealedSamples,
      fileBytesPerSampleAfterBurst: round(burstFile / samples, 2),
      chunkDataBytesPerSample: round(chunkBytes / samples, 2),
      fileBytesPerSampleAtRest: round(fs.statSync(file).size / samples, 2),
      walBytesAtRest: fileSize(`${file}-wal`),
      reclaimedPages: c.reclaimedPages,
      sealAndReclaimSeconds: round(restSec, 1),
    };
  } finally {
    store.close();
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/** The Processor's recipe runs node with this V8 old-space cap; the memory workers do too. */
const HEAP_CAP_MIB = 192;

function runMemoryWorker(script: string, o: WorkerOptions): Promise<Array<Record<string, number | string | boolean>>> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [`--max-old-space-size=${HEAP_CAP_MIB}`, script, JSON.stringify(o)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let text = '';
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (d: string) => (text += d));
    child.once('error', reject);
    child.once('close', (code) => {
      if (code !== 0) return reject(new Error(`store memory worker exited ${code}`));
      resolve(text.split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, number | string | boolean>));
    });
  });
}

const MiB = 1024 * 1024;

/** Peaks (and a few last values) of a memory worker's per-second rows, MiB where a size. */
function summariseMemory(rows: Array<Record<string, number | string | boolean>>): Record<string, unknown> {
  const data = rows.filter((r) => r['done'] === undefined);
  const num = (r: Record<string, unknown>, k: string): number => (typeof r[k] === 'number' ? (r[k] as number) : 0);
  const max = (k: string): number => Math.max(0, ...data.map((r) => num(r, k)));
  const mib = (k: string): number => round(max(k) / MiB, 1);
  const last = data[data.length - 1] ?? {};
  const longest = data.reduce((a, r) => (num(r, 'longestTimerMs') > num(a, 'longestTimerMs') ? r : a), data[0] ?? {});
  const done = rows.find((r) => r['done'] !== undefined) ?? {};
  return {
    offered: num(done, 'offered'),
    storedAtEnd: num(last, 'committed'),
    sealedAtEnd: num(last, 'sealed'),
    maxMiB: {
      rss: mib('rss'),
      rssAnon: mib('rssAnon'),
      rssFile: mib('rssFile'),
      mallocHeap: mib('mallocHeap'),
      otherAnon: mib('otherAnon'),
      heapTotal: mib('heapTotal'),
      heapUsed: mib('heapUsed'),
      newSpace: mib('newSpace'),
      oldSpace: mib('oldSpace'),
      external: mib('external'),
      arrayBuffers: mib('arrayBuffers'),
      wal: mib('wal'),
      shm: mib('shm'),
    },
    lastRssMiB: round(num(last, 'rss') / MiB, 1),
    maxPending: max('pending'),
    rejected: max('storeRejected'),
    maxEventLoopLagMs: max('peakLagMs'),
    longestStoreTimerMs: num(longest, 'longestTimerMs'),
    longestStoreTimer: longest['longestTimer'] ?? '',
    sqlite: { pageSize: num(last, 'pageSize'), cacheSize: num(last, 'cacheSize'), mmapSize: num(last, 'mmapSize'), journalSizeLimit: num(last, 'journalSizeLimit') },
  };
}

/**
 * Memory of a process that appends 200 000 samples/s (10 000 series) to a store with sealing
 * running, with the Processor's heap cap; once without the store (node and the generator), once
 * with the default page cache and once with an 8 MiB one.
 */
async function memory(seconds: number, log: (line: string) => void): Promise<Record<string, unknown>> {
  const script = bundleWorker(path.resolve(__dirname, '..'), 'store-memory-worker.ts', 'bench-store-memory-worker.js');
  const base: WorkerOptions = { rate: 200_000, series: 10_000, seconds, store: true, sealIntervalMs: 20_000, sealLagMs: 5_000 };
  const out: Record<string, unknown> = { rate: base.rate, series: base.series, seconds, sealIntervalMs: base.sealIntervalMs, sealLagMs: base.sealLagMs, heapCapMiB: HEAP_CAP_MIB };
  for (const [name, o] of [
    ['withoutStore', { ...base, store: false }],
    ['storeDefaults', base],
    ['storeCache8MiB', { ...base, cacheBytes: 8 * MiB }],
  ] as Array<[string, WorkerOptions]>) {
    log(`memory at 200k samples/s for ${seconds} s: ${name}`);
    out[name] = summariseMemory(await runMemoryWorker(script, o));
  }
  return out;
}

export async function runStoreBench(opts: { seconds: number; json: boolean }): Promise<Record<string, unknown>> {
  const log = (line: string): void => {
    process.stderr.write(`store: ${line}\n`);
  };
  const seconds = Math.max(1, opts.seconds);
  const machine = describeMachine();
  log('ingest (synchronous=FULL)');
  const ingestFull = ingest(seconds, 'FULL');
  log('ingest (synchronous=NORMAL)');
  const ingestNormal = ingest(seconds, 'NORMAL');
  log('commit latency at 10k samples/s (FULL)');
  const latencyFull = await commitLatency(Math.min(seconds, 5), 'FULL');
  log('commit latency at 10k samples/s (NORMAL)');
  const latencyNormal = await commitLatency(Math.min(seconds, 5), 'NORMAL');
  log('simulated solar day and range queries');
  const day = await dayAndQuery();
  log('burst of 200k samples/s, then rest: file bytes per sample');
  const burst = burstAtRest(seconds * 2);
  const mem = await memory(seconds * 12, log);
  const figures = { machine, ingest: { FULL: ingestFull, NORMAL: ingestNormal }, commitLatency: { FULL: latencyFull, NORMAL: latencyNormal }, ...day, burstThenRest: burst, memory: mem };
  if (!opts.json) process.stdout.write(`${JSON.stringify(figures, null, 2)}\n`);
  return figures;
}
