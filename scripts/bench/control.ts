/**
 * LocalControl end to end (`node dist/bench.js --only control`; docs/local-control.md "Figures"):
 * how long the gateway takes to act on the plant, measured the way it runs on a gateway.
 *
 * The local runtime runs as its own process (./nucleus-process.ts) with the BUILT ModbusAdapter,
 * Processor and LocalControl (greengrass-build/, deployed with `dcmms-edge deployment create
 * --merge ... --update-config ...`), the adapter polling every device of the site simulator every
 * 250 ms. The simulator runs in this process, so the benchmark changes the plant itself and sees
 * the gateway's writes land: Plant.prototype.writeRelays and writeControls are wrapped for the
 * run (the simulator has no write hook of its own, and polling its state would miss the instant
 * and load the process that answers the adapter). An observer component (./control-worker.ts,
 * the unmodified SDK client) subscribes to the messages on the way and forwards each, stamped with
 * its arrival, over loopback TCP. Every process stamps with Date.now() (ms), as the components do.
 *
 *   1. horn     a ground fault on INV-01 (model 103 Evt1 GROUND_FAULT; the Processor's critical
 *               `ground_fault` alarm; LocalControl's `relay.alarmHorn` write to IO-01), from the
 *               register change to the coil set in the simulator; hop by hop:
 *                 register changed -> the poll that read it (the telemetry's sample time, when
 *                 the poll's first request went out) -> that telemetry delivered -> the Processor's
 *                 alarm delivered -> LocalControl's ControlCommand (its ts) -> the adapter took the
 *                 command (result ts - durationMs) -> the coil set; then the read-back -> result.
 *               Reset: the fault cleared, and the trial ends when the horn and beacon are off
 *               again and every command has its result.
 *   2. curtail  an over-temperature fault on INV-02 (103.TmpSnk above the Processor's 75 °C), from
 *               the poll that read the hot value to the adapter's succeeded ControlResult for the
 *               curtailment (revert time, percent, enable, each read back); reset: the fault
 *               cleared, the restore (holdOffMs 0 for the benchmark) answered.
 *   3. e-mail   a deployment adds LocalControl's e-mail channel (aiosmtpd on loopback, plain SMTP,
 *               batching off, critical raises only), and the ground fault of 1. is run again:
 *               register changed / the poll / the alarm -> aiosmtpd has the mail, and the horn
 *               with the channel configured. Then ./outputs.ts, the notification library alone
 *               (offer() -> accepted), run as its own process.
 *
 * Each trial waits a random 0..250 ms before changing the plant: the change then falls anywhere
 * in the adapter's poll period, as a real one does (starting right after the previous trial's
 * reset would always land just after a poll). Nothing else is waited for but events.
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import readline from 'node:readline';
import { spawn } from 'node:child_process';
import { topics } from '../../components/lib/contract';
import { startSmtpPeer, type SmtpPeer } from '../../components/local-control/outputs/testing/aiosmtpd';
import { createSiteSimulator, IO_RELAYS, type SiteSimulator } from '../simulator';
import { Plant } from '../simulator/plant';
import type { ObservedEvent } from './control-worker';
import { NucleusProcess, bundleWorker, delay, runCli, shellQuote, workerRecipe } from './nucleus-process';
import { ProcSampler } from './proc-sampler';

const SITE = 'bench-site';
const ADAPTER = 'com.dcmms.edge.ModbusAdapter';
const PROCESSOR = 'com.dcmms.edge.Processor';
const CONTROL = 'com.dcmms.edge.LocalControl';
const OBSERVER = 'com.bench.ControlObserver';
const POLL_MS = 250;
const HORN = { asset: 'INV-01', unit: 1, io: 'IO-01', point: 'relay.alarmHorn', coil: IO_RELAYS.indexOf('alarmHorn'), beaconCoil: IO_RELAYS.indexOf('beacon') };
const CURTAIL = { asset: 'INV-02', unit: 2 };
/** The Processor's default over-temperature limit (components/processor/config.ts). */
const OVER_TEMPERATURE_C = 75;
const TRIAL_TIMEOUT_MS = 10_000;
/** The first trial also waits for the components to start and settle. */
const FIRST_TRIAL_TIMEOUT_MS = 60_000;
const GOALS = { hornP99Ms: 500, hornGatewayP99Ms: 50, curtailP99Ms: 300 };

export interface ControlBenchOptions {
  /** Holds dist/cli.js, greengrass-build/, package.json, scripts/bench/control-worker.ts. */
  projectRoot: string;
  log: (line: string) => void;
  hornTrials?: number;
  curtailTrials?: number;
  emailRuntimeTrials?: number;
  emailAlarms?: number;
}

// --- what happened, in arrival order ------------------------------------------------------------

type CoilEvent = { k: 'coil'; coil: number; value: boolean; at: number; mono: number };
type WriteEvent = { k: 'w123'; unit: number; keys: string[]; at: number; mono: number };
type Ev = Exclude<ObservedEvent, { k: 'ready' } | { k: 'error' }> | CoilEvent | WriteEvent;
type Of<K extends Ev['k']> = Extract<Ev, { k: K }>;

class TimeoutError extends Error {}

/** Every event of the run; a trial looks from its own mark on and waits for what has not come yet. */
class Timeline {
  readonly events: Ev[] = [];
  private readonly waiters = new Set<{ pred: (e: Ev) => boolean; done: (e: Ev) => void }>();

  get mark(): number {
    return this.events.length;
  }

  push(e: Ev): void {
    this.events.push(e);
    for (const w of [...this.waiters]) if (w.pred(e)) w.done(e);
  }

  find<K extends Ev['k']>(from: number, k: K, pred: (e: Of<K>) => boolean = () => true): Of<K> | undefined {
    for (let i = from; i < this.events.length; i++) {
      const e = this.events[i]!;
      if (e.k === k && pred(e as Of<K>)) return e as Of<K>;
    }
    return undefined;
  }

  /** The first matching event from `from` on, waiting for it when it has not come yet. */
  next<K extends Ev['k']>(from: number, k: K, pred: (e: Of<K>) => boolean, timeoutMs: number, what: string): Promise<Of<K>> {
    const seen = this.find(from, k, pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred: (e: Ev) => e.k === k && pred(e as Of<K>),
        done: (e: Ev) => {
          clearTimeout(timer);
          this.waiters.delete(w);
          resolve(e as Of<K>);
        },
      };
      const timer = setTimeout(() => {
        this.waiters.delete(w);
        reject(new TimeoutError(`no ${what} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.waiters.add(w);
    });
  }

  /** Resolves when every command on `assets` seen from `from` on has its result. */
  async settled(from: number, assets: readonly string[], timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const answered = new Set<string>();
      const open: string[] = [];
      for (let i = from; i < this.events.length; i++) {
        const e = this.events[i]!;
        if (e.k === 'res') answered.add(e.id);
      }
      for (let i = from; i < this.events.length; i++) {
        const e = this.events[i]!;
        if (e.k === 'cmd' && assets.includes(e.a) && !answered.has(e.id)) open.push(e.id);
      }
      if (open.length === 0) return;
      await this.next(from, 'res', (r) => open.includes(r.id), Math.max(1, deadline - Date.now()), `results for ${open.length} command(s)`);
    }
  }
}

/**
 * Wraps the simulator's write path for the run: every coil written to the I/O module and every
 * model 123 write to an inverter becomes an event, stamped right after the plant took it.
 */
function hookPlant(t: Timeline): () => void {
  const proto = Plant.prototype;
  const writeRelays = proto.writeRelays;
  const writeControls = proto.writeControls;
  proto.writeRelays = function (this: Plant, address: number, values: boolean[]): void {
    writeRelays.call(this, address, values);
    const at = Date.now();
    const mono = performance.now();
    values.forEach((value, i) => t.push({ k: 'coil', coil: address + i, value, at, mono }));
  };
  proto.writeControls = function (this: Plant, inv: Parameters<Plant['writeControls']>[0], updates: Record<string, number | string>): void {
    writeControls.call(this, inv, updates);
    t.push({ k: 'w123', unit: inv.index + 1, keys: Object.keys(updates), at: Date.now(), mono: performance.now() });
  };
  return () => {
    proto.writeRelays = writeRelays;
    proto.writeControls = writeControls;
  };
}

// --- statistics ---------------------------------------------------------------------------------

export interface Dist {
  p50: number;
  p99: number;
  max: number;
  mean: number;
}

const r1 = (x: number): number => Math.round(x * 10) / 10;

/** Nearest-rank percentiles (as ./outputs.ts), 0.1 ms. */
function dist(xs: number[]): Dist {
  const s = [...xs].sort((a, b) => a - b);
  if (s.length === 0) return { p50: Number.NaN, p99: Number.NaN, max: Number.NaN, mean: Number.NaN };
  const pct = (p: number): number => s[Math.min(s.length - 1, Math.max(0, Math.ceil((p / 100) * s.length) - 1))]!;
  return { p50: r1(pct(50)), p99: r1(pct(99)), max: r1(s[s.length - 1]!), mean: r1(s.reduce((a, b) => a + b, 0) / s.length) };
}

export interface Hop extends Dist {
  name: string;
  /** Mean of this hop / mean of the whole, %: where the time goes on average. */
  sharePct: number;
  /**
   * Mean of this hop over the slowest 5 % of trials by the gateway's time (after the poll; the
   * wait for the poll, up to a period, would otherwise pick them): where the tail's time goes.
   */
  slowestMean: number;
}

/** Each hop's figures, share of `total` and mean over the trials in the top 5 % of `tail`. */
function hops(names: Array<[string, (x: number[]) => number]>, rows: number[][], total: (x: number[]) => number, tail: (x: number[]) => number): Hop[] {
  const totals = rows.map(total);
  const meanTotal = totals.reduce((a, b) => a + b, 0) / Math.max(1, totals.length);
  const tails = rows.map(tail);
  const cut = [...tails].sort((a, b) => a - b)[Math.floor(tails.length * 0.95)] ?? Number.POSITIVE_INFINITY;
  const slow = rows.filter((_, i) => tails[i]! >= cut);
  return names.map(([name, f]) => {
    const d = dist(rows.map(f));
    const slowMean = slow.length ? slow.map(f).reduce((a, b) => a + b, 0) / slow.length : Number.NaN;
    return { name, ...d, sharePct: meanTotal > 0 ? Math.round((d.mean / meanTotal) * 1000) / 10 : 0, slowestMean: r1(slowMean) };
  });
}

// --- the runtime, the components, the observer --------------------------------------------------

interface Pids {
  nucleus: number;
  adapter: number;
  processor: number;
  control: number;
  observer: number;
}

function readArgv(pid: string): string[] {
  try {
    const raw = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8');
    return (raw.endsWith('\0') ? raw.slice(0, -1) : raw).split('\0');
  } catch {
    return [];
  }
}

/** The node processes of the components (not the `sh -c` around them), by their script path. */
function findPids(n: NucleusProcess, worker: string): Pids {
  const found: Partial<Pids> = { nucleus: n.pid };
  for (const entry of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const argv = readArgv(entry);
    if (path.basename(argv[0] ?? '') !== 'node' && argv[0] !== process.execPath) continue;
    const main = argv.slice(1).find((a) => !a.startsWith('-')) ?? '';
    if (main === worker) found.observer = Number(entry);
    if (!main.startsWith(n.root) || !main.endsWith('main.js')) continue;
    if (main.includes(ADAPTER)) found.adapter = Number(entry);
    else if (main.includes(PROCESSOR)) found.processor = Number(entry);
    else if (main.includes(CONTROL)) found.control = Number(entry);
  }
  for (const k of ['adapter', 'processor', 'control', 'observer'] as const) if (found[k] === undefined) throw new Error(`no ${k} process under ${n.root}`);
  return found as Pids;
}

export interface CpuFigures {
  /** CPU time / wall time over the scenario, 100 = one core. `bench` is this process: the simulator. */
  nucleus: number;
  adapter: number;
  processor: number;
  control: number;
  observer: number;
  bench: number;
  /** Every other process on the machine and the kernel (loopback TCP included): a shared machine's noise. */
  other: number;
}

/** Samples the processes every second, so a scenario can report what each used. */
class CpuWatch {
  private readonly samplers: Record<keyof Pids | 'bench', ProcSampler>;

  constructor(pids: Pids) {
    const s = (pid: number): ProcSampler => new ProcSampler(pid, 1000);
    this.samplers = { nucleus: s(pids.nucleus), adapter: s(pids.adapter), processor: s(pids.processor), control: s(pids.control), observer: s(pids.observer), bench: s(process.pid) };
    for (const x of Object.values(this.samplers)) x.start();
  }

  figures(fromNs: bigint, toNs: bigint): CpuFigures | undefined {
    try {
      const w = Object.fromEntries(Object.entries(this.samplers).map(([k, v]) => [k, v.window(fromNs, toNs)])) as Record<keyof CpuFigures, ReturnType<ProcSampler['window']>>;
      const own = (['nucleus', 'adapter', 'processor', 'control', 'observer', 'bench'] as const).reduce((a, k) => a + w[k].cpuPercent, 0);
      const pct = (k: keyof CpuFigures): number => Math.round(w[k].cpuPercent);
      return { nucleus: pct('nucleus'), adapter: pct('adapter'), processor: pct('processor'), control: pct('control'), observer: pct('observer'), bench: pct('bench'), other: Math.max(0, Math.round(w.nucleus.machineCpuPercent - own)) };
    } catch {
      return undefined;
    }
  }

  stop(): void {
    for (const x of Object.values(this.samplers)) x.stop();
  }
}

class Rig {
  readonly timeline = new Timeline();
  readonly errors: string[] = [];
  private unhook: (() => void) | undefined;
  private server: net.Server | undefined;
  private observerSocket: net.Socket | undefined;
  sim!: SiteSimulator;
  n!: NucleusProcess;
  pids!: Pids;
  cpu!: CpuWatch;
  readonly cli: string;
  readonly build: string;
  readonly version: string;
  readonly worker: string;

  constructor(private readonly opts: ControlBenchOptions) {
    this.cli = path.join(opts.projectRoot, 'dist', 'cli.js');
    this.build = path.join(opts.projectRoot, 'greengrass-build');
    this.version = (JSON.parse(fs.readFileSync(path.join(opts.projectRoot, 'package.json'), 'utf8')) as { version: string }).version;
    for (const c of [ADAPTER, PROCESSOR, CONTROL]) {
      const recipe = path.join(this.build, 'recipes', `${c}-${this.version}.yaml`);
      if (!fs.existsSync(this.cli) || !fs.existsSync(recipe)) throw new Error(`${this.cli} or ${recipe} is missing: run 'npm run build' first (npm run bench does)`);
    }
    this.worker = bundleWorker(opts.projectRoot, 'control-worker.ts', 'bench-control-worker.js');
  }

  async start(): Promise<void> {
    this.unhook = hookPlant(this.timeline);
    // Noon, clear sky: every inverter produces, so a fault changes what it reports.
    this.sim = await createSiteSimulator({ host: '127.0.0.1', port: 0, inverters: 3, cloudiness: 0, startTime: new Date(Date.UTC(2026, 3, 15, 12, 0, 0)), timeScale: 1 });
    const ready = this.listen();
    this.n = await NucleusProcess.start({ cliPath: this.cli });
    const port = (this.server!.address() as net.AddressInfo).port;
    const sub = (t: string[]) => ({ description: 'reads what the benchmark times', operations: ['aws.greengrass#SubscribeToTopic'], resources: t });
    const watched = [
      ...[HORN.asset, CURTAIL.asset].flatMap((a) => [topics.rawTelemetry(SITE, a), topics.alarms(SITE, a)]),
      ...[HORN.io, CURTAIL.asset].flatMap((a) => [topics.controlCommand(SITE, a), topics.controlResult(SITE, a), topics.controlDecision(SITE, a)]),
    ];
    const run = [shellQuote(process.execPath), shellQuote(this.worker), '--port', String(port), '--site', SITE, '--telemetry', `${HORN.asset},${CURTAIL.asset}`, '--control', `${HORN.io},${CURTAIL.asset}`].join(' ');
    await this.n.deploy([workerRecipe(OBSERVER, 'dCMMS Edge LocalControl benchmark: observes telemetry, alarms and control messages', [sub(watched)], run)]);
    await withTimeout(ready, 60_000, 'the observer component to subscribe');
    await this.deployComponents();
    this.pids = findPids(this.n, this.worker);
    this.cpu = new CpuWatch(this.pids);
  }

  /** The TCP server the observer connects to; resolves when it has subscribed to everything. */
  private listen(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server = net.createServer((sock) => {
        this.observerSocket = sock;
        sock.setNoDelay(true);
        const lines = readline.createInterface({ input: sock });
        lines.on('line', (line) => {
          let e: ObservedEvent;
          try {
            e = JSON.parse(line) as ObservedEvent;
          } catch {
            this.errors.push(`observer sent a bad line: ${line.slice(0, 100)}`);
            return;
          }
          if (e.k === 'ready') resolve();
          else if (e.k === 'error') this.errors.push(`observer: ${e.error}`);
          else this.timeline.push(e);
        });
      });
      this.server.once('error', reject);
      this.server.listen(0, '127.0.0.1');
    });
  }

  /**
   * The three built components, configured as a site would be, in one deployment (recipes and
   * artifacts copied out of greengrass-build/ first: a build running meanwhile rewrites it).
   * LocalControl gets the default over-temperature rule with holdOffMs 0 (a trial must not wait
   * 5 min for its restore), a rate limit a benchmark does not hit, the inverters' ratings (so the
   * capacity cap does not wait for model 120), and no other rule: the default ground-fault rule
   * would shut INV-01 down (latched) at the first trial.
   */
  private async deployComponents(): Promise<void> {
    const snap = path.join(this.n.root, 'bench-build');
    fs.mkdirSync(path.join(snap, 'recipes'), { recursive: true });
    for (const c of [ADAPTER, PROCESSOR, CONTROL]) {
      const recipe = `${c}-${this.version}.yaml`;
      fs.copyFileSync(path.join(this.build, 'recipes', recipe), path.join(snap, 'recipes', recipe));
      fs.cpSync(path.join(this.build, 'artifacts', c, this.version), path.join(snap, 'artifacts', c, this.version), { recursive: true });
    }
    const devices = this.sim.deviceConfig({ pollIntervalMs: POLL_MS });
    const inverters = this.sim.devices().filter((d) => d.kind === 'inverter');
    const rule = {
      id: 'curtail-over-temperature',
      condition: { source: 'alarm', alarmType: 'over_temperature', minSeverity: 'high', assets: ['INV-*'] },
      action: 'curtail',
      params: { percent: 50, revertSeconds: 300 },
      release: { holdOffMs: 0 },
    };
    const update = {
      [ADAPTER]: { MERGE: { siteId: SITE, ...devices } },
      [PROCESSOR]: { MERGE: { siteId: SITE, assets: devices.devices.map((d) => d.assetId) } },
      [CONTROL]: { MERGE: { siteId: SITE, rules: [rule], rateLimit: { maxActions: 1000, windowMs: 1000 }, capacityW: Object.fromEntries(inverters.map((d) => [d.assetId, 60000])) } },
    };
    const args = [this.cli, 'deployment', 'create', '--root', this.n.root, '--recipeDir', path.join(snap, 'recipes'), '--artifactDir', path.join(snap, 'artifacts')];
    for (const c of [ADAPTER, PROCESSOR, CONTROL]) args.push('--merge', `${c}=${this.version}`);
    args.push('--update-config', JSON.stringify(update), '--wait');
    const { code, output } = await runCli(args);
    if (code !== 0 || !output.includes('SUCCEEDED')) {
      throw new Error(`deployment failed (exit ${code}):\n${output}\n${[ADAPTER, PROCESSOR, CONTROL].map((c) => this.n.componentLog(c)).join('\n')}\nnucleus:\n${this.n.tail()}`);
    }
  }

  componentLogs(): string {
    return [ADAPTER, PROCESSOR, CONTROL, OBSERVER].map((c) => this.n.componentLog(c, 10)).join('\n');
  }

  async stop(ok: boolean): Promise<void> {
    this.cpu?.stop();
    this.observerSocket?.end();
    if (this.n) {
      await this.n.stop({ keepRoot: !ok });
      if (!ok) this.opts.log(`control: failed; nucleus root kept at ${this.n.root}`);
    }
    await new Promise<void>((resolve) => (this.server ? this.server.close(() => resolve()) : resolve()));
    await this.sim?.close();
    this.unhook?.();
  }
}

function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

const hasBit = (field: string | null, bit: string): boolean => (field ?? '').split('|').includes(bit);
const phase = (): Promise<void> => delay(Math.random() * POLL_MS);

// --- 1. register change -> horn relay -----------------------------------------------------------

interface HornTrial {
  /** Wall ms: register changed, the poll's sample time, telemetry and alarm delivered, command ts, adapter took it, coil set, result ts. */
  changed: number;
  sample: number;
  telemetry: number;
  alarm: number;
  command: number;
  adapter: number;
  coil: number;
  result: number;
  /** performance.now() from the change to the coil (one clock, sub-ms). */
  endToEndMs: number;
  decisionLatencyMs: number | null;
  beaconFirst: boolean;
  /** With an e-mail channel: when aiosmtpd had the mail of the raise (wall ms, and performance.now() from the change). */
  mail?: number;
  mailEndToEndMs?: number;
}

/**
 * One trial; with `smtp` (LocalControl mailing critical raises to it) it also waits for the mail:
 * the peer reports each message as its handler accepts it (before the 250 goes back), and the
 * stamp is taken when that report resolves the wait.
 */
async function hornTrial(rig: Rig, timeoutMs: number, smtp?: SmtpPeer): Promise<HornTrial> {
  const { timeline: t, sim } = rig;
  const start = t.mark;
  await phase();
  const mailsBefore = smtp?.messages.length ?? 0;
  const fault = sim.injectFault({ kind: 'ground-fault', unit: HORN.unit });
  const changed = Date.now();
  const changedMono = performance.now();
  const from = t.mark;
  const mailed = smtp?.waitForMessages(mailsBefore + 1, timeoutMs).then((all) => ({ at: Date.now(), mono: performance.now(), mail: all[mailsBefore]! }));
  // Awaited below; until then a rejection is not unhandled.
  mailed?.catch(() => undefined);
  try {
    const coil = await t.next(from, 'coil', (e) => e.coil === HORN.coil && e.value, timeoutMs, 'horn coil set');
    const cmd = await t.next(from, 'cmd', (e) => e.a === HORN.io && e.params['point'] === HORN.point && e.params['value'] === true, 5000, 'horn command');
    const res = await t.next(from, 'res', (e) => e.id === cmd.id, 5000, 'horn command result');
    if (res.status !== 'succeeded') throw new Error(`horn command ${res.status}: ${res.message}`);
    const dec = await t.next(from, 'dec', (e) => e.id === cmd.id && e.outcome === 'commanded', 2000, 'horn decision').catch(() => undefined);
    const sample = t.find(from, 'tel', (e) => e.a === HORN.asset && hasBit(e.evt1, 'GROUND_FAULT'));
    const alarm = t.find(from, 'alarm', (e) => e.a === HORN.asset && e.type === 'ground_fault' && e.state === 'raised' && !e.replayed);
    if (!sample || !alarm) throw new Error(`horn set without ${sample ? 'the ground_fault alarm' : 'a telemetry message showing GROUND_FAULT'} seen`);
    const beacon = t.find(from, 'coil', (e) => e.coil === HORN.beaconCoil && e.value);
    const mail = mailed ? await mailed : undefined;
    if (mail && !(mail.mail.headers['x-dcmms-alarm-ids'] ?? '').split(' ').includes(alarm.id)) throw new Error(`the mail names alarms ${mail.mail.headers['x-dcmms-alarm-ids'] ?? '(none)'}, not ${alarm.id}`);
    return {
      changed,
      sample: sample.ts,
      telemetry: sample.at,
      alarm: alarm.at,
      command: cmd.ts,
      adapter: res.durationMs !== null ? res.ts - res.durationMs : Number.NaN,
      coil: coil.at,
      result: res.ts,
      endToEndMs: coil.mono - changedMono,
      decisionLatencyMs: dec?.latencyMs ?? null,
      beaconFirst: beacon !== undefined && beacon.mono < coil.mono,
      ...(mail ? { mail: mail.at, mailEndToEndMs: mail.mono - changedMono } : {}),
    };
  } finally {
    const reset = t.mark;
    sim.clearFault(fault);
    await t.next(reset, 'coil', (e) => e.coil === HORN.coil && !e.value, TRIAL_TIMEOUT_MS, 'horn coil off after the clear');
    await t.next(reset, 'coil', (e) => e.coil === HORN.beaconCoil && !e.value, TRIAL_TIMEOUT_MS, 'beacon coil off after the clear');
    await t.settled(start, [HORN.io, CURTAIL.asset], TRIAL_TIMEOUT_MS);
  }
}

export interface HornFigures {
  trials: number;
  warmup: number;
  failed: number;
  firstFailure?: string;
  pollIntervalMs: number;
  /** Register changed -> coil set. */
  endToEndMs: Dist;
  /** The poll's sample time -> coil set: the gateway's own share. */
  gatewayMs: Dist;
  hops: Hop[];
  /** Coil set -> the adapter's result (read-back, publish): after the horn sounds. */
  coilToResultMs: Dist;
  /** LocalControl's own `latencyMs` on the `commanded` decision (the alarm's ts, the sample time, -> the command). */
  decisionLatencyMs: Dist;
  /** Trials in which the beacon's write (same alarm, severity high and above) went to the module first. */
  beaconFirst: number;
  goals: { endToEndP99Ms: number; met: boolean; gatewayP99Ms: number; gatewayMet: boolean };
  cpuPercent?: CpuFigures;
  seconds: number;
}

async function hornScenario(rig: Rig, trials: number, warmup: number, log: (l: string) => void): Promise<HornFigures> {
  for (let i = 0; i < warmup; i++) await hornTrial(rig, i === 0 ? FIRST_TRIAL_TIMEOUT_MS : TRIAL_TIMEOUT_MS);
  const ok: HornTrial[] = [];
  const failures: string[] = [];
  const t0 = process.hrtime.bigint();
  const started = Date.now();
  for (let i = 0; i < trials; i++) {
    try {
      ok.push(await hornTrial(rig, TRIAL_TIMEOUT_MS));
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
      // A trial that broke may have left the plant anywhere: start the next one from a quiet site.
      rig.sim.clearFault();
      await delay(2000);
    }
    if ((i + 1) % 50 === 0) log(`control:   horn ${i + 1}/${trials}`);
  }
  const cpu = rig.cpu.figures(t0, process.hrtime.bigint());
  const rows = ok.map((x) => [x.changed, x.sample, x.telemetry, x.alarm, x.command, x.adapter, x.coil]);
  const d = (a: number, b: number) => (r: number[]) => r[b]! - r[a]!;
  const endToEnd = dist(ok.map((x) => x.endToEndMs));
  const gateway = dist(ok.map((x) => x.coil - x.sample));
  return {
    trials: ok.length,
    warmup,
    failed: failures.length,
    ...(failures.length ? { firstFailure: failures[0] } : {}),
    pollIntervalMs: POLL_MS,
    endToEndMs: endToEnd,
    gatewayMs: gateway,
    hops: hops(
      [
        ['register changed -> poll (sample time)', d(0, 1)],
        ['poll -> its telemetry delivered', d(1, 2)],
        ["telemetry -> Processor's alarm delivered", d(2, 3)],
        ["alarm -> LocalControl's command (ts)", d(3, 4)],
        ['command -> adapter took it', d(4, 5)],
        ['adapter took it -> coil set', d(5, 6)],
      ],
      rows,
      d(0, 6),
      d(1, 6),
    ),
    coilToResultMs: dist(ok.map((x) => x.result - x.coil)),
    decisionLatencyMs: dist(ok.flatMap((x) => (x.decisionLatencyMs === null ? [] : [x.decisionLatencyMs]))),
    beaconFirst: ok.filter((x) => x.beaconFirst).length,
    goals: { endToEndP99Ms: GOALS.hornP99Ms, met: endToEnd.p99 < GOALS.hornP99Ms, gatewayP99Ms: GOALS.hornGatewayP99Ms, gatewayMet: gateway.p99 < GOALS.hornGatewayP99Ms },
    ...(cpu ? { cpuPercent: cpu } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

// --- 2. hot sample -> curtailment read back -----------------------------------------------------

interface CurtailTrial {
  changed: number;
  sample: number;
  telemetry: number;
  alarm: number;
  command: number;
  adapter: number;
  firstWrite: number;
  lastWrite: number;
  result: number;
  decisionLatencyMs: number | null;
}

async function curtailTrial(rig: Rig, timeoutMs: number): Promise<CurtailTrial> {
  const { timeline: t, sim } = rig;
  const start = t.mark;
  await phase();
  const fault = sim.injectFault({ kind: 'over-temperature', unit: CURTAIL.unit });
  const changed = Date.now();
  const from = t.mark;
  let curtailed = false;
  try {
    const cmd = await t.next(from, 'cmd', (e) => e.a === CURTAIL.asset && e.action === 'curtail', timeoutMs, 'curtail command');
    const res = await t.next(from, 'res', (e) => e.id === cmd.id, TRIAL_TIMEOUT_MS, 'curtail result');
    if (res.status !== 'succeeded') throw new Error(`curtail ${res.status}: ${res.message}`);
    curtailed = true;
    const dec = await t.next(from, 'dec', (e) => e.id === cmd.id && e.outcome === 'commanded', 2000, 'curtail decision').catch(() => undefined);
    const sample = t.find(from, 'tel', (e) => e.a === CURTAIL.asset && (e.tmpSnk ?? 0) > OVER_TEMPERATURE_C);
    const alarm = t.find(from, 'alarm', (e) => e.a === CURTAIL.asset && e.type === 'over_temperature' && e.state === 'raised' && !e.replayed);
    if (!sample || !alarm) throw new Error(`curtailed without ${sample ? 'the over_temperature alarm' : 'a hot telemetry message'} seen`);
    const writes = t.events.slice(from).filter((e): e is WriteEvent => e.k === 'w123' && e.unit === CURTAIL.unit);
    const enable = writes.find((w) => w.keys.includes('WMaxLim_Ena'));
    return {
      changed,
      sample: sample.ts,
      telemetry: sample.at,
      alarm: alarm.at,
      command: cmd.ts,
      adapter: res.durationMs !== null ? res.ts - res.durationMs : Number.NaN,
      firstWrite: writes[0]?.at ?? Number.NaN,
      lastWrite: enable?.at ?? Number.NaN,
      result: res.ts,
      decisionLatencyMs: dec?.latencyMs ?? null,
    };
  } finally {
    const reset = t.mark;
    sim.clearFault(fault);
    if (curtailed) {
      const restore = await t.next(reset, 'cmd', (e) => e.a === CURTAIL.asset && e.action === 'restore', TRIAL_TIMEOUT_MS, 'restore command');
      await t.next(reset, 'res', (e) => e.id === restore.id, TRIAL_TIMEOUT_MS, 'restore result');
    }
    await t.settled(start, [HORN.io, CURTAIL.asset], TRIAL_TIMEOUT_MS);
  }
}

export interface CurtailFigures {
  trials: number;
  warmup: number;
  failed: number;
  firstFailure?: string;
  /** The poll that read the hot value (its sample time) -> the adapter's succeeded result. */
  sampleToResultMs: Dist;
  /** The same poll -> the last write (WMaxLim_Ena) landing in the inverter: the limit in force. */
  sampleToLimitMs: Dist;
  /** The fault (register change) -> the poll that read it: the polling period's share, for reference. */
  changeToSampleMs: Dist;
  hops: Hop[];
  decisionLatencyMs: Dist;
  goals: { sampleToResultP99Ms: number; met: boolean };
  cpuPercent?: CpuFigures;
  seconds: number;
}

async function curtailScenario(rig: Rig, trials: number, warmup: number, log: (l: string) => void): Promise<CurtailFigures> {
  for (let i = 0; i < warmup; i++) await curtailTrial(rig, i === 0 ? FIRST_TRIAL_TIMEOUT_MS : TRIAL_TIMEOUT_MS);
  const ok: CurtailTrial[] = [];
  const failures: string[] = [];
  const t0 = process.hrtime.bigint();
  const started = Date.now();
  for (let i = 0; i < trials; i++) {
    try {
      ok.push(await curtailTrial(rig, TRIAL_TIMEOUT_MS));
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
      rig.sim.clearFault();
      await delay(2000);
    }
    if ((i + 1) % 50 === 0) log(`control:   curtail ${i + 1}/${trials}`);
  }
  const cpu = rig.cpu.figures(t0, process.hrtime.bigint());
  const rows = ok.map((x) => [x.sample, x.telemetry, x.alarm, x.command, x.adapter, x.firstWrite, x.lastWrite, x.result]);
  const d = (a: number, b: number) => (r: number[]) => r[b]! - r[a]!;
  const toResult = dist(ok.map((x) => x.result - x.sample));
  return {
    trials: ok.length,
    warmup,
    failed: failures.length,
    ...(failures.length ? { firstFailure: failures[0] } : {}),
    sampleToResultMs: toResult,
    sampleToLimitMs: dist(ok.map((x) => x.lastWrite - x.sample)),
    changeToSampleMs: dist(ok.map((x) => x.sample - x.changed)),
    hops: hops(
      [
        ['poll -> its telemetry delivered', d(0, 1)],
        ["telemetry -> Processor's alarm delivered", d(1, 2)],
        ["alarm -> LocalControl's command (ts)", d(2, 3)],
        ['command -> adapter took it', d(3, 4)],
        ['adapter took it -> first write at the inverter', d(4, 5)],
        ['first write -> WMaxLim_Ena written', d(5, 6)],
        ['WMaxLim_Ena written -> result (read-back)', d(6, 7)],
      ],
      rows,
      d(0, 7),
      d(0, 7),
    ),
    decisionLatencyMs: dist(ok.flatMap((x) => (x.decisionLatencyMs === null ? [] : [x.decisionLatencyMs]))),
    goals: { sampleToResultP99Ms: GOALS.curtailP99Ms, met: toResult.p99 < GOALS.curtailP99Ms },
    ...(cpu ? { cpuPercent: cpu } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

// --- 3. alarm -> e-mail accepted ----------------------------------------------------------------

export interface EmailRuntimeFigures {
  trials: number;
  warmup: number;
  failed: number;
  firstFailure?: string;
  /** Register changed -> aiosmtpd has the mail of the ground_fault raise. */
  endToEndMs: Dist;
  /** The poll's sample time -> the mail. */
  sampleToMailMs: Dist;
  /** The Processor's alarm delivered -> the mail: LocalControl's notification path (queue, SMTP). */
  alarmToMailMs: Dist;
  /** The horn in the same trials, with the e-mail channel configured: does the relay wait for it? */
  hornGatewayMs: Dist;
  cpuPercent?: CpuFigures;
  seconds: number;
}

/**
 * Alarm -> e-mail through the runtime: LocalControl's own `outputs.email` (a deployment adds it)
 * pointing at aiosmtpd on loopback, plain SMTP (`starttls` false: a relay on the gateway, no
 * credentials), `batchIntervalMs` 0, `minSeverity` critical and raises only, so each trial's
 * ground fault is exactly one mail. Its alarm id is checked against the Processor's alarm.
 */
async function emailRuntimeScenario(rig: Rig, smtp: SmtpPeer, trials: number, warmup: number, log: (l: string) => void): Promise<EmailRuntimeFigures> {
  const email = { host: '127.0.0.1', port: smtp.port, starttls: false, from: 'gateway@bench.example', to: ['ops@bench.example'], minSeverity: 'critical', transitions: 'raised', batchIntervalMs: 0 };
  const { code, output } = await runCli([rig.cli, 'deployment', 'create', '--root', rig.n.root, '--update-config', JSON.stringify({ [CONTROL]: { MERGE: { outputs: { email } } } }), '--wait']);
  if (code !== 0 || !output.includes('SUCCEEDED')) throw new Error(`adding the e-mail channel failed (exit ${code}):\n${output}\n${rig.n.componentLog(CONTROL)}`);
  for (let i = 0; i < warmup; i++) await hornTrial(rig, i === 0 ? FIRST_TRIAL_TIMEOUT_MS : TRIAL_TIMEOUT_MS, smtp);
  const ok: HornTrial[] = [];
  const failures: string[] = [];
  const t0 = process.hrtime.bigint();
  const started = Date.now();
  for (let i = 0; i < trials; i++) {
    try {
      ok.push(await hornTrial(rig, TRIAL_TIMEOUT_MS, smtp));
    } catch (err) {
      failures.push(err instanceof Error ? err.message : String(err));
      rig.sim.clearFault();
      await delay(2000);
    }
    if ((i + 1) % 50 === 0) log(`control:   e-mail ${i + 1}/${trials}`);
  }
  const cpu = rig.cpu.figures(t0, process.hrtime.bigint());
  return {
    trials: ok.length,
    warmup,
    failed: failures.length,
    ...(failures.length ? { firstFailure: failures[0] } : {}),
    endToEndMs: dist(ok.map((x) => x.mailEndToEndMs!)),
    sampleToMailMs: dist(ok.map((x) => x.mail! - x.sample)),
    alarmToMailMs: dist(ok.map((x) => x.mail! - x.alarm)),
    hornGatewayMs: dist(ok.map((x) => x.coil - x.sample)),
    ...(cpu ? { cpuPercent: cpu } : {}),
    seconds: Math.round((Date.now() - started) / 100) / 10,
  };
}

/** The notification library alone: ./outputs.ts. */

export interface EmailFigures {
  alarms: number;
  sequential?: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number; offerP50Ms: number; totalS: number };
  burst?: { p50Ms: number; p99Ms: number; maxMs: number; meanMs: number; totalS: number };
  problems: string[];
}

/** ./outputs.ts as its own process (bundled as its header says), its one JSON object parsed. */
async function emailScenario(projectRoot: string, alarms: number): Promise<EmailFigures> {
  const script = bundleWorker(projectRoot, 'outputs.ts', 'bench-outputs.js');
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve, reject) => {
    const child = spawn(process.execPath, [script, '--alarms', String(alarms), '--json'], { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (c: Buffer) => (out += c.toString('utf8')));
    child.stderr.on('data', (c: Buffer) => (err += c.toString('utf8')));
    child.once('error', reject);
    child.once('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
  });
  const line = stdout.trim().split('\n').pop() ?? '';
  let parsed: { sequential?: EmailFigures['sequential']; burst?: EmailFigures['burst']; problems?: string[] } | undefined;
  try {
    parsed = JSON.parse(line) as typeof parsed;
  } catch {
    parsed = undefined;
  }
  if (!parsed) return { alarms, problems: [`outputs benchmark exited ${code} without figures: ${stderr.trim().split('\n').slice(-3).join(' | ')}`] };
  const { sequential, burst } = parsed;
  return {
    alarms,
    ...(sequential ? { sequential: { p50Ms: sequential.p50Ms, p99Ms: sequential.p99Ms, maxMs: sequential.maxMs, meanMs: sequential.meanMs, offerP50Ms: sequential.offerP50Ms, totalS: sequential.totalS } } : {}),
    ...(burst ? { burst: { p50Ms: burst.p50Ms, p99Ms: burst.p99Ms, maxMs: burst.maxMs, meanMs: burst.meanMs, totalS: burst.totalS } } : {}),
    problems: [...(parsed.problems ?? []), ...(code !== 0 ? [`outputs benchmark exited ${code}`] : [])],
  };
}

// --- the whole ----------------------------------------------------------------------------------

export interface ControlFigures {
  horn: HornFigures;
  curtail: CurtailFigures;
  /** Alarm -> e-mail through the runtime (LocalControl's e-mail channel). */
  emailRuntime: EmailRuntimeFigures;
  /** Alarm -> e-mail, the notification library alone (./outputs.ts). */
  email: EmailFigures;
  /** Error lines the nucleus and the observer reported during the run. */
  errors: string[];
}

export async function runControlBench(opts: ControlBenchOptions): Promise<ControlFigures> {
  const rig = new Rig(opts);
  let ok = false;
  let horn: HornFigures;
  let curtail: CurtailFigures;
  let emailRuntime: EmailRuntimeFigures;
  let smtp: SmtpPeer | undefined;
  try {
    opts.log('control: starting the nucleus, the simulator and the built ModbusAdapter, Processor and LocalControl ...');
    await rig.start();
    const hornTrials = opts.hornTrials ?? 200;
    opts.log(`control: ground fault -> horn relay, ${hornTrials} trials ...`);
    horn = await hornScenario(rig, hornTrials, 5, opts.log);
    opts.log(`control:   p50 ${horn.endToEndMs.p50} ms, p99 ${horn.endToEndMs.p99} ms (gateway p99 ${horn.gatewayMs.p99} ms)`);
    const curtailTrials = opts.curtailTrials ?? 100;
    opts.log(`control: over-temperature -> curtailment read back, ${curtailTrials} trials ...`);
    curtail = await curtailScenario(rig, curtailTrials, 3, opts.log);
    opts.log(`control:   p50 ${curtail.sampleToResultMs.p50} ms, p99 ${curtail.sampleToResultMs.p99} ms`);
    const emailTrials = opts.emailRuntimeTrials ?? 100;
    opts.log(`control: ground fault -> e-mail accepted by aiosmtpd through LocalControl's e-mail channel, ${emailTrials} trials ...`);
    smtp = await startSmtpPeer();
    emailRuntime = await emailRuntimeScenario(rig, smtp, emailTrials, 3, opts.log);
    opts.log(`control:   p50 ${emailRuntime.endToEndMs.p50} ms, p99 ${emailRuntime.endToEndMs.p99} ms (alarm -> mail p99 ${emailRuntime.alarmToMailMs.p99} ms)`);
    ok = true;
  } catch (err) {
    if (rig.n) opts.log(rig.componentLogs());
    throw err;
  } finally {
    await rig.stop(ok);
    await smtp?.stop();
  }
  const errors = [...rig.errors, ...rig.n.errors()];
  opts.log('control: alarm -> e-mail accepted (scripts/bench/outputs.ts) ...');
  const email = await emailScenario(opts.projectRoot, opts.emailAlarms ?? 200);
  return { horn, curtail, emailRuntime, email, errors };
}

export function controlProblems(f: ControlFigures): string[] {
  const p: string[] = [];
  if (f.horn.failed) p.push(`horn: ${f.horn.failed} trial(s) failed, first: ${f.horn.firstFailure ?? '?'}`);
  if (f.curtail.failed) p.push(`curtail: ${f.curtail.failed} trial(s) failed, first: ${f.curtail.firstFailure ?? '?'}`);
  if (f.emailRuntime.failed) p.push(`e-mail: ${f.emailRuntime.failed} trial(s) failed, first: ${f.emailRuntime.firstFailure ?? '?'}`);
  p.push(...f.email.problems.map((x) => `email: ${x}`));
  p.push(...f.errors.map((x) => `logged: ${x}`));
  return p;
}

const ms = (x: number): string => (Number.isFinite(x) ? x.toFixed(1).padStart(7) : '      -');
const distLine = (d: Dist): string => `p50 ${d.p50} ms, p99 ${d.p99} ms, max ${d.max} ms (mean ${d.mean})`;
const goal = (p99: number, limit: number): string => (p99 < limit ? `met (p99 ${p99} < ${limit} ms)` : `MISSED by ${r1(p99 - limit)} ms (p99 ${p99} ms, goal < ${limit} ms)`);
const cpuLine = (c: CpuFigures | undefined): string =>
  c ? `CPU % (100 = one core): nucleus ${c.nucleus}, adapter ${c.adapter}, processor ${c.processor}, control ${c.control}, observer ${c.observer}, simulator (this process) ${c.bench}, other processes and the kernel ${c.other}${c.other > 15 ? '  (busy machine: run again)' : ''}` : 'CPU %: not sampled';

function hopTable(h: Hop[]): string[] {
  const w = Math.max(...h.map((x) => x.name.length));
  return [
    `    ${'hop'.padEnd(w)}     p50     p99     max    mean  share  slowest 5 % (mean)`,
    ...h.map((x) => `    ${x.name.padEnd(w)} ${ms(x.p50)} ${ms(x.p99)} ${ms(x.max)} ${ms(x.mean)} ${`${x.sharePct}%`.padStart(6)} ${ms(x.slowestMean)}`),
  ];
}

export function formatControlReport(f: ControlFigures): string {
  const h = f.horn;
  const c = f.curtail;
  const e = f.email;
  const m = f.emailRuntime;
  return [
    `1. register change -> horn relay: ground fault on ${HORN.asset} (103.Evt1 GROUND_FAULT) -> Processor's critical ground_fault -> LocalControl -> ${HORN.io} ${HORN.point}`,
    `   ${h.trials} trials (+${h.warmup} warm-up, ${h.failed} failed), every device polled every ${h.pollIntervalMs} ms, ${h.seconds} s`,
    `   register changed -> coil set:        ${distLine(h.endToEndMs)}   goal: ${goal(h.endToEndMs.p99, h.goals.endToEndP99Ms)}`,
    `   gateway (poll's sample -> coil set): ${distLine(h.gatewayMs)}   goal: ${goal(h.gatewayMs.p99, h.goals.gatewayP99Ms)}`,
    ...hopTable(h.hops),
    `   coil set -> result (read-back): ${distLine(h.coilToResultMs)}`,
    `   LocalControl's decision latencyMs (sample time -> command): ${distLine(h.decisionLatencyMs)}`,
    `   the beacon's write went first in ${h.beaconFirst} of ${h.trials} trials`,
    `   ${cpuLine(h.cpuPercent)}`,
    '',
    `2. over-temperature -> curtailment read back: ${CURTAIL.asset} 103.TmpSnk above ${OVER_TEMPERATURE_C} °C -> over_temperature -> curtail 50 % -> succeeded ControlResult`,
    `   ${c.trials} trials (+${c.warmup} warm-up, ${c.failed} failed), ${c.seconds} s`,
    `   hot sample -> succeeded result:   ${distLine(c.sampleToResultMs)}   goal: ${goal(c.sampleToResultMs.p99, c.goals.sampleToResultP99Ms)}`,
    `   hot sample -> limit enabled:      ${distLine(c.sampleToLimitMs)}`,
    `   (fault -> the poll that read it:  ${distLine(c.changeToSampleMs)})`,
    ...hopTable(c.hops),
    `   LocalControl's decision latencyMs: ${distLine(c.decisionLatencyMs)}`,
    `   ${cpuLine(c.cpuPercent)}`,
    '',
    `3. alarm -> e-mail accepted by aiosmtpd through LocalControl's e-mail channel (plain SMTP on loopback, batching off, critical raises): the ground fault of 1.`,
    `   ${m.trials} trials (+${m.warmup} warm-up, ${m.failed} failed), ${m.seconds} s`,
    `   register changed -> mail accepted: ${distLine(m.endToEndMs)}`,
    `   poll's sample -> mail accepted:    ${distLine(m.sampleToMailMs)}`,
    `   alarm delivered -> mail accepted:  ${distLine(m.alarmToMailMs)}`,
    `   the horn in the same trials (poll's sample -> coil set): ${distLine(m.hornGatewayMs)}`,
    `   ${cpuLine(m.cpuPercent)}`,
    `   the notification library alone (scripts/bench/outputs.ts, offer() -> accepted, ${e.alarms} alarms):`,
    e.sequential ? `   one at a time: p50 ${e.sequential.p50Ms} ms, p99 ${e.sequential.p99Ms} ms, max ${e.sequential.maxMs} ms (offer() alone p50 ${e.sequential.offerP50Ms} ms)` : '   one at a time: no figures',
    e.burst ? `   all at once:   p50 ${e.burst.p50Ms} ms, p99 ${e.burst.p99Ms} ms, max ${e.burst.maxMs} ms (all accepted after ${e.burst.totalS} s)` : '   all at once: no figures',
    ...(f.errors.length ? ['', `errors logged: ${f.errors.length}`, ...f.errors.slice(0, 5).map((x) => `   ${x}`)] : []),
  ].join('\n');
}
