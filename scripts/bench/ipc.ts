/**
 * IPC benchmark of the local runtime, measured as it runs on a gateway: the nucleus in its own
 * process (`dcmms-edge nucleus`), publishers and subscribers as real components deployed from
 * recipes with `dcmms-edge deployment create --wait`, using the unmodified SDK client. A fresh
 * nucleus per scenario, so no scenario inherits another's heap or connections.
 *
 * Scenarios:
 *   throughput  one publisher keeps `window` PublishToTopic calls outstanding for `seconds` to 1
 *               or 10 subscriber components (one subscription each, one process each), with
 *               100 B and 10 KB messages; subscribers check sequence numbers for loss.
 *   latency     one component publishes one message at a time to a topic it subscribes to.
 * The nucleus's RSS and CPU are sampled from /proc while the load runs (./proc-sampler.ts).
 */
import fs from 'node:fs';
import path from 'node:path';
import {
  LatencyFigures,
  LatencyResult,
  PublisherResult,
  RESULT_FILE,
  SubscriberResult,
  TOPIC_RESOURCE,
  WorkerResult,
} from './ipc-protocol';
import { NucleusProcess, bundleWorker, delay, shellQuote, workerRecipe } from './nucleus-process';
import { ProcSampler, WindowStats, readRss } from './proc-sampler';

export interface IpcBenchOptions {
  /** Project root (holds dist/cli.js and scripts/bench/ipc-worker.ts). */
  projectRoot: string;
  /** Load duration of each scenario. */
  seconds: number;
  /** Outstanding PublishToTopic calls the publisher keeps. */
  window: number;
  /** Write a V8 CPU profile of each scenario's nucleus into this folder (node --cpu-prof). */
  cpuProfileDir?: string;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

export interface NucleusFigures extends Omit<WindowStats, 'childrenCpuPercent'> {
  /** RSS of this scenario's fresh nucleus after start, nothing deployed. */
  idleRssBytes: number;
}

export interface ThroughputFigures {
  name: string;
  payloadBytes: number;
  /** Serialised size of the `message` object actually sent. */
  messageBytes: number;
  subscribers: number;
  window: number;
  /** First publish sent -> last publish answered. */
  durationS: number;
  published: { messages: number; msgsPerS: number; mbPerS: number };
  /** Summed over subscribers, each over its own first -> last delivery. */
  delivered: { messages: number; msgsPerS: number; mbPerS: number; slowestSubscriberMsgsPerS: number };
  lost: number;
  /**
   * Deliveries that reached their subscriber after the publisher's `done` did (same connection,
   * another stream): not lost, but a sign the client or the runtime reorders across streams.
   */
  deliveredAfterDone: number;
  /** Subscribers whose connection the nucleus closed during the run, with the reason they saw. */
  disconnected: string[];
  /** Error lines the nucleus logged during the scenario. */
  nucleusErrors: string[];
  duplicates: number;
  outOfOrder: number;
  publishErrors: number;
  firstPublishError?: string;
  /** Publish -> delivery under load: median of the subscribers' p50, worst p99 and max. */
  latencyUnderLoad: { p50Us: number; p99Us: number; maxUs: number };
  nucleus: NucleusFigures;
  /**
   * Nucleus CPU time per published message and per delivery (µs): what the runtime itself costs,
   * steadier than the rates when the clients are the bottleneck or the machine is shared.
   */
  nucleusCpuUs: { perPublish: number; perDelivery: number };
  /** CPU% of the worker processes (100 = one core): the SDK client's share of the work. */
  componentsCpuPercent: { publisher: number; subscribers: number };
  /**
   * CPU% of everything else on the machine (the orchestrator, the CLI polling the deployment,
   * and whatever else runs): more than a few % means the figures were disturbed.
   */
  otherCpuPercent: number;
}

export interface LatencyScenarioFigures {
  messageBytes: number;
  publishRtt: LatencyFigures;
  delivery: LatencyFigures;
  nucleus: NucleusFigures;
  componentCpuPercent: number;
  otherCpuPercent: number;
}

export interface IpcBenchResult {
  seconds: number;
  window: number;
  /** Median of the scenarios' idle RSS. */
  idleRssBytes: number;
  /** Highest RSS sampled under any throughput load, and where. */
  maxLoadRssBytes: number;
  maxLoadScenario: string;
  throughput: ThroughputFigures[];
  latency: LatencyScenarioFigures;
  ratios: Record<string, number>;
  /** Lost, duplicated or reordered messages, or failed publishes: the runtime misbehaved. */
  correctnessProblems: string[];
}

const PAYLOADS = [100, 10_240];
const FAN_OUT = [1, 10];
const LATENCY_PAYLOAD = 100;
const SAMPLE_INTERVAL_MS = 200;
/** Let the fresh nucleus finish starting before its idle RSS is read. */
const IDLE_SETTLE_MS = 1_000;
const MB = 1e6;

/** Bundles the IPC worker (scripts/bench/ipc-worker.ts) to dist/bench-worker.js. */
export function buildWorker(projectRoot: string): string {
  return bundleWorker(projectRoot, 'ipc-worker.ts', 'bench-worker.js');
}

/** A component whose only permission is pub/sub on bench/* (no wildcard policy). */
function recipe(name: string, run: string): { name: string; yaml: string } {
  const ops = ['aws.greengrass#PublishToTopic', 'aws.greengrass#SubscribeToTopic'];
  return workerRecipe(name, 'dCMMS Edge IPC benchmark worker', [{ description: 'bench', operations: ops, resources: [TOPIC_RESOURCE] }], run);
}

class Scenario {
  constructor(
    private readonly opts: IpcBenchOptions,
    private readonly workerPath: string,
  ) {}

  command(role: string, args: Record<string, string | number>): string {
    const flags = Object.entries(args).map(([k, v]) => `--${k} ${shellQuote(String(v))}`);
    const dir = this.opts.cpuProfileDir;
    const prof = dir ? ['--cpu-prof', shellQuote(`--cpu-prof-dir=${dir}`), shellQuote(`--cpu-prof-name=${role}-${String(args.name)}-${process.hrtime.bigint()}.cpuprofile`)] : [];
    return [shellQuote(process.execPath), ...prof, shellQuote(this.workerPath), role, ...flags].join(' ');
  }

  /** Labels the worker processes by role for the sampler (not the `sh -c` wrapping them). */
  readonly classify = (argv: string[]): string | undefined => {
    if (argv[0] !== process.execPath) return undefined;
    const at = argv.indexOf(this.workerPath);
    return at > 0 ? argv[at + 1] : undefined;
  };

  /** Runs `fn` against a fresh nucleus; stops it (SIGTERM) whatever happens, keeps its root on failure. */
  async withNucleus<T>(label: string, fn: (n: NucleusProcess, idleRssBytes: number) => Promise<T>): Promise<T> {
    const dir = this.opts.cpuProfileDir;
    const n = await NucleusProcess.start({
      cliPath: path.join(this.opts.projectRoot, 'dist', 'cli.js'),
      nodeArgs: dir ? ['--cpu-prof', `--cpu-prof-dir=${dir}`, `--cpu-prof-name=nucleus-${label.replaceAll(' ', '')}.cpuprofile`] : [],
    });
    let ok = false;
    try {
      await delay(IDLE_SETTLE_MS);
      const result = await fn(n, readRss(n.pid));
      ok = true;
      return result;
    } finally {
      await n.stop({ keepRoot: !ok });
      if (!ok) this.opts.log(`ipc: ${label} failed; nucleus root kept at ${n.root}`);
    }
  }

  /** Polls the components' result.json files until all are there (or one reports an error). */
  async collect(n: NucleusProcess, names: string[], timeoutMs: number): Promise<Map<string, WorkerResult>> {
    const results = new Map<string, WorkerResult>();
    const deadline = Date.now() + timeoutMs;
    while (results.size < names.length) {
      for (const name of names) {
        if (results.has(name)) continue;
        const file = path.join(n.workDir(name), RESULT_FILE);
        if (!fs.existsSync(file)) continue;
        const r = JSON.parse(fs.readFileSync(file, 'utf8')) as WorkerResult;
        if (r.role === 'error') throw new Error(`${name} failed: ${r.error}\n${n.componentLog(name)}`);
        results.set(name, r);
      }
      if (results.size === names.length) break;
      if (Date.now() > deadline) {
        const missing = names.filter((x) => !results.has(x));
        throw new Error(`no result from ${missing.join(', ')} after ${timeoutMs} ms\n${missing.map((x) => n.componentLog(x)).join('\n')}\nnucleus:\n${n.tail()}`);
      }
      await delay(100);
    }
    return results;
  }

  async throughput(payloadBytes: number, subscribers: number): Promise<ThroughputFigures> {
    const { seconds, window } = this.opts;
    const name = `${payloadBytes >= 1024 ? `${payloadBytes / 1024} KB` : `${payloadBytes} B`} x ${subscribers} sub`;
    return this.withNucleus(name, async (n, idleRssBytes) => {
      const subNames = Array.from({ length: subscribers }, (_, i) => `com.bench.Sub${i + 1}`);
      const pubName = 'com.bench.Pub';
      await n.deploy(subNames.map((s) => recipe(s, this.command('sub', { name: s }))));
      const sampler = new ProcSampler(n.pid, SAMPLE_INTERVAL_MS, this.classify);
      sampler.start();
      let results: Map<string, WorkerResult>;
      try {
        await n.deploy([recipe(pubName, this.command('pub', { name: pubName, subscribers, seconds, bytes: payloadBytes, window }))]);
        results = await this.collect(n, [pubName, ...subNames], (seconds + 90) * 1000);
      } finally {
        sampler.stop();
      }
      const pub = results.get(pubName) as PublisherResult;
      const subs = subNames.map((s) => results.get(s) as SubscriberResult);
      const durationS = Number(BigInt(pub.endNs) - BigInt(pub.startNs)) / 1e9;
      const perSub = subs.map((s) => {
        const spanS = Number(BigInt(s.lastNs) - BigInt(s.firstNs)) / 1e9;
        return spanS > 0 ? s.unique / spanS : 0;
      });
      const deliveredMsgsPerS = perSub.reduce((a, b) => a + b, 0);
      const p50s = subs.map((s) => s.latency.p50Us).sort((a, b) => a - b);
      const load = split(idleRssBytes, sampler.window(BigInt(pub.startNs), BigInt(pub.endNs)));
      // The nucleus routes each publish to every subscriber while handling it (only socket flushes
      // may come later), so the deliveries it made in the publisher's window are sent x subscribers.
      const deliveredInWindow = pub.sent * subscribers;
      return {
        name,
        payloadBytes,
        messageBytes: pub.messageBytes,
        subscribers,
        window,
        durationS,
        published: { messages: pub.sent, msgsPerS: pub.sent / durationS, mbPerS: (pub.sent * pub.messageBytes) / durationS / MB },
        delivered: {
          messages: subs.reduce((a, s) => a + s.unique, 0),
          msgsPerS: deliveredMsgsPerS,
          mbPerS: (deliveredMsgsPerS * pub.messageBytes) / MB,
          slowestSubscriberMsgsPerS: Math.min(...perSub),
        },
        lost: subs.reduce((a, s) => a + Math.max(0, (s.expected ?? pub.attempted) - s.unique), 0),
        disconnected: subs.filter((s) => s.disconnected !== undefined).map((s) => `${s.component}: ${s.disconnected}`),
        nucleusErrors: n.errors(),
        deliveredAfterDone: subs.reduce((a, s) => a + (s.uniqueAtDone === undefined ? 0 : s.unique - s.uniqueAtDone), 0),
        duplicates: subs.reduce((a, s) => a + s.duplicates, 0),
        outOfOrder: subs.reduce((a, s) => a + s.outOfOrder, 0),
        publishErrors: pub.errors,
        ...(pub.firstError !== undefined ? { firstPublishError: pub.firstError } : {}),
        latencyUnderLoad: {
          p50Us: p50s[Math.floor((p50s.length - 1) / 2)] ?? 0,
          p99Us: Math.max(...subs.map((s) => s.latency.p99Us)),
          maxUs: Math.max(...subs.map((s) => s.latency.maxUs)),
        },
        nucleus: load.nucleus,
        nucleusCpuUs: {
          perPublish: (load.nucleus.cpuPercent / 100) * 1e6 / (pub.sent / durationS),
          perDelivery: (load.nucleus.cpuPercent / 100) * 1e6 / (deliveredInWindow / durationS),
        },
        componentsCpuPercent: { publisher: load.cpu['pub'] ?? 0, subscribers: load.cpu['sub'] ?? 0 },
        otherCpuPercent: load.otherCpuPercent,
      };
    });
  }

  async latency(): Promise<LatencyScenarioFigures> {
    const { seconds } = this.opts;
    return this.withNucleus('latency', async (n, idleRssBytes) => {
      const name = 'com.bench.Lat';
      const sampler = new ProcSampler(n.pid, SAMPLE_INTERVAL_MS, this.classify);
      sampler.start();
      let r: LatencyResult;
      try {
        await n.deploy([recipe(name, this.command('lat', { name, seconds, bytes: LATENCY_PAYLOAD }))]);
        r = (await this.collect(n, [name], (seconds + 90) * 1000)).get(name) as LatencyResult;
      } finally {
        sampler.stop();
      }
      const load = split(idleRssBytes, sampler.window(BigInt(r.startNs), BigInt(r.endNs)));
      return {
        messageBytes: r.messageBytes,
        publishRtt: r.publishRtt,
        delivery: r.delivery,
        nucleus: load.nucleus,
        componentCpuPercent: load.cpu['lat'] ?? 0,
        otherCpuPercent: load.otherCpuPercent,
      };
    });
  }
}

/** The nucleus's own figures, its components' CPU% by worker role (pub, sub, lat), and the rest. */
function split(idleRssBytes: number, w: WindowStats): { nucleus: NucleusFigures; cpu: Record<string, number>; otherCpuPercent: number } {
  const { childrenCpuPercent, ...nucleus } = w;
  const ours = w.cpuPercent + Object.values(childrenCpuPercent).reduce((a, b) => a + b, 0);
  return { nucleus: { idleRssBytes, ...nucleus }, cpu: childrenCpuPercent, otherCpuPercent: Math.max(0, w.machineCpuPercent - ours) };
}

function ratios(t: ThroughputFigures[]): Record<string, number> {
  const find = (bytes: number, subs: number): ThroughputFigures | undefined => t.find((x) => x.payloadBytes === bytes && x.subscribers === subs);
  const out: Record<string, number> = {};
  for (const bytes of PAYLOADS) {
    const one = find(bytes, 1);
    const ten = find(bytes, 10);
    if (one && ten) {
      const tag = bytes >= 1024 ? `${bytes / 1024}KB` : `${bytes}B`;
      out[`fanOutDelivered_${tag}_10vs1`] = ten.delivered.msgsPerS / one.delivered.msgsPerS;
      out[`fanOutPublished_${tag}_10vs1`] = ten.published.msgsPerS / one.published.msgsPerS;
      out[`nucleusCpuPerDelivery_${tag}_10vs1`] = ten.nucleusCpuUs.perDelivery / one.nucleusCpuUs.perDelivery;
    }
  }
  for (const subs of FAN_OUT) {
    const small = find(100, subs);
    const big = find(10_240, subs);
    if (small && big) {
      out[`deliveredMBps_10KBvs100B_${subs}sub`] = big.delivered.mbPerS / small.delivered.mbPerS;
      out[`deliveredMsgs_10KBvs100B_${subs}sub`] = big.delivered.msgsPerS / small.delivered.msgsPerS;
    }
  }
  return out;
}

function correctness(t: ThroughputFigures[]): string[] {
  const problems: string[] = [];
  for (const s of t) {
    if (s.lost) problems.push(`${s.name}: ${s.lost} message(s) lost`);
    for (const d of s.disconnected) problems.push(`${s.name}: connection closed by the nucleus during the run (${d})`);
    for (const e of s.nucleusErrors) problems.push(`${s.name}: nucleus logged an error: ${e}`);
    if (s.duplicates) problems.push(`${s.name}: ${s.duplicates} duplicate deliveries`);
    if (s.outOfOrder) problems.push(`${s.name}: ${s.outOfOrder} deliveries out of order`);
    if (s.publishErrors) problems.push(`${s.name}: ${s.publishErrors} publish error(s), first: ${s.firstPublishError ?? '?'}`);
  }
  return problems;
}

export async function runIpcBench(opts: IpcBenchOptions): Promise<IpcBenchResult> {
  const cli = path.join(opts.projectRoot, 'dist', 'cli.js');
  if (!fs.existsSync(cli)) throw new Error(`${cli} is missing: run 'npm run build' first (npm run bench does)`);
  const scenario = new Scenario(opts, buildWorker(opts.projectRoot));

  const throughput: ThroughputFigures[] = [];
  for (const bytes of PAYLOADS) {
    for (const subs of FAN_OUT) {
      opts.log(`ipc: throughput ${bytes} B x ${subs} subscriber(s), ${opts.seconds} s ...`);
      const t = await scenario.throughput(bytes, subs);
      opts.log(`ipc:   ${Math.round(t.published.msgsPerS)} msg/s published, ${Math.round(t.delivered.msgsPerS)} deliveries/s, lost ${t.lost}`);
      throughput.push(t);
    }
  }
  opts.log(`ipc: latency, one ${LATENCY_PAYLOAD} B message at a time, ${opts.seconds} s ...`);
  const latency = await scenario.latency();

  const idle = [...throughput.map((t) => t.nucleus.idleRssBytes), latency.nucleus.idleRssBytes].sort((a, b) => a - b);
  const heaviest = throughput.reduce((a, b) => (b.nucleus.rssMaxBytes > a.nucleus.rssMaxBytes ? b : a));
  return {
    seconds: opts.seconds,
    window: opts.window,
    idleRssBytes: idle[Math.floor((idle.length - 1) / 2)]!,
    maxLoadRssBytes: heaviest.nucleus.rssMaxBytes,
    maxLoadScenario: heaviest.name,
    throughput,
    latency,
    ratios: ratios(throughput),
    correctnessProblems: correctness(throughput),
  };
}
