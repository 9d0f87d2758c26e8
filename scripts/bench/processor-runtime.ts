/**
 * Processor benchmarks through the local runtime (docs/processor.md "Figures"), as the Processor
 * runs on a gateway: the nucleus in its own process (./nucleus-process.ts), the BUILT bundle's
 * Processor (`greengrass-build/`, recipe com.dcmms.edge.Processor) deployed with `dcmms-edge
 * deployment create --recipeDir greengrass-build/recipes --artifactDir greengrass-build/artifacts
 * --merge com.dcmms.edge.Processor=<version> --update-config ...`, and a publishing component
 * deployed from a recipe (./processor-worker.ts, bundled at start) that talks to it with the
 * unmodified SDK IPC client. A fresh nucleus per scenario.
 *
 *   sustained  100 inverters x 250 points every 250 ms (100k samples/s offered) for 12 x --seconds
 *              (60 s at the default 5); the Processor process's RSS sampled every second; what
 *              the Processor stored counted afterwards from its store, opened read-only.
 *   alarm      one 200-point poll at a time whose 103.TmpCab crosses the default over-temperature
 *              limit (80 °C raised, 60 °C cleared): publish -> alarm delivered, p50/p99.
 */
import fs from 'node:fs';
import path from 'node:path';
import { pubsubResource } from '../../components/lib/contract';
import { openStoreReader } from '../../components/lib/store';
import { RESULT_FILE, type LatencyFigures } from './ipc-protocol';
import { NucleusProcess, bundleWorker, delay, runCli, shellQuote, workerRecipe } from './nucleus-process';
import { ProcSampler, type ProcSample } from './proc-sampler';
import type { AlarmResult, LoadResult, ProcessorWorkerResult } from './processor-worker';

const PROCESSOR = 'com.dcmms.edge.Processor';
const SITE = 's1';
/** Offered load: 100 assets x 250 points / 250 ms = 100k samples/s, 25 000 series. */
const LOAD = { assets: 100, points: 250, periodMs: 250, window: 32 };
/** The sustained scenario runs this many times --seconds (60 s at the default 5). */
export const SUSTAINED_SECONDS_PER_SECOND = 12;
const ALARM = { asset: 'INV-A1', points: 200, periodMs: 25, rounds: 400, warmup: 20 };
/** Health reports every second, so the Processor's intake can be followed over the run. */
const METRICS_INTERVAL_MS = 1000;
const RSS_INTERVAL_MS = 1000;
const MIB = 1024 * 1024;

export interface RuntimeBenchOptions {
  /** Holds dist/cli.js, greengrass-build/, package.json, scripts/bench/processor-worker.ts. */
  projectRoot: string;
  seconds: number;
  log: (line: string) => void;
}

/**
 * The worker's recipe: publish on raw telemetry, subscribe to alarms and the Processor's health
 * report, nothing else (no wildcard policy; resources from the contract).
 */
function processorWorkerRecipe(name: string, run: string): { name: string; yaml: string } {
  return workerRecipe(
    name,
    'dCMMS Edge Processor benchmark: a SCADA adapter publishing raw telemetry',
    [
      { description: 'publishes raw telemetry', operations: ['aws.greengrass#PublishToTopic'], resources: [pubsubResource('rawTelemetry')] },
      {
        description: "reads the Processor's alarms and health report",
        operations: ['aws.greengrass#SubscribeToTopic'],
        resources: [pubsubResource('alarms'), pubsubResource('componentHealth', { component: 'processor' })],
      },
    ],
    run,
  );
}

function readArgv(pid: string): string[] {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
  } catch {
    return [];
  }
}

class Bench {
  readonly cli: string;
  readonly build: string;
  readonly version: string;
  readonly worker: string;

  constructor(private readonly opts: RuntimeBenchOptions) {
    this.cli = path.join(opts.projectRoot, 'dist', 'cli.js');
    this.build = path.join(opts.projectRoot, 'greengrass-build');
    this.version = (JSON.parse(fs.readFileSync(path.join(opts.projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
    const recipe = path.join(this.build, 'recipes', `${PROCESSOR}-${this.version}.yaml`);
    if (!fs.existsSync(this.cli) || !fs.existsSync(recipe)) throw new Error(`${this.cli} or ${recipe} is missing: run 'npm run build' first (npm run bench does)`);
    this.worker = bundleWorker(opts.projectRoot, 'processor-worker.ts', 'bench-processor-worker.js');
  }

  command(role: string, args: Record<string, string | number>): string {
    const flags = Object.entries(args).map(([k, v]) => `--${k} ${shellQuote(String(v))}`);
    return [shellQuote(process.execPath), shellQuote(this.worker), role, ...flags].join(' ');
  }

  /** Runs `fn` against a fresh nucleus; stops it (SIGTERM) whatever happens, keeps its root on failure. */
  async withNucleus<T>(label: string, fn: (n: NucleusProcess) => Promise<T>): Promise<T> {
    const n = await NucleusProcess.start({ cliPath: this.cli });
    let ok = false;
    try {
      const r = await fn(n);
      ok = true;
      return r;
    } finally {
      await n.stop({ keepRoot: !ok });
      if (!ok) this.opts.log(`processor: ${label} failed; nucleus root kept at ${n.root}`);
    }
  }

  /**
   * The built Processor, configured for the site and its assets, as a user deploys it. Its recipe
   * and artifacts are copied out of greengrass-build/ first (into the nucleus root, removed with
   * it): a build running meanwhile rewrites that folder, and the deployment reads every recipe in
   * --recipeDir, so a half-written one would fail it.
   */
  async deployProcessor(n: NucleusProcess, assets: string[]): Promise<void> {
    const snap = path.join(n.root, 'bench-build');
    const recipe = `${PROCESSOR}-${this.version}.yaml`;
    fs.mkdirSync(path.join(snap, 'recipes'), { recursive: true });
    fs.copyFileSync(path.join(this.build, 'recipes', recipe), path.join(snap, 'recipes', recipe));
    fs.cpSync(path.join(this.build, 'artifacts', PROCESSOR, this.version), path.join(snap, 'artifacts', PROCESSOR, this.version), { recursive: true });
    const update = { [PROCESSOR]: { MERGE: { siteId: SITE, assets, metricsIntervalMs: METRICS_INTERVAL_MS } } };
    const { code, output } = await runCli([
      this.cli, 'deployment', 'create', '--root', n.root,
      '--recipeDir', path.join(snap, 'recipes'), '--artifactDir', path.join(snap, 'artifacts'),
      '--merge', `${PROCESSOR}=${this.version}`, '--update-config', JSON.stringify(update), '--wait',
    ]);
    if (code !== 0 || !output.includes('SUCCEEDED')) throw new Error(`deployment of ${PROCESSOR} failed (exit ${code}):\n${output}\n${n.componentLog(PROCESSOR)}\nnucleus:\n${n.tail()}`);
  }

  /** The Processor's node process (not the `sh -c` around it), found by its artifact path under this nucleus's root. */
  async processorPid(n: NucleusProcess): Promise<number> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      for (const entry of fs.readdirSync('/proc')) {
        if (!/^\d+$/.test(entry)) continue;
        const argv = readArgv(entry);
        // The script, after any node options (the recipe caps the heap with --max-old-space-size).
        const main = argv.slice(1).find((a) => !a.startsWith('-')) ?? '';
        if (path.basename(argv[0] ?? '') === 'node' || argv[0] === process.execPath) {
          if (main.startsWith(n.root) && main.includes(PROCESSOR) && main.endsWith('main.js')) return Number(entry);
        }
      }
      if (Date.now() > deadline) throw new Error(`no ${PROCESSOR} process under ${n.root}`);
      await delay(100);
    }
  }

  async collect(n: NucleusProcess, name: string, timeoutMs: number): Promise<ProcessorWorkerResult> {
    const file = path.join(n.workDir(name), RESULT_FILE);
    const deadline = Date.now() + timeoutMs;
    while (!fs.existsSync(file)) {
      if (Date.now() > deadline) throw new Error(`no result from ${name} after ${timeoutMs} ms\n${n.componentLog(name)}\n${n.componentLog(PROCESSOR)}\nnucleus:\n${n.tail()}`);
      await delay(200);
    }
    const r = JSON.parse(fs.readFileSync(file, 'utf8')) as ProcessorWorkerResult;
    if (r.role === 'error') throw new Error(`${name} failed: ${r.error}\n${n.componentLog(name)}\n${n.componentLog(PROCESSOR)}`);
    return r;
  }
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  if (n < 2) return 0;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den > 0 ? num / den : 0;
}

const mib = (b: number): number => Math.round((b / MIB) * 10) / 10;

export interface RssFigures {
  samples: number;
  firstMiB: number;
  lastMiB: number;
  maxMiB: number;
  /** Least squares over the whole load window, and over its second half (after warm-up). */
  slopeMiBPerMin: number;
  slopeSecondHalfMiBPerMin: number;
  /** One sample every 5 s, MiB, for the shape of the curve. */
  every5sMiB: number[];
  /**
   * Where the growth is, first -> last sample of the window (/proc/<pid>/status): RssAnon is the
   * V8 heap and native allocations, RssFile + RssShmem are mapped files (SQLite's WAL index).
   */
  split?: Record<'RssAnon' | 'RssFile' | 'RssShmem', { firstMiB: number; lastMiB: number }>;
}

type RssSplit = Record<'RssAnon' | 'RssFile' | 'RssShmem', number>;

/** RssAnon / RssFile / RssShmem of a process, bytes (proc(5)); undefined once it is gone. */
function readRssSplit(pid: number): RssSplit | undefined {
  try {
    const text = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const get = (k: string): number => Number(new RegExp(`^${k}:\\s+(\\d+) kB$`, 'm').exec(text)?.[1] ?? 0) * 1024;
    return { RssAnon: get('RssAnon'), RssFile: get('RssFile'), RssShmem: get('RssShmem') };
  } catch {
    return undefined;
  }
}

function rssFigures(samples: ProcSample[], split: Array<{ t: bigint; v: RssSplit }>): RssFigures {
  const t0 = samples[0]?.t ?? 0n;
  const xs = samples.map((s) => Number(s.t - t0) / 60e9);
  const ys = samples.map((s) => s.rssBytes / MIB);
  const half = Math.floor(samples.length / 2);
  const r = (x: number): number => Math.round(x * 100) / 100;
  const out: RssFigures = {
    samples: samples.length,
    firstMiB: mib(samples[0]?.rssBytes ?? 0),
    lastMiB: mib(samples[samples.length - 1]?.rssBytes ?? 0),
    maxMiB: mib(Math.max(...samples.map((s) => s.rssBytes))),
    slopeMiBPerMin: r(slope(xs, ys)),
    slopeSecondHalfMiBPerMin: r(slope(xs.slice(half), ys.slice(half))),
    every5sMiB: samples.filter((_, i) => i % Math.max(1, Math.round(5000 / RSS_INTERVAL_MS)) === 0).map((s) => mib(s.rssBytes)),
  };
  const a = split[0]?.v;
  const z = split[split.length - 1]?.v;
  if (a && z) {
    out.split = {
      RssAnon: { firstMiB: mib(a.RssAnon), lastMiB: mib(z.RssAnon) },
      RssFile: { firstMiB: mib(a.RssFile), lastMiB: mib(z.RssFile) },
      RssShmem: { firstMiB: mib(a.RssShmem), lastMiB: mib(z.RssShmem) },
    };
  }
  return out;
}

/** Samples stored, summed over every series of the Processor's store (chunk statistics, no decoding). */
function countStored(dbFile: string): { series: number; samples: number } {
  const reader = openStoreReader(dbFile);
  try {
    const series = reader.listSeries();
    let samples = 0;
    for (const s of series) samples += reader.chunkStats({ assetId: s.assetId, point: s.point }, 0, Number.MAX_SAFE_INTEGER).total.n;
    return { series: series.length, samples };
  } finally {
    reader.close();
  }
}

function sumValues(r: Record<string, number>): number {
  return Object.values(r).reduce((a, b) => a + b, 0);
}

export interface SustainedFigures {
  seconds: number;
  assets: number;
  pointsPerMessage: number;
  periodMs: number;
  series: number;
  messageBytes: number;
  offeredSamplesPerS: number;
  published: { messages: number; samples: number; samplesPerS: number; errors: number; firstError?: string; maxLagMs: number; lateOver100Ms: number };
  /** Samples in the Processor's store afterwards, per second of the publishing window. */
  stored: { samples: number; series: number; samplesPerS: number; missing: number };
  /** From the Processor's health reports (messagesIn x points), per ~1 s interval inside the load. */
  intakeSamplesPerS: { min: number; median: number; max: number };
  /** Last publish answered -> the Processor's health report showing every message in (resolution 1 s). */
  catchUpMs: number | null;
  /** The Processor's largest reported queues during the load (store: samples awaiting commit; ipc: publishes queued). */
  maxQueues: Record<string, number>;
  rejections: Record<string, number>;
  dropped: Record<string, number>;
  errors: number;
  processorRss: RssFigures;
  cpuPercent: { processor: number; nucleus: number; publisher: number; other: number };
}

async function sustained(b: Bench, seconds: number, log: (s: string) => void): Promise<SustainedFigures> {
  const assets = Array.from({ length: LOAD.assets }, (_, a) => `INV-${String(a + 1).padStart(3, '0')}`);
  return b.withNucleus('sustained', async (n) => {
    await b.deployProcessor(n, assets);
    const pid = await b.processorPid(n);
    const name = 'com.bench.ProcLoad';
    const rss = new ProcSampler(pid, RSS_INTERVAL_MS);
    const machine = new ProcSampler(n.pid, RSS_INTERVAL_MS, (argv) => (argv[1] === b.worker ? 'publisher' : undefined));
    const split: Array<{ t: bigint; v: RssSplit }> = [];
    const splitTimer = setInterval(() => {
      const v = readRssSplit(pid);
      if (v) split.push({ t: process.hrtime.bigint(), v });
    }, RSS_INTERVAL_MS);
    rss.start();
    machine.start();
    let r: LoadResult;
    try {
      const args = { name, site: SITE, assets: LOAD.assets, points: LOAD.points, 'period-ms': LOAD.periodMs, seconds, window: LOAD.window };
      await n.deploy([processorWorkerRecipe(name, b.command('load', args))]);
      log(`processor:   publishing for ${seconds} s ...`);
      r = (await b.collect(n, name, (seconds + 150) * 1000)) as LoadResult;
    } finally {
      rss.stop();
      machine.stop();
      clearInterval(splitTimer);
    }
    const startNs = BigInt(r.startNs);
    const endNs = BigInt(r.endNs);
    // Let the last commit window pass (and the final health report) before counting.
    await delay(1000);
    const stored = countStored(path.join(n.workDir(PROCESSOR), 'raw.db'));
    const durationS = Number(endNs - startNs) / 1e9;
    const inLoad = r.health.filter((h) => BigInt(h.tNs) >= startNs && BigInt(h.tNs) <= endNs);
    const rates: number[] = [];
    for (let i = 1; i < inLoad.length; i++) {
      const dt = Number(BigInt(inLoad[i]!.tNs) - BigInt(inLoad[i - 1]!.tNs)) / 1e9;
      if (dt > 0) rates.push(((inLoad[i]!.messagesIn - inLoad[i - 1]!.messagesIn) * LOAD.points) / dt);
    }
    rates.sort((x, y) => x - y);
    const maxQueues: Record<string, number> = {};
    for (const h of r.health) for (const [q, v] of Object.entries(h.queues)) maxQueues[q] = Math.max(maxQueues[q] ?? 0, v);
    const last = r.health[r.health.length - 1]!;
    const procWin = rss.window(startNs, endNs);
    const nucWin = machine.window(startNs, endNs);
    const publisherCpu = nucWin.childrenCpuPercent['publisher'] ?? 0;
    const samples = r.sent * LOAD.points;
    return {
      seconds,
      assets: LOAD.assets,
      pointsPerMessage: LOAD.points,
      periodMs: LOAD.periodMs,
      series: LOAD.assets * LOAD.points,
      messageBytes: r.messageBytes,
      offeredSamplesPerS: (LOAD.assets * LOAD.points * 1000) / LOAD.periodMs,
      published: {
        messages: r.sent,
        samples,
        samplesPerS: Math.round(samples / durationS),
        errors: r.errors,
        ...(r.firstError !== undefined ? { firstError: r.firstError } : {}),
        maxLagMs: Math.round(r.maxLagMs),
        lateOver100Ms: r.lateOver100Ms,
      },
      stored: { samples: stored.samples, series: stored.series, samplesPerS: Math.round(stored.samples / durationS), missing: samples - stored.samples },
      intakeSamplesPerS: {
        min: Math.round(rates[0] ?? 0),
        median: Math.round(rates[Math.floor((rates.length - 1) / 2)] ?? 0),
        max: Math.round(rates[rates.length - 1] ?? 0),
      },
      catchUpMs: r.caughtUpNs !== undefined ? Math.max(0, Math.round(Number(BigInt(r.caughtUpNs) - endNs) / 1e6)) : null,
      maxQueues,
      rejections: last.rejections,
      dropped: last.dropped,
      errors: last.errors,
      processorRss: rssFigures(
        rss.samples.filter((s) => s.t >= startNs && s.t <= endNs),
        split.filter((s) => s.t >= startNs && s.t <= endNs),
      ),
      cpuPercent: {
        processor: Math.round(procWin.cpuPercent),
        nucleus: Math.round(nucWin.cpuPercent),
        publisher: Math.round(publisherCpu),
        other: Math.round(Math.max(0, nucWin.machineCpuPercent - nucWin.cpuPercent - publisherCpu - procWin.cpuPercent)),
      },
    };
  });
}

export interface AlarmFigures {
  pointsPerMessage: number;
  transitions: number;
  latencyMs: { p50: number; p99: number; max: number; mean: number };
  publishRttMs: { p50: number; p99: number };
  raised: number;
  cleared: number;
  missing: number;
  unexpected: number;
  /** CPU% over the measurement (100 = one core); `other` is every other process on the machine. */
  cpuPercent: { processor: number; nucleus: number; worker: number; other: number };
}

const ms = (us: number): number => Math.round(us) / 1000;

function toMs(l: LatencyFigures): { p50: number; p99: number; max: number; mean: number } {
  return { p50: ms(l.p50Us), p99: ms(l.p99Us), max: ms(l.maxUs), mean: ms(l.meanUs) };
}

async function alarm(b: Bench): Promise<AlarmFigures> {
  return b.withNucleus('alarm', async (n) => {
    await b.deployProcessor(n, [ALARM.asset]);
    const name = 'com.bench.ProcAlarm';
    const args = { name, site: SITE, asset: ALARM.asset, points: ALARM.points, 'period-ms': ALARM.periodMs, rounds: ALARM.rounds, warmup: ALARM.warmup };
    const sampler = new ProcSampler(n.pid, RSS_INTERVAL_MS, (argv) => (argv[1] === b.worker ? 'worker' : undefined));
    const pid = await b.processorPid(n);
    const proc = new ProcSampler(pid, RSS_INTERVAL_MS);
    sampler.start();
    proc.start();
    let r: AlarmResult;
    try {
      await n.deploy([processorWorkerRecipe(name, b.command('alarm', args))]);
      r = (await b.collect(n, name, 180_000)) as AlarmResult;
    } finally {
      sampler.stop();
      proc.stop();
    }
    const w = sampler.window(BigInt(r.startNs), BigInt(r.endNs));
    const p = proc.window(BigInt(r.startNs), BigInt(r.endNs));
    const worker = w.childrenCpuPercent['worker'] ?? 0;
    return {
      pointsPerMessage: r.pointsPerMessage,
      transitions: r.latency.samples,
      latencyMs: toMs(r.latency),
      publishRttMs: { p50: ms(r.publishRtt.p50Us), p99: ms(r.publishRtt.p99Us) },
      raised: r.raised,
      cleared: r.cleared,
      missing: r.missing,
      unexpected: r.unexpected,
      cpuPercent: { processor: Math.round(p.cpuPercent), nucleus: Math.round(w.cpuPercent), worker: Math.round(worker), other: Math.round(Math.max(0, w.machineCpuPercent - w.cpuPercent - worker - p.cpuPercent)) },
    };
  });
}

export interface RuntimeFigures {
  sustained: SustainedFigures;
  alarm: AlarmFigures;
  /** What went wrong (lost samples, missing alarms, failed publishes); empty when none. */
  problems: string[];
}

export async function runProcessorRuntimeBench(opts: RuntimeBenchOptions): Promise<RuntimeFigures> {
  const b = new Bench(opts);
  const seconds = opts.seconds * SUSTAINED_SECONDS_PER_SECOND;
  opts.log(`processor: through the runtime, ${LOAD.assets} x ${LOAD.points} points every ${LOAD.periodMs} ms for ${seconds} s ...`);
  const s = await sustained(b, seconds, opts.log);
  opts.log(`processor:   ${s.stored.samplesPerS} samples/s stored, RSS ${s.processorRss.firstMiB} -> ${s.processorRss.lastMiB} MiB (max ${s.processorRss.maxMiB})`);
  opts.log(`processor: alarm latency through the runtime, ${ALARM.rounds} transitions ...`);
  const a = await alarm(b);
  opts.log(`processor:   p50 ${a.latencyMs.p50} ms, p99 ${a.latencyMs.p99} ms`);
  const problems: string[] = [];
  if (s.published.errors) problems.push(`sustained: ${s.published.errors} publish error(s), first: ${s.published.firstError ?? '?'}`);
  if (s.stored.missing) problems.push(`sustained: ${s.stored.missing} published sample(s) not in the store`);
  if (s.catchUpMs === null) problems.push('sustained: the Processor did not report every message in within 30 s');
  if (sumValues(s.rejections) || sumValues(s.dropped) || s.errors) problems.push(`sustained: rejections ${JSON.stringify(s.rejections)}, dropped ${JSON.stringify(s.dropped)}, errors ${s.errors}`);
  if (a.missing || a.unexpected) problems.push(`alarm: ${a.missing} alarm(s) missing, ${a.unexpected} unexpected`);
  return { sustained: s, alarm: a, problems };
}
